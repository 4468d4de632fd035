"""The report's statistics recomputed here with scipy/statsmodels/krippendorff called directly on
a small fixed votes table (ties, a missing vote, a system with zero wins, unbalanced MOS)."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from mturk.votes import VOTE_COLUMNS
from mturk.report.build import ReportOptions, build_report

TOL = 1e-9


def _pair(trial, q, left, right, answers, workers):
    return [dict(trial_id=trial, kind="pair", question=q, left_system=left, right_system=right,
                 answer=a, worker_id=w) for a, w in zip(answers, workers)]


def pair_rows():
    rows = []
    # regnet vs vs, missing: t1 3-0 for regnet, t2 2-1 for regnet (regnet on the right),
    # t3 only two votes and split (a tie), t4 2-1 for vs.
    rows += _pair("m1", "missing", "regnet", "vs", ["left", "left", "left"], ["W1", "W2", "W3"])
    rows += _pair("m2", "missing", "vs", "regnet", ["right", "right", "left"], ["W1", "W2", "W4"])
    rows += _pair("m3", "missing", "regnet", "vs", ["left", "right"], ["W2", "W3"])
    rows += _pair("m4", "missing", "vs", "regnet", ["left", "left", "right"], ["W3", "W4", "W1"])
    # regnet vs woreg, redundant: woreg never wins.
    rows += _pair("r1", "redundant", "woreg", "regnet", ["right"] * 3, ["W1", "W2", "W3"])
    rows += _pair("r2", "redundant", "regnet", "woreg", ["left"] * 3, ["W2", "W3", "W4"])
    rows += _pair("r3", "redundant", "woreg", "regnet", ["right"] * 3, ["W1", "W3", "W4"])
    # regnet vs vs, mismatched.
    rows += _pair("x1", "mismatched", "regnet", "vs", ["left", "right", "left"], ["W1", "W2", "W3"])
    rows += _pair("x2", "mismatched", "vs", "regnet", ["left", "left", "left"], ["W2", "W3", "W4"])
    rows += _pair("x3", "mismatched", "regnet", "vs", ["left", "left", "right"], ["W1", "W2", "W4"])
    return rows


def real_fake_rows():
    rows = []
    spec = {("dog", "regnet"): [["real", "fake", "real"], ["real", "real", "fake"]],
            ("dog", "real"): [["real", "real", "real"], ["real", "fake", "real"]],
            ("drum", "regnet"): [["fake", "fake", "real"], ["fake", "fake", "fake"]],
            ("drum", "real"): [["real", "real", "fake"], ["real", "real"]]}
    for (cls, sys_), items in spec.items():
        for i, answers in enumerate(items):
            for a, w in zip(answers, ["W1", "W2", "W3", "W4"][i:]):
                rows.append(dict(trial_id=f"rf_{cls}_{sys_}_{i}", kind="real_fake",
                                 question="real", left_system=sys_, answer=a, worker_id=w,
                                 **{"class": cls}))
    return rows


def mos_rows():
    # Unbalanced: regnet has 4 clips (one with 2 votes), vs has 3; every rater does not rate all.
    rng = np.random.default_rng(7)
    rows = []
    for sys_, n_items, base in (("regnet", 4, 3.6), ("vs", 3, 2.8)):
        for i in range(n_items):
            raters = ["W1", "W2", "W3", "W4"][(i % 2):(i % 2) + (2 if (sys_, i) == ("regnet", 3) else 3)]
            for w in raters:
                r = int(np.clip(round(base + rng.normal(0, 0.9)), 1, 5))
                rows.append(dict(trial_id=f"mos_{sys_}_{i}", kind="mos", question="mismatched",
                                 left_system=sys_, answer=str(r), worker_id=w, video_id=f"v{i}"))
    return rows


def make_votes(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["assignment_id"] = df["worker_id"] + "_" + df["trial_id"]
    df["work_time_s"] = 60.0
    df["trial_role"] = "main"
    df["played_to_end"] = True
    df["simulated"] = False
    return df.reindex(columns=VOTE_COLUMNS)


@pytest.fixture(scope="module")
def report():
    votes = make_votes(pair_rows() + real_fake_rows() + mos_rows())
    return votes, build_report(votes, "fixed", None, ReportOptions())


def test_table1_matches_scipy_statsmodels(report):
    votes, rep = report
    t1 = rep.table("table1_preference").data
    expected = []
    for a, b, q, trials in (("regnet", "vs", "missing", ["m1", "m2", "m3", "m4"]),
                            ("regnet", "vs", "mismatched", ["x1", "x2", "x3"]),
                            ("regnet", "woreg", "redundant", ["r1", "r2", "r3"])):
        v = votes[votes["trial_id"].isin(trials)]
        chosen = np.where(v["answer"] == "left", v["left_system"], v["right_system"])
        k, n = int((chosen == a).sum()), len(v)
        per_item = pd.Series(chosen == a).groupby(v["trial_id"].to_numpy()).agg(["sum", "size"])
        wins = int((2 * per_item["sum"] > per_item["size"]).sum())
        losses = int((2 * per_item["sum"] < per_item["size"]).sum())
        ties = len(per_item) - wins - losses
        expected.append((a, b, q, k, n, wins, wins + losses, ties))
    for a, b, q, k, n, ki, ni, ties in expected:
        row = t1[(t1.system_a == a) & (t1.system_b == b) & (t1.criterion == q)].iloc[0]
        assert (row.votes_a, row.n_votes, row.items_a, row.n_items_decided, row.n_items_tied) == \
            (k, n, ki, ni, ties)
        lo, hi = proportion_confint(k, n, method="wilson")
        assert row.pref_a == pytest.approx(k / n, abs=TOL)
        assert row.ci_low == pytest.approx(lo, abs=TOL) and row.ci_high == pytest.approx(hi, abs=TOL)
        assert row.p_votes == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, abs=TOL)
        assert row.p_items == pytest.approx(stats.binomtest(ki, ni, 0.5).pvalue, abs=TOL)
        ilo, ihi = proportion_confint(ki, ni, method="wilson")
        assert row.items_ci_low == pytest.approx(ilo, abs=TOL)
    # Holm across the whole table, per level.
    order = [(e[0], e[1], e[2]) for e in expected]
    t1i = t1.set_index(["system_a", "system_b", "criterion"]).loc[order]
    pv = [stats.binomtest(e[3], e[4], 0.5).pvalue for e in expected]
    pi = [stats.binomtest(e[5], e[6], 0.5).pvalue for e in expected]
    np.testing.assert_allclose(t1i["p_votes_holm"], multipletests(pv, method="holm")[1], atol=TOL)
    np.testing.assert_allclose(t1i["p_items_holm"], multipletests(pi, method="holm")[1], atol=TOL)


def test_tie_and_short_item_and_zero_wins(report):
    _, rep = report
    t1 = rep.table("table1_preference").data.set_index("criterion")
    assert t1.loc["missing", "n_items_tied"] == 1 and t1.loc["missing", "n_items_short"] == 1
    zero = t1.loc["redundant"]
    assert zero.system_b == "woreg" and zero.votes_a == zero.n_votes == 9
    assert zero.ci_high == pytest.approx(1.0) and zero.ci_low < 1
    assert "no variation" in zero.mixed_note and math.isnan(zero.mixed_pref_a)


def _statsmodels_fits(formula, data, vc):
    """The same REML model through statsmodels' formula interface, with each of its optimizers;
    only the converged ones."""
    import warnings

    out = {}
    for method in ("powell", "nm", "lbfgs", "bfgs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm(formula, data, groups="one", re_formula="0", vc_formula=vc) \
                .fit(reml=True, method=method)
        out[method] = fit
    return out


def test_mixed_preference_matches_direct_fit(report):
    """Table I's mixed column is a linear probability mixed model (chose A ~ 1 + position, crossed
    rater + item intercepts, REML; it replaced a variational logistic fit that was skipped above
    2,000 votes): the same model through statsmodels MixedLM reaches the same optimum."""
    votes, rep = report
    row = rep.table("table1_preference").data.set_index("criterion").loc["missing"]
    v = votes[votes["trial_id"].str.startswith("m") & (votes["kind"] == "pair")].copy()
    chosen = np.where(v["answer"] == "left", v["left_system"], v["right_system"])
    v["y"] = (chosen == "regnet").astype(float)
    v["pos"] = np.where(v["left_system"] == "regnet", 0.5, -0.5)
    v["one"] = 1
    fits = _statsmodels_fits("y ~ pos", v, {"rater": "0 + C(worker_id)", "item": "0 + C(trial_id)"})
    best = max(fits.values(), key=lambda f: f.llf)
    assert row.mixed_pref_a == pytest.approx(best.fe_params.iloc[0], abs=1e-4)
    # Interval: (X'V^-1 X)^-1 at the variance estimates, built densely here (statsmodels' own
    # cov_params comes from a numerical Hessian and differs in the third digit).
    X = np.column_stack([np.ones(len(v)), v["pos"]])
    cov = _gls_cov(X, v["worker_id"], v["trial_id"], best)
    lo = best.fe_params.iloc[0] - 1.959963984540054 * math.sqrt(cov[0, 0])
    assert row.mixed_ci_low == pytest.approx(max(0.0, lo), abs=1e-4)


def _gls_cov(X, raters, items, fit):
    vc = dict(zip(fit.model.exog_vc.names, fit.vcomp))
    Zr = pd.get_dummies(raters).to_numpy(float)
    Zi = pd.get_dummies(items).to_numpy(float)
    V = fit.scale * np.eye(len(X)) + vc["rater"] * Zr @ Zr.T + vc["item"] * Zi @ Zi.T
    return np.linalg.inv(X.T @ np.linalg.solve(V, X))


def test_real_fake_table(report):
    votes, rep = report
    t2 = rep.table("table2_real_fake").data.set_index(["class", "system"])
    for cls in ("dog", "drum"):
        for sys_ in ("regnet", "real"):
            v = votes[(votes["kind"] == "real_fake") & (votes["class"] == cls)
                      & (votes["left_system"] == sys_)]
            k, n = int((v["answer"] == "real").sum()), len(v)
            row = t2.loc[(cls, sys_)]
            assert (row.n_real, row.n_votes) == (k, n)
            lo, hi = proportion_confint(k, n, method="wilson")
            assert row.ci_low == pytest.approx(lo, abs=TOL) and row.ci_high == pytest.approx(hi, abs=TOL)
        real = votes[(votes["class"] == cls) & (votes["left_system"] == "real")]
        ceiling = (real["answer"] == "real").mean()
        assert t2.loc[(cls, "regnet"), "ceiling"] == pytest.approx(ceiling, abs=TOL)
    # drum/real has a 2-vote item split 2-0: decided, and no tie anywhere here.
    assert t2.loc[("drum", "real"), "n_items_decided"] == 2
    pooled = votes[(votes["kind"] == "real_fake") & (votes["left_system"] == "regnet")]
    assert t2.loc[("all classes", "regnet"), "real_rate"] == pytest.approx(
        (pooled["answer"] == "real").mean(), abs=TOL)


def test_mos_t_intervals_and_mixedlm(report):
    votes, rep = report
    tm = rep.table("table_mos").data.set_index("system")
    m = votes[votes["kind"] == "mos"].copy()
    m["rating"] = m["answer"].astype(float)
    for s in ("regnet", "vs"):
        r = m.loc[m["left_system"] == s, "rating"]
        lo, hi = stats.t.interval(0.95, len(r) - 1, loc=r.mean(), scale=stats.sem(r))
        assert tm.loc[s, "mean"] == pytest.approx(r.mean(), abs=TOL)
        # The interval stays on the 1-5 scale: a t interval crossing 1 is cut there, and says so.
        assert tm.loc[s, "ci_low"] == pytest.approx(max(lo, 1.0), abs=TOL)
        assert tm.loc[s, "ci_high"] == pytest.approx(min(hi, 5.0), abs=TOL)
        assert tm.loc[s, "ci_method"] == ("t" if 1 <= lo and hi <= 5 else "t, cut at the scale")
        im = m[m["left_system"] == s].groupby("trial_id")["rating"].mean()
        ilo, _ = stats.t.interval(0.95, len(im) - 1, loc=im.mean(), scale=stats.sem(im))
        assert tm.loc[s, "items_ci_low"] == pytest.approx(max(ilo, 1.0), abs=TOL)
    m["one"] = 1
    fits = _statsmodels_fits("rating ~ 0 + C(left_system)", m,
                             {"rater": "0 + C(worker_id)", "item": "0 + C(video_id)"})
    # Both variance components sit on the boundary here. statsmodels' Powell and Nelder-Mead reach
    # that optimum; its L-BFGS (which this table used before) stops short while its estimates
    # move by ~0.002: the table's exact REML must match the best optimum, not the first.
    best = max(fits.values(), key=lambda f: f.llf)
    assert best.converged and -2 * fits["lbfgs"].llf > -2 * best.llf + 0.1
    fe = best.fe_params
    assert tm.loc["regnet", "mixed_mean"] == pytest.approx(fe.iloc[0], abs=1e-6)
    assert tm.loc["vs", "mixed_mean"] == pytest.approx(fe.iloc[1], abs=1e-6)
    c = rep.table("table_mos_contrasts").data.iloc[0]
    assert c["diff"] == pytest.approx(fe.iloc[0] - fe.iloc[1], abs=1e-6)
    X = np.column_stack([(m["left_system"] == s).to_numpy(float) for s in ("regnet", "vs")])
    cov = _gls_cov(X, m["worker_id"], m["video_id"], best)
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert c["se"] == pytest.approx(se, rel=1e-4)
    assert any("boundary" in n for n in rep.table("table_mos").notes)
    # One contrast: Holm leaves it unchanged.
    assert c["p_holm"] == pytest.approx(c["p"], abs=TOL)


def test_agreement_fleiss_and_krippendorff(report):
    votes, rep = report
    ag = rep.table("table_agreement").data.set_index(["kind", "criterion"])
    # redundant: all items have 3 votes -> Fleiss computed; but all votes agree (kappa undefined
    # by the formula's 0/0) -> use mismatched, 3 votes each.
    x = votes[votes["trial_id"].str.startswith("x")]
    chosen = np.where(x["answer"] == "left", x["left_system"], x["right_system"])
    wide = pd.DataFrame({"t": x["trial_id"].to_numpy(), "r": np.arange(len(x)) % 3,
                         "c": (chosen == "regnet").astype(int)}).pivot(index="t", columns="r",
                                                                      values="c")
    table, _ = aggregate_raters(wide.to_numpy())
    assert ag.loc[("pair", "mismatched"), "fleiss_kappa"] == pytest.approx(fleiss_kappa(table), abs=TOL)
    # missing: votes per item vary (2-3) -> no Fleiss, Krippendorff from raters x units data.
    row = ag.loc[("pair", "missing")]
    assert math.isnan(row.fleiss_kappa) and "vary" in row.note
    mv = votes[votes["trial_id"].str.startswith("m") & (votes["kind"] == "pair")]
    chosen = np.where(mv["answer"] == "left", mv["left_system"], mv["right_system"])
    rel = pd.DataFrame({"w": mv["worker_id"].to_numpy(), "t": mv["trial_id"].to_numpy(),
                        "c": (chosen == "regnet").astype(float)}).pivot(index="w", columns="t",
                                                                         values="c")
    a = krippendorff.alpha(reliability_data=rel.to_numpy(), level_of_measurement="nominal")
    assert row.kripp_alpha == pytest.approx(a, abs=TOL)
    mos = votes[votes["kind"] == "mos"]
    rel = mos.pivot(index="worker_id", columns="trial_id", values="answer").astype(float)
    a = krippendorff.alpha(reliability_data=rel.to_numpy(), level_of_measurement="interval")
    assert ag.loc[("mos", "mismatched"), "kripp_alpha"] == pytest.approx(a, abs=TOL)
