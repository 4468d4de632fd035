"""The report's tables as frames: `data` keeps full precision (CSV, tests), `display` holds the
strings a paper shows (Markdown, LaTeX, HTML)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mturk.vocabulary import QUESTIONS
from mturk.report import stats
from mturk.report.qc import QCResult

CRITERIA = {"missing": "Sound-Missing", "redundant": "Sound-Redundant",
            "mismatched": "Sound-Mismatched", "real": "Real"}


@dataclass
class Table:
    key: str
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # What an empty table means (a QC table with nothing dropped is not "no votes").
    empty: str = "No votes of this kind."


def pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def ci(lo: float, hi: float, scale: float = 100.0, digits: int = 1) -> str:
    if lo is None or math.isnan(lo):
        return "–"
    return f"[{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def pval(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def num(x: float, digits: int = 2) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _ratio(k: int, n: int) -> float:
    return k / n if n else math.nan


def _add_holm(tests: list[dict], key: str) -> None:
    # Holm over the whole table: one family of tests per level (votes, items).
    p = stats.holm([t[key] for t in tests])
    for t, q in zip(tests, p):
        t[key + "_holm"] = float(q)


def preference_table(pv: pd.DataFrame, items: pd.DataFrame, order: list[str],
                     expected: int, min_votes: int, mixed_max_votes: int | None,
                     glmm: bool = False) -> Table:
    """Table I: share of votes (and of item majorities) preferring system A, per pair and
    criterion."""
    rows = []
    pairs = sorted(set(zip(pv["system_a"], pv["system_b"])),
                   key=lambda ab: (order.index(ab[0]), order.index(ab[1])))
    for a, b in pairs:
        for q in QUESTIONS["pair"]:
            v = pv[(pv["system_a"] == a) & (pv["system_b"] == b) & (pv["question"] == q)]
            if v.empty:
                continue
            it = items[(items["system_a"] == a) & (items["system_b"] == b) & (items["question"] == q)]
            n, k = len(v), int(v["chose_a"].sum())
            enough = it["n_votes"] >= min_votes
            decided = it[enough & (it["majority"] != "tie")]
            ni, ki = len(decided), int((decided["majority"] == "a").sum())
            lo, hi = stats.wilson(k, n)
            ilo, ihi = stats.wilson(ki, ni)
            mm = stats.mixed_preference(v["chose_a"], v["a_left"], v["worker_id"], v["trial_id"],
                                        mixed_max_votes, glmm=glmm)
            rows.append({
                "system_a": a, "system_b": b, "criterion": q,
                "n_votes": n, "votes_a": k, "pref_a": _ratio(k, n), "ci_low": lo, "ci_high": hi,
                "p_votes": stats.binom_p(k, n),
                "n_items": len(it), "n_items_tied": int((it["majority"] == "tie").sum()),
                "n_items_short": int((it["n_votes"] < expected).sum()),
                "n_items_too_few": int((~enough).sum()),
                "n_items_decided": ni, "items_a": ki, "items_pref_a": _ratio(ki, ni),
                "items_ci_low": ilo, "items_ci_high": ihi, "p_items": stats.binom_p(ki, ni),
                "mixed_pref_a": mm.prob, "mixed_ci_low": mm.prob_low,
                "mixed_ci_high": mm.prob_high, "mixed_p": mm.p, "mixed_note": mm.note,
                "mixed_var_rater": mm.var_rater, "mixed_var_item": mm.var_item,
                "glmm_pref_a": mm.glmm_prob, "glmm_ci_low": mm.glmm_low,
                "glmm_ci_high": mm.glmm_high, "glmm_note": mm.glmm_note,
            })
    _add_holm(rows, "p_votes")
    _add_holm(rows, "p_items")
    cols = ["system_a", "system_b", "criterion", "n_votes", "votes_a", "pref_a", "ci_low",
            "ci_high", "p_votes", "p_votes_holm", "n_items", "n_items_tied", "n_items_short",
            "n_items_too_few", "n_items_decided", "items_a", "items_pref_a", "items_ci_low",
            "items_ci_high", "p_items", "p_items_holm", "mixed_pref_a", "mixed_ci_low",
            "mixed_ci_high", "mixed_p", "mixed_note", "mixed_var_rater", "mixed_var_item",
            "glmm_pref_a", "glmm_ci_low", "glmm_ci_high", "glmm_note"]
    data = pd.DataFrame(rows, columns=cols)
    disp = pd.DataFrame({
        "Comparison": [f"{r.system_a} preferred over {r.system_b}" for r in data.itertuples()],
        "Criterion": data["criterion"].map(CRITERIA),
        "% (votes)": data["pref_a"].map(pct),
        "95% CI": [ci(r.ci_low, r.ci_high) for r in data.itertuples()],
        "votes": data["n_votes"].astype(str),
        "p (Holm)": data["p_votes_holm"].map(pval),
        "% A (items)": data["items_pref_a"].map(pct),
        "95% CI items": [ci(r.items_ci_low, r.items_ci_high) for r in data.itertuples()],
        "items (ties)": [f"{r.n_items_decided} ({r.n_items_tied})" for r in data.itertuples()],
        "p items (Holm)": data["p_items_holm"].map(pval),
        "% mixed [95%]": [f"{pct(r.mixed_pref_a)} {ci(r.mixed_ci_low, r.mixed_ci_high)}"
                          if not math.isnan(r.mixed_pref_a) else "–" for r in data.itertuples()],
    })
    if glmm:
        disp["% GLMM [95%]"] = [f"{pct(r.glmm_pref_a)} {ci(r.glmm_ci_low, r.glmm_ci_high)}"
                                if not math.isnan(r.glmm_pref_a) else "–"
                                for r in data.itertuples()]
    notes = [
        f"Each row reads \"A preferred over B: %\": the share of judgements preferring A "
        f"(B = 100 − %); A is the study's focus system ({order[0] if order else '–'}) wherever it "
        "takes part. Intervals: Wilson 95%. p: exact two-sided binomial test against 50%, "
        "Holm-adjusted across all rows of this table, separately for the vote level and the item "
        "level.",
        f"Item level: majority of an item's votes; ties carry no majority and are left out "
        f"(count in brackets); items with fewer than {min_votes} kept vote(s) are left out; "
        f"{int(data['n_items_short'].sum()) if len(data) else 0} item(s) kept fewer than the "
        f"{expected} votes planned.",
        "Mixed: linear probability mixed model chose-A ~ 1 + position with crossed random rater "
        "and item intercepts, exact REML (sparse, every size); the intercept is the share "
        "preferring A at a balanced left/right layout, averaged over raters and items, and its "
        "Wald 95% interval (cut at 0–100%) counts votes sharing a rater or an item as dependent."
        + (" GLMM: logistic model with the same terms, Laplace approximation; its % is a typical "
           "rater on a typical item (conditional), not the population share." if glmm else ""),
    ]
    for r in data.itertuples():
        if r.mixed_note.startswith("not fitted"):
            notes.append(f"Mixed model for {r.system_a} over {r.system_b}, {r.criterion}: "
                         f"{r.mixed_note}.")
        elif "boundary" in r.mixed_note:
            notes.append(f"{r.system_a} over {r.system_b}, {r.criterion}: {r.mixed_note}.")
    return Table("table1_preference", "Table I — paired comparison (2AFC)", data, disp, notes)


def real_fake_table(rv: pd.DataFrame, items: pd.DataFrame, order: list[str], real_system: str,
                    min_votes: int, mixed_max_votes: int | None = None) -> Table:
    """Table II: % judged real per class and system, pooled 'all classes' rows, the real
    sound's rate as the ceiling."""
    rows = []
    classes = sorted(rv["class"].unique())
    systems = [s for s in order if (rv["system"] == s).any()]
    for cls in classes + ["all classes"]:
        for s in systems:
            sel = rv["system"] == s if cls == "all classes" else (rv["system"] == s) & (rv["class"] == cls)
            isel = items["system"] == s if cls == "all classes" else \
                (items["system"] == s) & (items["class"] == cls)
            v, it = rv[sel], items[isel]
            if v.empty:
                continue
            n, k = len(v), int(v["judged_real"].sum())
            decided = it[(it["n_votes"] >= min_votes) & (it["majority"] != "tie")]
            ni, ki = len(decided), int((decided["majority"] == "real").sum())
            lo, hi = stats.wilson(k, n)
            ilo, ihi = stats.wilson(ki, ni)
            mm = stats.mixed_preference(v["judged_real"], None, v["worker_id"], v["trial_id"],
                                        mixed_max_votes) if cls == "all classes" else None
            rows.append({"class": cls, "system": s, "n_votes": n, "n_real": k,
                         "mixed_real_rate": mm.prob if mm else math.nan,
                         "mixed_ci_low": mm.prob_low if mm else math.nan,
                         "mixed_ci_high": mm.prob_high if mm else math.nan,
                         "mixed_note": mm.note if mm else "",
                         "real_rate": _ratio(k, n), "ci_low": lo, "ci_high": hi,
                         "n_items": len(it), "n_items_tied": int((it["majority"] == "tie").sum()),
                         "n_items_decided": ni, "items_real": ki, "items_real_rate": _ratio(ki, ni),
                         "items_ci_low": ilo, "items_ci_high": ihi})
    data = pd.DataFrame(rows, columns=["class", "system", "n_votes", "n_real", "real_rate",
                                       "ci_low", "ci_high", "n_items", "n_items_tied",
                                       "n_items_decided", "items_real", "items_real_rate",
                                       "items_ci_low", "items_ci_high", "mixed_real_rate",
                                       "mixed_ci_low", "mixed_ci_high", "mixed_note"])
    ceiling = data[data["system"] == real_system].set_index("class")["real_rate"]
    data["ceiling"] = data["class"].map(ceiling).astype(float)
    data["of_ceiling"] = data["real_rate"] / data["ceiling"]
    disp = pd.DataFrame({
        "Class": data["class"], "System": data["system"],
        "% judged real": data["real_rate"].map(pct),
        "95% CI": [ci(r.ci_low, r.ci_high) for r in data.itertuples()],
        "votes": data["n_votes"].astype(str),
        "% real (items)": data["items_real_rate"].map(pct),
        "95% CI items": [ci(r.items_ci_low, r.items_ci_high) for r in data.itertuples()],
        "items (ties)": [f"{r.n_items_decided} ({r.n_items_tied})" for r in data.itertuples()],
        "% of ceiling": data["of_ceiling"].map(pct),
        "% real mixed [95%]": [f"{pct(r.mixed_real_rate)} {ci(r.mixed_ci_low, r.mixed_ci_high)}"
                               if not math.isnan(r.mixed_real_rate) else "–"
                               for r in data.itertuples()],
    })
    notes = ["% judged real over votes, Wilson 95% intervals; item level: majority per clip, "
             "ties left out.",
             f"Ceiling: the real sound ('{real_system}') rate in the same class; '% of ceiling' "
             "= rate / ceiling." if real_system in systems else
             f"No votes on the real sound ('{real_system}', see --real-system): no ceiling.",
             "Mixed (all-classes rows): linear probability mixed model judged-real ~ 1 with "
             "crossed random rater and clip intercepts, exact REML; Wald 95% cut at 0–100%."]
    for r in data.itertuples():
        if r.mixed_note and ("not fitted" in r.mixed_note or "boundary" in r.mixed_note):
            notes.append(f"{r.system}: {r.mixed_note}.")
    return Table("table2_real_fake", "Table II — real or fake", data, disp, notes)


