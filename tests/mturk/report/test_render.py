"""Output files: LaTeX well-formed, the simulated-rater label everywhere, a self-contained HTML
page; the CLI verbs end to end; the batch-CSV input path; `plan` against statsmodels directly."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from mturk.votes import VOTE_COLUMNS, write_votes
from regnet.cli import main
from mturk.report import power
from mturk.report.render import tex_escape


def small_votes(simulated: bool) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(8):
        for j, w in enumerate(("W1", "W2", "W3")):
            left, right = ("regnet", "vs") if i % 2 else ("vs", "regnet")
            rows.append(dict(trial_id=f"p{i}", kind="pair", question=("missing", "mismatched")[i % 2],
                             left_system=left, right_system=right,
                             answer=("left", "right")[int(rng.random() < 0.4)], worker_id=w))
            rows.append(dict(trial_id=f"r{i}", kind="real_fake", question="real",
                             left_system=("regnet", "real")[i % 2], answer=("real", "fake")[j == 2],
                             worker_id=w, **{"class": ("dog", "drum_100%")[i // 4]}))
            rows.append(dict(trial_id=f"q{i}", kind="mos", question="redundant",
                             left_system=("regnet", "vs")[i % 2], answer=str(1 + (i + j) % 5),
                             worker_id=w, video_id=f"v{i // 2}"))
    df = pd.DataFrame(rows)
    df["assignment_id"] = "A_" + df["worker_id"]
    df["hit_id"] = "H1"
    df["study"] = "s"
    df["submit_time"] = "2025-01-01T00:00:00+00:00"
    df["work_time_s"] = 300.0
    df["trial_role"] = "main"
    df["played_to_end"] = True
    df["simulated"] = simulated
    return df.reindex(columns=VOTE_COLUMNS)


@pytest.fixture(scope="module")
def sim_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    write_votes(d / "votes.csv", small_votes(True))
    assert main(["report", "--votes", str(d / "votes.csv"), "--out", str(d / "results")]) == 0
    return d / "results"


def test_every_output_says_simulated(sim_report):
    for name in ("report.md", "report.tex", "report.html"):
        text = (sim_report / name).read_text()
        assert "SIMULATED RATERS" in text, name
    for csv in sim_report.glob("*.csv"):
        assert pd.read_csv(csv)["simulated_raters"].all(), csv.name
    for png in ("preference.png", "real_fake.png", "mos.png"):
        assert (sim_report / png).stat().st_size > 1000


def test_latex_balanced_and_escaped(sim_report):
    tex = (sim_report / "report.tex").read_text()
    body = re.sub(r"\\[{}%&$#_]", "", tex)
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    for line in tex.splitlines():
        if not line.startswith("%"):
            assert re.search(r"(?<!\\)%", line) is None, line
    assert r"drum\_100\%" in tex
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") >= 5
    assert not re.search(r"[κα–−]", tex)
    assert tex_escape("50% & a_b {x} #1 $") == r"50\% \& a\_b \{x\} \#1 \$"


def test_html_is_self_contained(sim_report):
    html = (sim_report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html


def test_human_votes_carry_no_banner(tmp_path):
    write_votes(tmp_path / "v.csv", small_votes(False))
    assert main(["report", "--votes", str(tmp_path / "v.csv"), "--out", str(tmp_path / "o"),
                 "--no-plots"]) == 0
    assert "SIMULATED" not in (tmp_path / "o" / "report.md").read_text()
    assert not list((tmp_path / "o").glob("*.png"))


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    df = small_votes(False)
    df.loc[df.index[2], "answer"] = "9"
    write_votes(tmp_path / "v.csv", df)
    assert main(["report", "--votes", str(tmp_path / "v.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "outside 1-5" in err and "\n" not in err


def test_batch_csv_input_gives_the_same_tables(tmp_path):
    batch_csv = pytest.importorskip("mturk.batch_csv")
    votes = small_votes(False)
    write_votes(tmp_path / "votes.csv", votes)
    batch_csv.export_batch_csv(votes, tmp_path / "batch.csv")
    assert main(["report", "--votes", str(tmp_path / "votes.csv"), "--out", str(tmp_path / "a"),
                 "--no-plots"]) == 0
    assert main(["report", "--votes", str(tmp_path / "batch.csv"), "--out", str(tmp_path / "b"),
                 "--no-plots"]) == 0
    for name in ("table1_preference.csv", "table2_real_fake.csv", "table_mos.csv"):
        a, b = pd.read_csv(tmp_path / "a" / name), pd.read_csv(tmp_path / "b" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-9)


def test_plan_matches_statsmodels_and_exact_binomial():
    o = power.PlanOptions(effect=0.60, alpha=0.05, power=0.8, votes_per_item=3, reward=0.10)
    p = power.plan(o)
    item_pref = stats.binom.sf(1, 3, 0.6)     # P(at least 2 of 3 prefer)
    assert p.item_pref == pytest.approx(item_pref, abs=1e-12)
    n = NormalIndPower().solve_power(proportion_effectsize(item_pref, 0.5), alpha=0.05,
                                     power=0.8, ratio=0)
    assert p.items_normal == pytest.approx(n, abs=1e-9)
    # The chosen n is the first whose exact two-sided binomial test reaches the power.

    def exact(n, q):
        ks = np.arange(n + 1)
        pv = np.array([stats.binomtest(int(k), n, 0.5).pvalue for k in ks])
        return stats.binom.pmf(ks[pv <= 0.05], n, q).sum()
    assert exact(p.items_item_test, item_pref) >= 0.8 > exact(p.items_item_test - 1, item_pref)
    assert exact(p.votes_vote_test, 0.6) >= 0.8 > exact(p.votes_vote_test - 1, 0.6)
    assert p.items_per_cell == max(p.items_item_test, math.ceil(p.votes_vote_test / 3))
    assert p.assignments == p.items_total * 3
    assert p.cost_total == p.assignments * Decimal("0.12")
    big = power.plan(power.PlanOptions(votes_per_item=10, reward=1.0))
    assert big.cost_total == big.assignments * Decimal("1.40")   # +20% at >= 10
    tiny = power.plan(power.PlanOptions(reward=0.02))
    assert tiny.fee_total == tiny.assignments * Decimal("0.01")  # $0.01 minimum


def test_plan_cli_new_and_existing(tmp_path, capsys):
    assert main(["plan", "--effect", "0.6", "--alpha", "0.05", "--power", "0.8",
                 "--votes-per-item", "3", "--reward", "0.10"]) == 0
    out = capsys.readouterr().out
    assert "90 items" in out and "$32.40" in out
    write_votes(tmp_path / "v.csv", small_votes(False))
    assert main(["plan", "--votes", str(tmp_path / "v.csv")]) == 0
    out = capsys.readouterr().out
    assert "regnet vs vs, missing" in out and "power" in out
    assert main(["plan", "--effect", "0.45"]) == 2


def test_plan_on_a_study_folder(tmp_path, capsys):
    import json

    (tmp_path / "study.json").write_text(json.dumps(
        {"systems": ["regnet", "vs"], "max_assignments": 3, "real_system": "real"}))
    pd.DataFrame({"trial_id": [f"t{i}" for i in range(6)] + ["g"], "kind": "pair",
                  "question": ["missing"] * 4 + ["redundant"] * 2 + ["missing"],
                  "role": ["main"] * 6 + ["gold"], "left_system": "regnet",
                  "right_system": "vs"}).to_csv(tmp_path / "trials.csv", index=False)
    assert main(["plan", "--study", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    win = stats.binom.sf(1, 3, 0.6)
    p4 = power.exact_power(4, win, 0.05 / 2)
    assert f"regnet vs vs, missing (planned, 3 votes/item): 4 items -> item-level power {p4:.1%}" in out


def test_plots_survive_zero_width_intervals(tmp_path):
    """Every MOS vote the same (a zero-width t interval) once crashed matplotlib with a rounding-error
    negative bar length; the quickstart's report hit it."""
    from mturk.report.plots import mos_plot

    tm = pd.DataFrame({"criterion": ["missing", "missing"], "system": ["regnet", "woreg"],
                       "mean": [0.1 + 0.2, 3.0], "ci_low": [0.3, float("nan")], "ci_high": [0.3, float("nan")]})
    out = mos_plot(tm, tmp_path / "mos.png", None)
    assert out is not None and out.stat().st_size > 0


