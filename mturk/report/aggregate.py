"""From kept votes to items: majority of the votes (2AFC, real-or-fake) or their mean (MOS).

An item is one trial (one pair on one question, one clip for real-or-fake or MOS). Ties (possible
once QC leaves an even number of votes) are kept as `tie` and counted; they carry no majority and
are left out of item-level tests, which the tables say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pair_votes(kept: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per pair vote with the system pair in report order: system_a comes first in
    `order`, so 'regnet vs woreg' and 'woreg vs regnet' trials pool into one comparison."""
    v = kept[kept["kind"] == "pair"]
    rank = {s: i for i, s in enumerate(order)}
    left, right = v["left_system"].astype(str), v["right_system"].astype(str)
    left_first = left.map(rank) <= right.map(rank)
    a = left.where(left_first, right)
    b = right.where(left_first, left)
    return pd.DataFrame({
        "system_a": a, "system_b": b, "question": v["question"].astype(str),
        "trial_id": v["trial_id"].astype(str), "worker_id": v["worker_id"].astype(str),
        "chose_a": (v["chosen_system"].astype(str) == a).to_numpy(bool),
        "a_left": left_first.to_numpy(bool),
    }, index=v.index)


def _majority(n: pd.Series, k: pd.Series, yes: str, no: str) -> pd.Series:
    return pd.Series(np.where(2 * k > n, yes, np.where(2 * k < n, no, "tie")), index=n.index)


def pair_items(pv: pd.DataFrame) -> pd.DataFrame:
    g = pv.groupby(["system_a", "system_b", "question", "trial_id"], sort=False)["chose_a"]
    items = g.agg(n_votes="size", votes_a="sum").reset_index()
    items["votes_a"] = items["votes_a"].astype(int)
    items["majority"] = _majority(items["n_votes"], items["votes_a"], "a", "b")
    return items


def real_fake_votes(kept: pd.DataFrame) -> pd.DataFrame:
    v = kept[kept["kind"] == "real_fake"]
    return pd.DataFrame({
        "system": v["left_system"].astype(str), "class": v["class"].astype(str),
        "trial_id": v["trial_id"].astype(str), "worker_id": v["worker_id"].astype(str),
        "judged_real": (v["answer"] == "real").to_numpy(bool),
    }, index=v.index)


def real_fake_items(rv: pd.DataFrame) -> pd.DataFrame:
    g = rv.groupby(["system", "class", "trial_id"], sort=False)["judged_real"]
    items = g.agg(n_votes="size", n_real="sum").reset_index()
    items["n_real"] = items["n_real"].astype(int)
    items["majority"] = _majority(items["n_votes"], items["n_real"], "real", "fake")
    return items


def mos_votes(kept: pd.DataFrame) -> pd.DataFrame:
    v = kept[kept["kind"] == "mos"]
    # The random item effect belongs to the video content, shared by every system's clip of it;
    # without a video id each trial is its own item.
    item = v["video_id"].astype("string").fillna(v["trial_id"].astype("string"))
    return pd.DataFrame({
        "system": v["left_system"].astype(str), "question": v["question"].astype(str),
        "trial_id": v["trial_id"].astype(str), "item": item.astype(str),
        "worker_id": v["worker_id"].astype(str), "rating": v["rating"].astype(float),
    }, index=v.index)


def mos_items(mv: pd.DataFrame) -> pd.DataFrame:
    g = mv.groupby(["system", "question", "trial_id"], sort=False)["rating"]
    return g.agg(n_votes="size", mean="mean").reset_index()


def expected_votes(raw: pd.DataFrame, declared: int | None) -> dict[str, int]:
    """Votes each item was meant to get, per kind: the study's figure, else the most common count
    in the input before QC (so QC losses show up as short items)."""
    out: dict[str, int] = {}
    main = raw[raw["trial_role"] == "main"]
    for kind, grp in main.groupby("kind"):
        if declared:
            out[kind] = int(declared)
        else:
            counts = grp.groupby("trial_id").size()
            out[kind] = int(counts.mode().max()) if len(counts) else 0
    return out