def mos_tables(mv: pd.DataFrame, items: pd.DataFrame, order: list[str],
               mixed_max_votes: int | None) -> tuple[Table, Table]:
    """MOS mean with t intervals per system and criterion, MixedLM marginal means, and the
    MixedLM pairwise contrasts (Holm across every contrast in the table)."""
    rows, crow = [], []
    fits = {}
    for q in QUESTIONS["mos"]:
        vq = mv[mv["question"] == q]
        if vq.empty:
            continue
        fits[q] = stats.mixed_mos(vq["rating"], vq["system"], vq["worker_id"], vq["item"], order,
                                  mixed_max_votes)
        for s in [s for s in order if (vq["system"] == s).any()]:
            v = vq[vq["system"] == s]
            it = items[(items["system"] == s) & (items["question"] == q)]
            m, lo, hi, how = stats.mos_ci(v["rating"])
            _, ilo, ihi, ihow = stats.mos_ci(it["mean"])
            row = {"criterion": q, "system": s, "n_votes": len(v), "n_items": len(it),
                   "n_raters": v["worker_id"].nunique(), "mean": m,
                   "sd": float(v["rating"].std(ddof=1)) if len(v) > 1 else math.nan,
                   "ci_low": lo, "ci_high": hi, "ci_method": how, "items_ci_low": ilo,
                   "items_ci_high": ihi, "items_ci_method": ihow,
                   "mixed_mean": math.nan, "mixed_ci_low": math.nan, "mixed_ci_high": math.nan}
            f = fits[q]
            if f.fitted:
                e = f.effects.set_index("system").loc[s]
                row.update(mixed_mean=float(e["estimate"]), mixed_ci_low=float(e["ci_low"]),
                           mixed_ci_high=float(e["ci_high"]))
                # The mixed mean's interval, like the others, stays on the 1-5 scale.
                row["mixed_ci_low"] = max(row["mixed_ci_low"], 1.0)
                row["mixed_ci_high"] = min(row["mixed_ci_high"], 5.0)
            rows.append(row)
        if fits[q].fitted:
            for c in fits[q].contrasts.itertuples(index=False):
                crow.append({"criterion": q, **c._asdict()})
    data = pd.DataFrame(rows, columns=["criterion", "system", "n_votes", "n_items", "n_raters",
                                       "mean", "sd", "ci_low", "ci_high", "ci_method",
                                       "items_ci_low", "items_ci_high", "items_ci_method",
                                       "mixed_mean", "mixed_ci_low", "mixed_ci_high"])
    disp = pd.DataFrame({
        "Criterion": data["criterion"].map(CRITERIA), "System": data["system"],
        "MOS": data["mean"].map(num),
        "95% CI (votes)": [ci(r.ci_low, r.ci_high, 1, 2) + _MARK.get(r.ci_method, "")
                           for r in data.itertuples()],
        "95% CI (items)": [ci(r.items_ci_low, r.items_ci_high, 1, 2)
                           + _MARK.get(r.items_ci_method, "") for r in data.itertuples()],
        "votes": data["n_votes"].astype(str), "items": data["n_items"].astype(str),
        "MixedLM mean [95%]": [f"{num(r.mixed_mean)} {ci(r.mixed_ci_low, r.mixed_ci_high, 1, 2)}"
                               if not math.isnan(r.mixed_mean) else "–" for r in data.itertuples()],
    })
    notes = ["MOS: mean of all ratings (1 = worst … 5 = best); 95% CI from the t distribution "
             "over votes, and over item means (items are the independent units when raters are "
             "many). Every interval stays on the 1–5 scale: * a t interval that crossed 1 or 5 is "
             "cut there (the true mean lies on the scale, so coverage is unchanged); † every "
             "rating was the same, so the t interval has zero width: shown instead is the Wilson "
             "interval of the rescaled mean (r − 1)/4, valid for any variable on the scale.",
             "MixedLM: rating ~ system (one mean per system) with crossed random intercepts for "
             "rater and item (the video when known, else the trial), exact REML with sparse "
             "linear algebra at every size; a variance component estimated at 0 is reported as "
             "a boundary fit with a one-sided 95% upper bound."]
    # The scale in the words raters saw (one place: mturk.study.MOS_CRITERIA, as on the HIT page).
    from mturk.study import MOS_CRITERIA, mos_label

    notes.insert(0, "Scale as shown to raters: " + "; ".join(mos_label(q) for q in fits if q in MOS_CRITERIA) + ".")
    for q, f in fits.items():
        if f.fitted:
            ci_txt = "; ".join(
                f"{k} {'0 (boundary), upper ' + format(hi, '.3f') if k in f.boundary else format(lo, '.3f') + '–' + format(hi, '.3f')}"
                for k, (lo, hi) in (f.var_ci or {}).items())
            notes.append(f"{CRITERIA[q]}: variance rater {f.rater_var:.3f}, item "
                         f"{f.item_var:.3f}, residual {f.resid_var:.3f}"
                         + (f" (95%: {ci_txt})" if ci_txt else "") + f"; {f.note}.")
        else:
            notes.append(f"{CRITERIA[q]}: MixedLM {f.note}.")
    cdata = pd.DataFrame(crow, columns=["criterion", "system_a", "system_b", "diff", "se",
                                        "ci_low", "ci_high", "z", "p"])
    cdata["p_holm"] = stats.holm(cdata["p"]) if len(cdata) else pd.Series(dtype=float)
    cdisp = pd.DataFrame({
        "Criterion": cdata["criterion"].map(CRITERIA),
        "Contrast": [f"{r.system_a} − {r.system_b}" for r in cdata.itertuples()],
        "Difference": cdata["diff"].map(num),
        "95% CI": [ci(r.ci_low, r.ci_high, 1, 2) for r in cdata.itertuples()],
        "z": cdata["z"].map(num), "p (Holm)": cdata["p_holm"].map(pval),
    })
    cnotes = ["Differences of MixedLM system means (Wald z); p Holm-adjusted across every "
              "contrast in this table."]
    return (Table("table_mos", "MOS (1–5) per system and criterion", data, disp, notes),
            Table("table_mos_contrasts", "MOS pairwise contrasts (MixedLM)", cdata, cdisp, cnotes))