def _pairs(a_wins: float, n_items=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        left, right = ("baseline", "regnet") if i % 2 else ("regnet", "baseline")
        for w in ("W1", "W2", "W3"):
            pick_regnet = rng.random() < a_wins
            rows.append(dict(trial_id=f"p{i}", kind="pair", question="mismatched", left_system=left,
                             right_system=right, worker_id=w, video_id=f"v{i}",
                             answer="left" if (left == "regnet") == pick_regnet else "right"))
    return rows


def _frame(rows):
    df = pd.DataFrame(rows)
    df["assignment_id"] = "A_" + df["worker_id"]
    df["work_time_s"] = 600.0
    df["trial_role"] = "main"
    df["played_to_end"] = True
    df["simulated"] = False
    return df.reindex(columns=VOTE_COLUMNS)


def test_comparisons_oriented_by_the_focus_system(tmp_path):
    from regnet.errors import UserError
    from mturk.report.build import ReportOptions, build_report
    from mturk.report.inputs import load_study

    votes = _frame(_pairs(0.6))
    share = None
    rep = build_report(votes, "v", None, ReportOptions(focus="regnet"))
    t1 = rep.table("table1_preference")
    row = t1.data.iloc[0]
    assert (row.system_a, row.system_b) == ("regnet", "baseline")
    share = row.pref_a
    assert share > 0.5 and t1.display["Comparison"].iloc[0] == "regnet preferred over baseline"
    # The study's focus (first --clips) is the default; alphabetical order once printed
    # "baseline vs regnet" with the focus system's loss.
    d = tmp_path / "study"
    d.mkdir()
    (d / "study.json").write_text(json.dumps({"systems": ["regnet", "baseline", "real"],
                                              "real_system": "real"}))
    rep = build_report(votes, "v", load_study(d), ReportOptions())
    assert rep.table("table1_preference").data.iloc[0].pref_a == pytest.approx(share)
    with pytest.raises(UserError, match="--focus"):
        build_report(votes, "v", None, ReportOptions(focus="nobody"))


def test_mos_intervals_stay_on_the_scale_and_say_how():
    from mturk.report.build import ReportOptions, build_report

    rows = []
    for i, (sys_, ratings) in enumerate([("regnet", (1, 1, 2)), ("vs", (3, 3, 3)),
                                         ("real", (4, 5, 3))]):
        for j, (w, r) in enumerate(zip(("W1", "W2", "W3"), ratings)):
            rows.append(dict(trial_id=f"q{i}", kind="mos", question="missing", left_system=sys_,
                             answer=str(r), worker_id=w, video_id=f"v{i}"))
    rep = build_report(_frame(rows), "v", None, ReportOptions())
    tm = rep.table("table_mos")
    d = tm.data.set_index("system")
    assert 1.0 <= d.loc["regnet", "ci_low"] and d.loc["regnet", "ci_method"] == "t, cut at the scale"
    assert d.loc["vs", "ci_method"] == "bounded"
    assert 1.0 <= d.loc["vs", "ci_low"] < 3.0 < d.loc["vs", "ci_high"] <= 5.0
    assert (d["ci_low"] >= 1).all() and (d["ci_high"] <= 5).all()
    disp = tm.display.set_index("System")
    assert disp.loc["regnet", "95% CI (votes)"].endswith("*")
    assert disp.loc["vs", "95% CI (votes)"].endswith("†")
    assert "[3.00, 3.00]" not in tm.display.to_string()


def test_agreement_leads_with_krippendorff_and_says_why_kappa_is_missing():
    from mturk.report.build import ReportOptions, build_report

    rows = _pairs(0.7)
    rows = [r for r in rows if not (r["trial_id"] == "p0" and r["worker_id"] == "W3")]
    ag = build_report(_frame(rows), "v", None, ReportOptions()).table("table_agreement")
    cols = list(ag.display.columns)
    assert cols.index("Krippendorff α") < cols.index("Fleiss κ")
    assert "votes per item vary" in ag.data["note"].iloc[0] and "α" in ag.data["note"].iloc[0]


def test_qc_section_never_says_no_votes_after_analysing_votes(tmp_path):
    write_votes(tmp_path / "votes.csv", small_votes(False))
    assert main(["report", "--votes", str(tmp_path / "votes.csv"), "--out", str(tmp_path / "r"),
                 "--no-plots"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    qc_part = md.split("### Quality control")[1].split("###")[0]
    assert "No votes of this kind" not in qc_part and "Nothing was dropped: all 72" in qc_part


def _capture(monkeypatch):
    from mturk.report import plots

    got = {}
    real = plots._finish

    def keep(fig, ax, path, banner):
        fig.canvas.draw()
        got["fig"], got["ax"] = fig, ax
        got["axes_box"] = ax.get_window_extent()
        leg = ax.get_legend()
        got["legend_box"] = leg.get_window_extent() if leg else None
        got["patches"] = len(ax.patches)
        got["points"] = [ln.get_xydata() for ln in ax.get_lines()]
        return real(fig, ax, path, banner)
    monkeypatch.setattr(plots, "_finish", keep)
    return got


def test_plots_a_reader_can_trust(tmp_path, monkeypatch):
    from mturk.report import plots

    got = _capture(monkeypatch)
    tm = pd.DataFrame({"criterion": ["missing"] * 2, "system": ["regnet", "vs"],
                       "mean": [1.0, 3.2], "ci_low": [1.0, 2.9], "ci_high": [1.4, 3.5]})
    plots.mos_plot(tm, tmp_path / "mos.png", None)
    # Points with intervals, not bars from the bottom of the scale (a mean of 1.0 stays visible).
    assert got["patches"] == 0
    ys = np.concatenate([p[:, 1] for p in got["points"] if len(p)])
    assert 1.0 in ys
    assert not got["legend_box"].overlaps(got["axes_box"])
    t1 = pd.DataFrame({"system_a": ["regnet", "regnet"], "system_b": ["vs", "woreg"],
                       "criterion": ["missing", "redundant"], "pref_a": [0.0, 0.6],
                       "ci_low": [0.0, 0.5], "ci_high": [0.2, 0.7]})
    plots.preference_plot(t1, tmp_path / "pref.png", None)
    assert not got["legend_box"].overlaps(got["axes_box"])
    xs = np.concatenate([p[:, 0] for p in got["points"] if len(p)])
    assert 0.0 in xs    # a 0% row carries a point, not only whiskers
    t2 = pd.DataFrame({"class": ["dog", "dog"], "system": ["regnet", "real"],
                       "real_rate": [0.0, 0.8], "ci_low": [0.0, 0.6], "ci_high": [0.3, 0.9]})
    plots.real_fake_plot(t2, tmp_path / "rf.png", None)
    assert not got["legend_box"].overlaps(got["axes_box"])
    zero = [b for b in got["ax"].patches if b.get_height() == 0]
    assert zero and all(b.get_linewidth() > 0 for b in zero)   # outlined, so visible
    assert any(t.get_text() == "0%" for t in got["ax"].texts)


def test_objective_metrics_as_predictors_of_the_raters(tmp_path):
    """report --objective: 2AFC agreement with the metric's ranking and a logistic fit, MOS rank
    correlation, recomputed here with statsmodels/scipy directly."""
    import statsmodels.api as sm
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(1)
    n_vid = 30
    f1 = {("regnet", f"v{i}"): rng.uniform(0.2, 0.9) for i in range(n_vid)}
    f1.update({("baseline", f"v{i}"): rng.uniform(0.1, 0.6) for i in range(n_vid)})
    obj = pd.DataFrame([dict(system=s, video_id=v, onset_f1=x, mel_l2_x100=40 - 20 * x,
                             n_onsets=3) for (s, v), x in f1.items()])
    obj.to_csv(tmp_path / "objective_clips.csv", index=False)
    rows = []
    for i in range(n_vid):
        v = f"v{i}"
        left, right = ("regnet", "baseline") if i % 2 else ("baseline", "regnet")
        d = f1[(left, v)] - f1[(right, v)]
        for w in ("W1", "W2", "W3"):
            rows.append(dict(trial_id=f"p{i}", kind="pair", question="missing", left_system=left,
                             right_system=right, video_id=v, worker_id=w,
                             answer="left" if rng.random() < 1 / (1 + np.exp(-6 * d)) else "right"))
            for s in ("regnet", "baseline"):
                rows.append(dict(trial_id=f"m{i}{s}", kind="mos", question="missing",
                                 left_system=s, video_id=v, worker_id=w,
                                 answer=str(int(np.clip(round(1 + 4 * f1[(s, v)] + rng.normal(0, .7)), 1, 5)))))
    votes = _frame(rows)
    write_votes(tmp_path / "votes.csv", votes)
    assert main(["report", "--votes", str(tmp_path / "votes.csv"), "--out", str(tmp_path / "r"),
                 "--no-plots", "--objective", str(tmp_path / "objective_clips.csv")]) == 0
    t = pd.read_csv(tmp_path / "r" / "table_objective.csv").set_index(["protocol", "metric"])
    pv = votes[votes.kind == "pair"]
    d = np.array([f1[(a, v)] - f1[(b, v)] for a, b, v in zip(pv.left_system, pv.right_system, pv.video_id)])
    left = (pv.answer == "left").to_numpy()
    k, n = int((left == (d > 0)).sum()), len(d)
    row = t.loc[("pair", "onset_f1")]
    assert row.agreement == pytest.approx(k / n) and row.agreement > 0.6
    lo, hi = proportion_confint(k, n, method="wilson")
    assert row.agree_low == pytest.approx(lo) and row.agree_high == pytest.approx(hi)
    fit = sm.Logit(left.astype(float), sm.add_constant(d / d.std())).fit(disp=0)
    assert row.slope == pytest.approx(fit.params[1], rel=1e-6) and row.slope_low > 0
    # mel L2 is smaller-is-better: oriented the same way, it agrees as well.
    assert t.loc[("pair", "mel_l2_x100"), "agreement"] == pytest.approx(k / n)
    mv = votes[votes.kind == "mos"].assign(r=lambda x: x.answer.astype(float))
    clip = mv.groupby(["left_system", "video_id"])["r"].mean()
    x = np.array([f1[ix] for ix in clip.index])
    rho = stats.spearmanr(x, clip.to_numpy()).statistic
    assert t.loc[("mos", "onset_f1"), "rho"] == pytest.approx(rho) and rho > 0.5
    assert "n_onsets" not in set(t.index.get_level_values("metric"))
