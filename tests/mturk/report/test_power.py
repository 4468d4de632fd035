"""The plan's cost is the publish verb's estimate (`mturk.publish.estimate_cost`: Decimal, MTurk's fee
per assignment rounded to the cent), and plan, build-study and StudyOptions share one default
reward (`mturk.study.DEFAULT_REWARD`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mturk.publish import estimate_cost
from mturk.report import power
from regnet.cli import build_parser, main


@pytest.mark.parametrize("reward,votes", [("0.13", 3), ("0.10", 3), ("0.50", 3), ("0.02", 3),
                                          ("0.07", 10), ("1.07", 12)])
def test_plan_cost_is_the_publish_estimate_to_the_cent(reward, votes):
    # The plan takes the reward as the --reward flag gives it, or as a number.
    for given in (float(reward), reward):
        p = power.plan(power.PlanOptions(votes_per_item=votes, reward=given))
        est = estimate_cost(reward, votes, p.hits)
        assert p.assignments == votes * p.hits
        assert p.cost_total == est.total and isinstance(p.cost_total, Decimal)
        assert p.reward_total == est.reward * p.assignments
        assert p.fee_total == est.fee * p.assignments
        assert p.reward_total + p.fee_total == p.cost_total


def test_plan_prints_the_publish_estimate(capsys):
    assert main(["plan", "--reward", "0.13", "--votes-per-item", "3"]) == 0
    out = capsys.readouterr().out
    p = power.plan(power.PlanOptions(votes_per_item=3, reward="0.13"))
    est = estimate_cost("0.13", 3, p.hits)
    line = next(x for x in out.splitlines() if x.strip().startswith("cost:"))
    assert f"x $0.13 = ${est.reward * p.assignments:,.2f} reward" in line
    assert f"${est.fee:.2f} per assignment" in line and line.endswith(f"= ${est.total:,.2f}")


def test_plan_refuses_a_reward_publish_would_refuse(capsys):
    assert main(["plan", "--reward", "0.001"]) == 2
    assert "--reward" in capsys.readouterr().err


def test_one_default_reward():
    from mturk.study import DEFAULT_REWARD
    from mturk.trials import StudyOptions

    parser = build_parser()
    assert parser.parse_args(["plan"]).reward == DEFAULT_REWARD
    assert parser.parse_args(["build-study", "--clips", "c.csv", "--out", "o"]).reward == DEFAULT_REWARD
    assert StudyOptions().reward == DEFAULT_REWARD == power.PlanOptions().reward