_MARK = {"t, cut at the scale": " *", "bounded": " †"}


def _agreement_row(kind: str, q: str, unit: pd.Series, value: pd.Series, level: str,
                   values: list) -> dict:
    counts = (pd.DataFrame({"u": unit.to_numpy(), "v": value.to_numpy()}).groupby(["u", "v"])
              .size().unstack(fill_value=0).reindex(columns=values, fill_value=0))
    per = counts.sum(axis=1)
    counts = counts[per >= 2]
    per = per[per >= 2]
    row = {"kind": kind, "criterion": q, "n_items": len(counts),
           "votes_min": int(per.min()) if len(per) else 0,
           "votes_max": int(per.max()) if len(per) else 0, "level": level,
           "fleiss_kappa": math.nan, "kripp_alpha": math.nan, "note": ""}
    if len(counts) == 0:
        row["note"] = "no item with two or more votes"
        return row
    row["kripp_alpha"] = stats.kripp_alpha(counts.to_numpy(), level, values)
    if per.nunique() == 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            row["fleiss_kappa"] = stats.fleiss(counts.to_numpy())
    else:
        row["note"] = (f"Fleiss' κ not computed: votes per item vary after QC "
                       f"({per.min()}–{per.max()}) and κ needs the same number on every item; "
                       "Krippendorff's α allows that")
    if math.isnan(row["kripp_alpha"]) and not row["note"]:
        row["note"] = "no variation in the votes: agreement undefined"
    return row


