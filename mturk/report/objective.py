"""Human vs machine: how well each objective metric (`evaluate`'s ``objective_clips.csv``, one row
per system x video) predicts what the raters said, per protocol and criterion.

* 2AFC: for every kept pair vote, the metric's difference between the two clips. Agreement rate:
  the share of votes (clips with equal metric left out) choosing the clip the metric ranks better,
  Wilson 95%; logistic fit: P(chose left) ~ 1 + (left − right metric, in SDs of the difference,
  signed so positive means "left better"), maximum likelihood with standard errors clustered by
  item.
* MOS: Spearman's ρ between each clip's mean rating and its metric (clips are the units; votes on
  one clip are not independent), Fisher-z 95% interval; the sign is turned so ρ > 0 means "the
  metric agrees with the raters".
* real-or-fake: Spearman's ρ between each clip's share judged real and its metric (same
  orientation), and the vote-level logistic fit of judged-real on the metric (clustered by clip).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from regnet.errors import UserError
from regnet.tables import read_table
from mturk.report import stats
from mturk.report.tables import CRITERIA, Table, ci, num, pct, pval

log = logging.getLogger(__name__)

# Metrics where a smaller value is better (regnet.metrics.evaluate.METRICS marks them ↓).
LOWER_IS_BETTER = {"mel_l2_x100", "kl_posterior", "frechet_distance"}
SKIP = {"clip_seconds", "n_onsets", "n_reference_onsets", "duration_s"}


def load_objective(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(per-clip metrics indexed by (system, video_id), metric columns)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: objective metrics file not found (evaluate writes "
                        "results/objective_clips.csv)")
    df = read_table(path, "expected evaluate's objective_clips.csv", required=("system", "video_id"),
                    dtype={"system": str, "video_id": str})
    metrics = [c for c in df.columns if c not in SKIP and c not in ("system", "video_id")
               and pd.api.types.is_numeric_dtype(df[c])]
    if not metrics:
        raise UserError(f"{path}: no numeric metric column")
    dup = df.duplicated(["system", "video_id"])
    if dup.any():
        # evaluate writes one row per clip; several references would give several rows.
        log.warning("%s: %d duplicate (system, video_id) row(s); the first is used", path,
                    int(dup.sum()))
        df = df[~dup]
    return df.set_index(["system", "video_id"])[metrics], metrics


def _sign(metric: str) -> float:
    # evaluate's released-embedder KL columns are named kl_softmax_<embedder> / kl_sigmoid_<embedder>,
    # DeSync's desync_<sync model>
    lower = metric in LOWER_IS_BETTER or metric.startswith(("kl_softmax_", "kl_sigmoid_", "desync_"))
    return -1.0 if lower else 1.0


def objective_table(kept: pd.DataFrame, obj: pd.DataFrame, metrics: list[str]) -> Table:
    rows = []
    v = kept.copy()
    v["video_id"] = v["video_id"].astype("string")
    pair = v[v["kind"] == "pair"]
    for q in sorted(pair["question"].unique()):
        pq = pair[pair["question"] == q]
        for m in metrics:
            col = obj[m]
            left = col.reindex(list(zip(pq["left_system"], pq["video_id"]))).to_numpy(float)
            right = col.reindex(list(zip(pq["right_system"], pq["video_id"]))).to_numpy(float)
            d = _sign(m) * (left - right)           # > 0: the metric says left is better
            chose_left = (pq["answer"] == "left").to_numpy()
            ok = ~np.isnan(d)
            decided = ok & (d != 0)
            agree = (chose_left == (d > 0))[decided]
            k, n = int(agree.sum()), int(decided.sum())
            lo, hi = stats.wilson(k, n)
            sd = float(np.std(d[ok])) if ok.sum() > 1 else math.nan
            b, blo, bhi, bp = stats.logistic_slope(chose_left[ok], d[ok] / sd if sd else d[ok],
                                                   pq["trial_id"].to_numpy()[ok]) \
                if ok.sum() and sd else (math.nan,) * 4
            rows.append(dict(protocol="pair", criterion=q, metric=m, n_votes=int(ok.sum()),
                             n_missing=int((~ok).sum()), n_clips=np.nan, agreement=k / n if n else math.nan,
                             agree_low=lo, agree_high=hi, slope=b, slope_low=blo, slope_high=bhi,
                             slope_p=bp, rho=math.nan, rho_low=math.nan, rho_high=math.nan,
                             rho_p=math.nan))
    for kind, yname in (("mos", "rating"), ("real_fake", "judged_real")):
        kv = v[v["kind"] == kind].copy()
        if kv.empty:
            continue
        kv["judged_real"] = (kv["answer"] == "real").astype(float)
        for q in sorted(kv["question"].unique()):
            kq = kv[kv["question"] == q]
            clip = kq.groupby(["left_system", "video_id"])[yname].mean()
            for m in metrics:
                x = _sign(m) * obj[m].reindex(clip.index).to_numpy(float)
                rho, rlo, rhi, rp, nc = stats.spearman_ci(x, clip.to_numpy(float))
                row = dict(protocol=kind, criterion=q, metric=m,
                           n_votes=int(kq.shape[0]), n_missing=int(np.isnan(x).sum()),
                           n_clips=nc, agreement=math.nan, agree_low=math.nan,
                           agree_high=math.nan, slope=math.nan, slope_low=math.nan,
                           slope_high=math.nan, slope_p=math.nan, rho=rho, rho_low=rlo,
                           rho_high=rhi, rho_p=rp)
                if kind == "real_fake":
                    xv = _sign(m) * obj[m].reindex(list(zip(kq["left_system"], kq["video_id"]))) \
                        .to_numpy(float)
                    ok = ~np.isnan(xv)
                    sd = float(np.std(xv[ok])) if ok.sum() > 1 else 0.0
                    if sd:
                        b, blo, bhi, bp = stats.logistic_slope(
                            kq["judged_real"].to_numpy()[ok], xv[ok] / sd,
                            kq["trial_id"].to_numpy()[ok])
                        row.update(slope=b, slope_low=blo, slope_high=bhi, slope_p=bp)
                rows.append(row)
    cols = ["protocol", "criterion", "metric", "n_votes", "n_missing", "n_clips", "agreement",
            "agree_low", "agree_high", "slope", "slope_low", "slope_high", "slope_p", "rho",
            "rho_low", "rho_high", "rho_p"]
    data = pd.DataFrame(rows, columns=cols)
    disp = pd.DataFrame({
        "Protocol": data["protocol"], "Criterion": data["criterion"].map(CRITERIA),
        "Metric": data["metric"] + data["metric"].map(lambda m: " ↓" if _sign(m) < 0 else " ↑"),
        "votes": data["n_votes"].astype(str),
        "% agree [95%]": [f"{pct(r.agreement)} {ci(r.agree_low, r.agree_high)}"
                          if not math.isnan(r.agreement) else "–" for r in data.itertuples()],
        "logit slope per SD [95%]": [f"{num(r.slope)} {ci(r.slope_low, r.slope_high, 1, 2)}"
                                     if not math.isnan(r.slope) else "–" for r in data.itertuples()],
        "p (slope)": data["slope_p"].map(pval),
        "Spearman ρ [95%] (clips)": [f"{num(r.rho)} {ci(r.rho_low, r.rho_high, 1, 2)}"
                                     if not math.isnan(r.rho) else "–" for r in data.itertuples()],
    })
    notes = ["How well each objective metric predicts the raters, oriented so that higher means "
             "agreement (↓: smaller is better, its sign is turned). 2AFC: % of votes choosing "
             "the clip the metric ranks better (Wilson 95%; clips with equal values left out), "
             "and the logistic slope of choosing left on the left − right metric difference in "
             "SDs (standard errors clustered by item). MOS and real-or-fake: Spearman's ρ between "
             "each clip's mean rating / share judged real and its metric (Fisher-z 95%, "
             "Bonett–Wright SE); real-or-fake also the vote-level logistic slope (clustered by "
             "clip).",
             "A metric is worth trusting for a protocol when its agreement is well above 50% and "
             "its ρ and slope are clearly above 0."]
    miss = int(data["n_missing"].max()) if len(data) else 0
    if miss:
        notes.append(f"Up to {miss} vote(s)/clip(s) per row had no metric value for their clip "
                     "(system and video not in the objective file) and were left out.")
    return Table("table_objective", "Human vs machine — objective metrics as predictors of the "
                 "raters", data, disp, notes)
