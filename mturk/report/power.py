"""Power and cost of a 2AFC study (`regnet-bench plan`): how many items x votes detect a given
preference against 50%, what that costs on MTurk, and what power an existing study had.

Sample sizes come from statsmodels' normal-approximation power analysis (Cohen's h, one-sample),
then are checked, and raised where needed, against the exact binomial test the report runs.
Votes on one item are treated as independent draws with the same preference; `icc` inflates the
vote-level sample for raters agreeing more than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from scipy import stats

from mturk.publish import CostEstimate, estimate_cost, fee_rate
from mturk.study import DEFAULT_REWARD, parse_reward
from regnet.errors import UserError


@dataclass(frozen=True)
class PlanOptions:
    effect: float = 0.60           # true share of votes preferring the better system
    alpha: float = 0.05
    power: float = 0.80
    votes_per_item: int = 3
    reward: str | float = DEFAULT_REWARD  # USD per assignment, as build-study's --reward takes it
    items_per_hit: int = 1         # main trials per assignment (gold/catch extra, unpaid per item)
    cells: int = 1                 # comparison x criterion cells (rows of Table I), each tested
    icc: float = 0.0               # intra-item correlation of votes (vote-level design effect)

    def check(self) -> None:
        if not 0.5 < self.effect < 1:
            raise UserError(f"--effect: {self.effect} must lie strictly between 0.5 and 1")
        if not 0 < self.alpha < 1 or not 0 < self.power < 1:
            raise UserError("--alpha and --power must lie strictly between 0 and 1")
        if self.votes_per_item < 1 or self.items_per_hit < 1 or self.cells < 1:
            raise UserError("--votes-per-item, --items-per-hit and --cells must be at least 1")
        parse_reward(self.reward)  # the amounts build-study and MTurk take: at least $0.01, cents
        if not 0 <= self.icc < 1:
            raise UserError(f"--icc: {self.icc} must lie in [0, 1)")

    @property
    def cell_alpha(self) -> float:
        # Holm's first step is Bonferroni: planning for it guarantees every cell its power.
        return self.alpha / self.cells


def majority(p: float, k: int) -> tuple[float, float]:
    """(P(majority prefers A), P(tie)) for k independent votes each preferring A with p."""
    dist = stats.binom(k, p)
    win = float(dist.sf(k // 2))  # P(K > k/2) for odd and even k alike
    tie = float(dist.pmf(k // 2)) if k % 2 == 0 else 0.0
    return win, tie


def exact_power(n: int, p: float, alpha: float) -> float:
    """Power of the two-sided exact binomial test of 50% at n trials when the truth is p."""
    if n <= 0:
        return 0.0
    # Under 0.5 the two-sided p-value is min(1, 2 P(K <= min(k, n-k))): reject for tails <= c.
    c = int(stats.binom.ppf(alpha / 2, n, 0.5))
    while c >= 0 and 2 * stats.binom.cdf(c, n, 0.5) > alpha:
        c -= 1
    while 2 * stats.binom.cdf(c + 1, n, 0.5) <= alpha:
        c += 1
    if c < 0:
        return 0.0
    return float(stats.binom.cdf(c, n, p) + stats.binom.sf(n - c - 1, n, p))


def normal_n(p: float, alpha: float, power: float) -> float:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(p, 0.5)
    return float(NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=0,
                                              alternative="two-sided"))


def exact_n(p: float, alpha: float, power: float, start: float) -> int:
    """Smallest n from about the normal approximation on with exact power >= target (the exact
    power saw-tooths, so this is the first n that reaches it, not a guarantee for every larger n)."""
    n = max(1, int(math.floor(start * 0.8)))
    while exact_power(n, p, alpha) < power:
        n += 1
        if n > 10_000_000:
            raise UserError("plan: no feasible sample size (effect too close to 0.5)")
    return n


@dataclass
class Plan:
    options: PlanOptions
    item_pref: float          # preference of an item's majority, given a decided item
    tie_rate: float
    items_normal: float       # statsmodels normal approximation, decided items, item-level test
    items_item_test: int      # items (incl. expected ties) for the item-level exact test
    votes_vote_test: int      # effective votes for the vote-level exact test
    items_vote_test: int      # items for the vote-level test (design effect applied)
    items_per_cell: int
    items_total: int
    hits: int
    assignments: int
    # The cost is publish-hits' estimate (`mturk.publish.estimate_cost`), in Decimal dollars.
    reward_total: Decimal
    fee_total: Decimal
    cost_total: Decimal
    fee_rate: Decimal
    estimate: CostEstimate

    def lines(self) -> list[str]:
        o = self.options
        return [
            f"Detect a {o.effect:.0%} preference vs 50% at alpha={o.alpha:g} "
            f"({o.cells} cell(s), per-cell alpha {o.cell_alpha:.4g}) with power {o.power:.0%}, "
            f"{o.votes_per_item} vote(s) per item:",
            f"  item level (majority): an item's majority prefers at {self.item_pref:.1%}"
            + (f", ties {self.tie_rate:.1%}" if self.tie_rate else "")
            + f"; statsmodels normal approx. {math.ceil(self.items_normal)} decided items; "
            f"exact binomial {self.items_item_test} items",
            f"  vote level: {self.votes_vote_test} votes"
            + (f" x design effect {1 + (o.votes_per_item - 1) * o.icc:.2f}" if o.icc else "")
            + f" -> {self.items_vote_test} items",
            f"  plan: {self.items_per_cell} items per cell x {o.cells} cell(s) = "
            f"{self.items_total} items x {o.votes_per_item} votes",
            f"  cost: {self.hits} HITs x {o.votes_per_item} assignments = {self.assignments} "
            f"assignments x ${self.estimate.reward:.2f} = ${self.reward_total:,.2f} reward + "
            f"${self.fee_total:,.2f} MTurk fee (${self.estimate.fee:.2f} per assignment: "
            f"{self.fee_rate:.0%} of the reward to the cent, min $0.01) = ${self.cost_total:,.2f}",
            "  assumes votes on an item are independent draws; correlated raters make the "
            "majority less decisive (set --icc to inflate the vote-level sample).",
        ]


def cost(items_total: int, o: PlanOptions) -> CostEstimate:
    """What publish-hits would estimate for these items: ``votes_per_item`` assignments per HIT."""
    hits = math.ceil(items_total / o.items_per_hit)
    return estimate_cost(parse_reward(o.reward), o.votes_per_item, hits)


def plan(o: PlanOptions) -> Plan:
    o.check()
    k = o.votes_per_item
    win, tie = majority(o.effect, k)
    item_pref = win / (1 - tie)
    if item_pref <= 0.5:
        raise UserError("plan: with these votes per item the majority carries no preference")
    a = o.cell_alpha
    n_norm = normal_n(item_pref, a, o.power)
    decided = exact_n(item_pref, a, o.power, n_norm)
    items_item = math.ceil(decided / (1 - tie))
    votes = exact_n(o.effect, a, o.power, normal_n(o.effect, a, o.power))
    deff = 1 + (k - 1) * o.icc
    items_vote = math.ceil(votes * deff / k)
    per_cell = max(items_item, items_vote)
    total = per_cell * o.cells
    est = cost(total, o)
    asg = est.hits * est.assignments
    return Plan(o, item_pref, tie, n_norm, items_item, votes, items_vote, per_cell, total, est.hits,
                asg, est.reward * asg, est.fee * asg, est.total, fee_rate(est.assignments), est)


@dataclass
class AchievedPower:
    label: str
    n_items: int
    n_votes: int
    power_items: float
    power_votes: float


def achieved_power(cells: list[tuple[str, int, int]], o: PlanOptions) -> list[AchievedPower]:
    """Power each existing cell (label, decided items, votes) had to detect `o.effect`."""
    win, tie = majority(o.effect, o.votes_per_item)
    item_pref = win / (1 - tie)
    a = o.alpha / max(1, len(cells))
    return [AchievedPower(lbl, ni, nv, exact_power(ni, item_pref, a),
                          exact_power(int(nv / (1 + (o.votes_per_item - 1) * o.icc)), o.effect, a))
            for lbl, ni, nv in cells]


def existing_cells(study, votes, source: str = "",
                   votes_per_item: int = 3) -> list[tuple[str, int, int]]:
    """(label, items, votes) per Table I cell of an existing study: its kept votes when ``votes`` is
    given (after the study's QC rules, ties out), else its planned main 2AFC trials x the votes per
    item (the study's own, else ``votes_per_item``). ``study``: `mturk.report.inputs.StudyInfo`."""
    import pandas as pd

    from mturk.report import aggregate
    from mturk.report.qc import QCRules, apply_qc
    from mturk.report.validate import system_order, validate

    if votes is not None:
        qc = apply_qc(validate(votes, source, study), QCRules.for_study(study.path if study else None))
        real = (study.real_system if study else None) or "real"
        pv = aggregate.pair_votes(qc.kept, system_order(qc.kept, study, real, study.focus if study else None))
        items = aggregate.pair_items(pv)
        return [(f"{a} vs {b}, {q}", int((it["majority"] != "tie").sum()), int(it["n_votes"].sum()))
                for (a, b, q), it in items.groupby(["system_a", "system_b", "question"], sort=False)]
    if study is None or study.trials is None:
        raise UserError(f"{study.path if study else '--study'}: no trials.csv to count planned trials from")
    t = study.trials
    if "kind" not in t.columns or "question" not in t.columns:
        raise UserError(f"{study.path}/trials.csv: needs kind and question columns")
    role = t["role"] if "role" in t.columns else pd.Series("main", index=t.index)
    main = t[(t["kind"] == "pair") & (role.fillna("main") == "main")]
    k = study.votes_per_item or votes_per_item
    if {"left_system", "right_system"} <= set(main.columns):
        pair = [" vs ".join(sorted(ab)) for ab in zip(main["left_system"].fillna("?"),
                                                      main["right_system"].fillna("?"))]
    else:
        pair = ["pair"] * len(main)
    main = main.assign(pair=pair)
    return [(f"{ab}, {q} (planned, {k} votes/item)", len(g), len(g) * k)
            for (ab, q), g in main.groupby(["pair", "question"], sort=False)]
