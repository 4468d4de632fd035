"""Verbs `report` (votes -> tables, figures, one HTML page) and `plan` (power and cost)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from regnet.errors import UserError


def _add_qc_args(p: argparse.ArgumentParser) -> None:
    from mturk.qc import add_qc_flags

    add_qc_flags(p)  # the same flags, fields and defaults as approve/reject


def _decisions_path(args) -> Path | None:
    """qc_decisions.csv beside the votes (collect, approve and reject write it), else in the
    study folder."""
    cands = []
    if args.votes:
        cands.append(Path(args.votes).parent / "qc_decisions.csv")
    if args.study:
        cands.append(Path(args.study) / "qc_decisions.csv")
    return next((c for c in cands if c.is_file()), None)


def _report(args: argparse.Namespace) -> int:
    from mturk.qc import QCConfig, config_from_flags, read_decisions
    from mturk.report.build import ReportOptions, build_report, write_report
    from mturk.report.inputs import load_study, load_votes

    study = load_study(args.study)
    raw, source = load_votes(args.votes, args.db, study)
    decisions = _decisions_path(args)
    # One rule set: the rules approve/reject used (recorded with their decisions), else the
    # study's qc section, else the defaults; a flag given here overrides one field.
    base = read_decisions(decisions)[1] if decisions else QCConfig.for_study(args.study)
    rules = config_from_flags(args, base)
    command = "regnet-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and sys.argv[0].endswith("regnet-bench") else ""
    real = args.real_system or (study.real_system if study else None) or "real"
    if args.mixed_max_votes is not None and args.mixed_max_votes < 0:
        raise UserError("--mixed-max-votes: must be >= 0 (0 = no limit)")
    opts = ReportOptions(rules=rules, real_system=real,
                         mixed_max_votes=args.mixed_max_votes or None, title=args.title,
                         command=command, focus=args.focus, glmm=args.glmm, decisions=decisions,
                         objective=Path(args.objective) if args.objective else None)
    rep = build_report(raw, source, study, opts)
    for path in write_report(rep, args.out, with_plots=not args.no_plots):
        print(path)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from mturk.report.power import PlanOptions, achieved_power, plan

    o = PlanOptions(effect=args.effect, alpha=args.alpha, power=args.power,
                    votes_per_item=args.votes_per_item, reward=args.reward,
                    items_per_hit=args.items_per_hit, cells=args.cells, icc=args.icc)
    o.check()
    if args.study or args.votes:
        cells = _existing_cells(args)
        if not cells:
            raise UserError("plan: the study holds no paired-comparison (2AFC) trials")
        print(f"Power the existing study had to detect a {o.effect:.0%} preference "
              f"(alpha {o.alpha:g} over {len(cells)} cell(s), exact binomial):")
        for c in achieved_power(cells, o):
            print(f"  {c.label}: {c.n_items} items -> item-level power {c.power_items:.1%}; "
                  f"{c.n_votes} votes -> vote-level power {c.power_votes:.1%}")
        return 0
    for line in plan(o).lines():
        print(line)
    return 0


def _existing_cells(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(label, items, votes) per Table I cell: kept votes when --votes is given (after default
    QC, ties out), else the study's planned trials x --votes-per-item."""
    import pandas as pd

    from mturk.report import aggregate
    from mturk.report.inputs import load_study, load_votes
    from mturk.report.qc import QCRules, apply_qc
    from mturk.report.validate import system_order, validate

    study = load_study(args.study)
    if args.votes:
        raw, source = load_votes(args.votes, None, study)
        qc = apply_qc(validate(raw, source, study), QCRules.for_study(args.study))
        real = (study.real_system if study else None) or "real"
        pv = aggregate.pair_votes(qc.kept, system_order(qc.kept, study, real,
                                                        study.focus if study else None))
        items = aggregate.pair_items(pv)
        cells = []
        for (a, b, q), it in items.groupby(["system_a", "system_b", "question"], sort=False):
            cells.append((f"{a} vs {b}, {q}", int((it["majority"] != "tie").sum()),
                          int(it["n_votes"].sum())))
        return cells
    if study.trials is None:
        raise UserError(f"{study.path}: no trials.csv to count planned trials from")
    t = study.trials
    if "kind" not in t.columns or "question" not in t.columns:
        raise UserError(f"{study.path}/trials.csv: needs kind and question columns")
    role = t["role"] if "role" in t.columns else pd.Series("main", index=t.index)
    main = t[(t["kind"] == "pair") & (role.fillna("main") == "main")]
    k = study.votes_per_item or args.votes_per_item
    if {"left_system", "right_system"} <= set(main.columns):
        pair = [" vs ".join(sorted(ab)) for ab in zip(main["left_system"].fillna("?"),
                                                      main["right_system"].fillna("?"))]
    else:
        pair = ["pair"] * len(main)
    main = main.assign(pair=pair)
    return [(f"{ab}, {q} (planned, {k} votes/item)", len(g), len(g) * k)
            for (ab, q), g in main.groupby(["pair", "question"], sort=False)]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="votes -> Tables I/II, MOS, agreement, QC (md, tex, csv, html, png)",
        description="Turn a votes table (or an MTurk batch CSV / Turkle export, or the local "
        "server's database) into publication tables with honest statistics under --out.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--votes", metavar="FILE",
                     help="votes.csv / .parquet, or an MTurk batch-results / Turkle CSV")
    src.add_argument("--db", metavar="URL", help="the local eval server's SQLAlchemy URL")
    p.add_argument("--study", metavar="DIR", help="study folder (systems, votes per item)")
    p.add_argument("--out", default="results", metavar="DIR", help="output folder (default results/)")
    p.add_argument("--real-system", metavar="NAME",
                   help="name of the real-sound system, the ceiling in Table II (default: the "
                   "study's, else real)")
    p.add_argument("--mixed-max-votes", type=int, default=None, metavar="N",
                   help="fit mixed models only up to N votes per model (default: every model; "
                   "exact sparse REML takes about a second at 30,000 votes)")
    p.add_argument("--focus", metavar="SYSTEM",
                   help="orient comparisons as 'SYSTEM preferred over X' (default: the study's "
                   "focus, the first --clips of build-study)")
    p.add_argument("--objective", metavar="CSV",
                   help="evaluate's objective_clips.csv: add how well each metric predicts the raters")
    p.add_argument("--glmm", action="store_true",
                   help="also fit a logistic GLMM (Laplace) per 2AFC comparison")
    p.add_argument("--title", default="regnet-bench human evaluation")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    _add_qc_args(p)
    p.set_defaults(func=_report)

    q = subparsers.add_parser(
        "plan", help="items x votes and cost to detect a preference; power of an existing study",
        description="Power and cost of a paired-comparison study (statsmodels power analysis, "
        "checked with the exact binomial test). With --study or --votes: the power it had.")
    q.add_argument("--effect", type=float, default=0.60, help="share preferring the better system")
    q.add_argument("--alpha", type=float, default=0.05)
    q.add_argument("--power", type=float, default=0.80)
    q.add_argument("--votes-per-item", type=int, default=3)
    q.add_argument("--reward", type=float, default=0.10, help="USD per assignment")
    q.add_argument("--items-per-hit", type=int, default=1, help="main trials per assignment")
    q.add_argument("--cells", type=int, default=1,
                   help="comparison x criterion cells tested (alpha is split for Holm)")
    q.add_argument("--icc", type=float, default=0.0,
                   help="correlation of votes on one item (inflates the vote-level sample)")
    q.add_argument("--study", metavar="DIR", help="existing study: power it had")
    q.add_argument("--votes", metavar="FILE", help="existing votes: power the kept votes had")
    q.set_defaults(func=_plan)
