"""Seconds to build and write the full report (validation, QC, tables, every mixed model fitted,
figures) for 10k and 100k simulated votes. Prints one line per size with the number of mixed
models fitted; the last line is `name: value` (target: 100,000 votes in <= 30 s on 2 cores).

    .venv/bin/python benchmarks/report.py [--sizes 10000 100000] [--mixed-max-votes N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from mturk.report.build import ReportOptions, build_report, write_report


def synthetic_votes(n_votes: int, seed: int = 0, votes_per_item: int = 3) -> pd.DataFrame:
    """A balanced study: a third each pair / real-or-fake / MOS, 3 votes per item, 30 trials per
    assignment, a gold trial in every assignment; raters prefer 'regnet' 60% of the time."""
    rng = np.random.default_rng(seed)
    per_kind = n_votes // 3
    rows = []
    n_workers = max(10, n_votes // 100)
    qs = ["missing", "redundant", "mismatched"]
    for kind in ("pair", "real_fake", "mos"):
        n_items = per_kind // votes_per_item
        item = np.repeat(np.arange(n_items), votes_per_item)
        n = len(item)
        sys_pair = np.where(item % 2 == 0, "vs", "woreg")
        d = pd.DataFrame({
            "kind": kind, "trial_id": [f"{kind[:2]}{i}" for i in item],
            "worker_id": [f"W{w}" for w in rng.integers(0, n_workers, n)],
            "video_id": [f"v{i // 4}" for i in item],
            "class": np.array(["dog", "drum", "fireworks"])[(item // 3) % 3],
        })
        if kind == "pair":
            d["question"] = np.array(qs)[item % 3]
            flip = (item // 2) % 2 == 1
            d["left_system"] = np.where(flip, sys_pair, "regnet")
            d["right_system"] = np.where(flip, "regnet", sys_pair)
            pick_regnet = rng.random(n) < 0.6
            d["answer"] = np.where(pick_regnet ^ flip, "left", "right")
        elif kind == "real_fake":
            d["question"] = "real"
            d["left_system"] = np.array(["regnet", "vs", "real"])[item % 3]
            p = np.where(d["left_system"] == "real", 0.88, 0.65)
            d["answer"] = np.where(rng.random(n) < p, "real", "fake")
        else:
            d["question"] = np.array(qs)[item % 3]
            d["left_system"] = np.array(["regnet", "vs", "real"])[(item // 3) % 3]
            base = d["left_system"].map({"regnet": 3.6, "vs": 3.1, "real": 4.2})
            d["answer"] = np.clip(np.rint(base + rng.normal(0, 1, n)), 1, 5).astype(int).astype(str)
        rows.append(d)
    df = pd.concat(rows, ignore_index=True)
    # 30 consecutive rows of one worker form an assignment (a worker's repeat of a trial is then
    # a counted "repeat rater" exclusion, as in real data).
    df["assignment_id"] = df["worker_id"] + "_" + (df.groupby("worker_id").cumcount() // 30).astype(str)
    df["hit_id"] = "H"
    gold = df.drop_duplicates("assignment_id").copy()
    gold["trial_role"] = "gold"
    gold["trial_id"] = "gold_" + gold["assignment_id"]
    gold["kind"], gold["question"] = "pair", "mismatched"
    gold["truth"] = "left"
    gold["answer"] = np.where(rng.random(len(gold)) < 0.95, "left", "right")
    df["trial_role"] = "main"
    df = pd.concat([df, gold], ignore_index=True)
    df["work_time_s"] = 600.0
    df["played_to_end"] = rng.random(len(df)) > 0.01
    df["simulated"] = True
    df["study"] = "bench"
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--mixed-max-votes", type=int, default=None,
                    help="skip mixed models above N votes (default: fit every model)")
    ap.add_argument("--one-model", type=int, nargs="*", default=[30_000, 100_000],
                    help="also time a single crossed rater+item model of this many votes")
    args = ap.parse_args()
    from mturk.votes import VOTE_COLUMNS

    for n in args.one_model:
        print(f"one crossed model (MOS, exact REML + variance intervals) of {n} votes: "
              f"{_one_model(n):.2f} s")
    last, n = 0.0, 0
    for n in args.sizes:
        raw = synthetic_votes(n).reindex(columns=VOTE_COLUMNS)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rep = build_report(raw, f"synthetic {n}", None,
                               ReportOptions(mixed_max_votes=args.mixed_max_votes))
            write_report(rep, tmp)
            last = time.perf_counter() - t0
        fitted, total, largest = _mixed_counts(rep)
        print(f"{n} votes: {last:.2f} s, mixed models fitted {fitted}/{total} "
              f"(largest {largest} votes)")
    print(f"report_seconds_{n}_votes_every_model_fitted: {last:.2f}")


def _one_model(n: int, seed: int = 0) -> float:
    """One MOS model: n votes, n/100 raters, n/10 videos, three systems."""
    from mturk.report.stats import mixed_mos

    rng = np.random.default_rng(seed)
    r, i = rng.integers(0, n // 100, n), rng.integers(0, n // 10, n)
    s = np.array(["regnet", "vs", "real"])[rng.integers(0, 3, n)]
    y = (pd.Series(s).map({"regnet": 3.6, "vs": 3.1, "real": 4.2}).to_numpy()
         + rng.normal(0, 0.5, n // 100)[r] + rng.normal(0, 0.7, n // 10)[i] + rng.normal(0, 1, n))
    t0 = time.perf_counter()
    f = mixed_mos(y, s, r, i, ["regnet", "vs", "real"])
    assert f.fitted
    return time.perf_counter() - t0


def _mixed_counts(rep) -> tuple[int, int, int]:
    """(fitted, models, votes in the largest fitted model) over Table I, II and MOS."""
    fitted = total = largest = 0
    for key, col in (("table1_preference", "mixed_pref_a"), ("table2_real_fake", "mixed_real_rate")):
        t = next((t for t in rep.tables if t.key == key), None)
        if t is None:
            continue
        d = t.data if key == "table1_preference" else t.data[t.data["class"] == "all classes"]
        total += len(d)
        ok = d[d[col].notna()]
        fitted += len(ok)
        largest = max([largest] + list(ok["n_votes"]))
    t = next((t for t in rep.tables if t.key == "table_mos"), None)
    if t is not None:
        g = t.data.groupby("criterion")
        total += g.ngroups
        for _, d in g:
            if d["mixed_mean"].notna().all():
                fitted += 1
                largest = max(largest, int(d["n_votes"].sum()))
    return fitted, total, largest


if __name__ == "__main__":
    main()