def agreement_table(pv: pd.DataFrame, rv: pd.DataFrame, mv: pd.DataFrame) -> Table:
    rows = []
    for q in QUESTIONS["pair"]:
        v = pv[pv["question"] == q]
        if len(v):
            rows.append(_agreement_row("pair", q, v["trial_id"], v["chose_a"].map({True: "a", False: "b"}),
                                       "nominal", ["a", "b"]))
    if len(rv):
        rows.append(_agreement_row("real_fake", "real", rv["trial_id"],
                                   rv["judged_real"].map({True: "real", False: "fake"}),
                                   "nominal", ["real", "fake"]))
    for q in QUESTIONS["mos"]:
        v = mv[mv["question"] == q]
        if len(v):
            rows.append(_agreement_row("mos", q, v["trial_id"], v["rating"].astype(int), "interval",
                                       [1, 2, 3, 4, 5]))
    data = pd.DataFrame(rows, columns=["kind", "criterion", "n_items", "votes_min", "votes_max",
                                       "level", "fleiss_kappa", "kripp_alpha", "note"])
    disp = pd.DataFrame({
        "Protocol": data["kind"], "Criterion": data["criterion"].map(CRITERIA),
        "items": data["n_items"].astype(str),
        "votes/item": [f"{r.votes_min}" if r.votes_min == r.votes_max else
                       f"{r.votes_min}–{r.votes_max}" for r in data.itertuples()],
        "Krippendorff α": data["kripp_alpha"].map(lambda x: num(x, 3)),
        "Fleiss κ": data["fleiss_kappa"].map(lambda x: num(x, 3)),
        "level": data["level"], "note": data["note"],
    })
    notes = ["Krippendorff's α leads: it takes any number of votes per item, which QC makes "
             "uneven; Fleiss' κ is shown only where every item kept the same number of votes. "
             "Items with at least two kept votes. Pairs: agreement on which system is preferred; "
             "MOS: α at interval level, κ treats the five ratings as categories."]
    return Table("table_agreement", "Agreement between raters", data, disp, notes)


