"""Output files: LaTeX well-formed, the simulated-rater label everywhere, a self-contained HTML
page; the CLI verbs end to end; the batch-CSV input path; `plan` against statsmodels directly."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from mturk.votes import VOTE_COLUMNS, write_votes
from regnet.cli import main
from regnet.report import power
from regnet.report.render import tex_escape


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
    assert p.cost_total == pytest.approx(p.assignments * 0.10 * 1.2, abs=1e-9)
    big = power.plan(power.PlanOptions(votes_per_item=10, reward=1.0))
    assert big.cost_total == pytest.approx(big.assignments * 1.4, abs=1e-9)   # +20% at >= 10
    tiny = power.plan(power.PlanOptions(reward=0.02))
    assert tiny.fee_total == pytest.approx(tiny.assignments * 0.01, abs=1e-9)  # $0.01 minimum


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
    from regnet.report.plots import mos_plot

    tm = pd.DataFrame({"criterion": ["missing", "missing"], "system": ["regnet", "woreg"],
                       "mean": [0.1 + 0.2, 3.0], "ci_low": [0.3, float("nan")], "ci_high": [0.3, float("nan")]})
    out = mos_plot(tm, tmp_path / "mos.png", None)
    assert out is not None and out.stat().st_size > 0