def _loo_agreement(unit: pd.Series, yes: pd.Series) -> pd.Series:
    """Per vote: does it match the strict majority of the *other* votes on its item (NA when the
    others have no majority)?"""
    n = unit.map(unit.value_counts())
    k = yes.groupby(unit).transform("sum")
    on, ok = n - 1, k - yes.astype(int)
    other = pd.Series(pd.NA, index=unit.index, dtype="boolean")
    other[2 * ok > on] = True
    other[2 * ok < on] = False
    return (other == yes).astype("boolean").where(other.notna())


def rater_table(raw: pd.DataFrame, qc: QCResult, pv: pd.DataFrame, rv: pd.DataFrame) -> Table:
    main = raw[raw["trial_role"] == "main"]
    r = qc.raters.set_index("worker_id")
    r["n_assignments"] = raw.groupby("worker_id")["assignment_id"].nunique().reindex(r.index)
    r["n_votes"] = main.groupby("worker_id").size().reindex(r.index).fillna(0).astype(int)
    r["median_work_time_s"] = (raw.drop_duplicates("assignment_id").groupby("worker_id")
                               ["work_time_s"].median().reindex(r.index))
    agree = pd.concat([_loo_agreement(pv["trial_id"], pv["chose_a"]).rename("a")
                       .to_frame().assign(w=pv["worker_id"]),
                       _loo_agreement(rv["trial_id"], rv["judged_real"]).rename("a")
                       .to_frame().assign(w=rv["worker_id"])]).dropna()
    r["agree_with_others"] = agree.groupby("w")["a"].mean().astype(float).reindex(r.index)
    data = r.reset_index()[["worker_id", "n_assignments", "n_votes", "n_votes_kept", "n_checks",
                            "n_failed", "fail_rate", "excluded_by", "median_work_time_s",
                            "agree_with_others"]]
    disp = pd.DataFrame({
        "Rater": data["worker_id"], "assignments": data["n_assignments"].astype(str),
        "votes": data["n_votes"].astype(str), "kept": data["n_votes_kept"].astype(str),
        "checks failed": [f"{r.n_failed}/{r.n_checks}" for r in data.itertuples()],
        "excluded": data["excluded_by"].replace("", "–"),
        "median time (s)": data["median_work_time_s"].map(lambda x: num(x, 1)),
        "% agree with others": data["agree_with_others"].map(pct),
    })
    notes = ["Agreement: share of the rater's pair and real-or-fake votes that match the strict "
             "majority of the other raters on the same item (items without such a majority are "
             "not counted)."]
    return Table("table_raters", "Per-rater summary", data, disp, notes)


def qc_table(qc: QCResult) -> Table:
    data = qc.exclusion_frame()
    disp = data.rename(columns={"rule": "Rule", "reason": "Why", "votes": "votes",
                                "raters": "raters", "assignments": "assignments"}).astype(str)
    notes = [f"{qc.n_input} rows read; {qc.n_check_votes} gold/catch answers used for screening "
             f"only; {len(qc.kept)} main-trial votes analysed."] + qc.notes
    return Table("table_qc", "Quality control — what was dropped and why", data, disp, notes,
                 empty=f"Nothing was dropped: all {len(qc.kept)} main-trial votes read were "
                 "analysed.")
