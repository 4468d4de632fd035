"""Verbs `report` (votes -> tables, figures, one HTML page) and `plan` (power and cost)."""

from __future__ import annotations

import argparse
import shlex
import sys

from regnet.errors import UserError


def _add_qc_args(p: argparse.ArgumentParser) -> None:
    from regnet.report.qc import QCRules

    d = QCRules()
    g = p.add_argument_group("quality control (what is dropped is counted in the report)")
    g.add_argument("--max-check-fail", type=float, default=d.max_check_fail_rate, metavar="RATE",
                   help="drop raters failing more than this share of gold/catch trials "
                   f"(default {d.max_check_fail_rate})")
    g.add_argument("--drop-unscreened", action="store_true",
                   help="also drop raters who answered no scorable gold/catch trial")
    g.add_argument("--allow-unplayed", action="store_true",
                   help="keep answers given before playback reached the end")
    g.add_argument("--min-seconds-per-trial", type=float, default=d.min_seconds_per_trial,
                   metavar="S", help="drop assignments faster than S seconds per trial "
                   f"(default {d.min_seconds_per_trial})")
    g.add_argument("--max-work-time", type=float, default=d.max_work_time_s, metavar="S",
                   help=f"drop assignments longer than S seconds (default {d.max_work_time_s:g}; "
                   "0 = no limit)")
    g.add_argument("--mos-check-tolerance", type=float, default=d.mos_check_tolerance,
                   help="a MOS gold/catch answer passes within this distance of its truth")
    g.add_argument("--min-votes-per-item", type=int, default=d.min_votes_per_item, metavar="N",
                   help="leave items with fewer kept votes out of the item-level analysis")


def _report(args: argparse.Namespace) -> int:
    from regnet.report.build import ReportOptions, build_report, write_report
    from regnet.report.inputs import load_study, load_votes
    from regnet.report.qc import QCRules

    study = load_study(args.study)
    raw, source = load_votes(args.votes, args.db, study)
    rules = QCRules(max_check_fail_rate=args.max_check_fail,
                    drop_unscreened_raters=args.drop_unscreened,
                    require_played_to_end=not args.allow_unplayed,
                    min_seconds_per_trial=args.min_seconds_per_trial,
                    max_work_time_s=args.max_work_time or None,
                    mos_check_tolerance=args.mos_check_tolerance,
                    min_votes_per_item=args.min_votes_per_item)
    command = "regnet-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and sys.argv[0].endswith("regnet-bench") else ""
    real = args.real_system or (study.real_system if study else None) or "real"
    opts = ReportOptions(rules=rules, real_system=real,
                         mixed_max_votes=args.mixed_max_votes, title=args.title, command=command)
    rep = build_report(raw, source, study, opts)
    for path in write_report(rep, args.out, with_plots=not args.no_plots):
        print(path)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from regnet.report.power import PlanOptions, achieved_power, plan

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

    from regnet.report import aggregate
    from regnet.report.inputs import load_study, load_votes
    from regnet.report.qc import QCRules, apply_qc
    from regnet.report.validate import system_order, validate

    study = load_study(args.study)
    if args.votes:
        raw, source = load_votes(args.votes, None, study)
        qc = apply_qc(validate(raw, source, study), QCRules())
        real = (study.real_system if study else None) or "real"
        pv = aggregate.pair_votes(qc.kept, system_order(qc.kept, study, real))
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
    p.add_argument("--mixed-max-votes", type=int, default=2000, metavar="N",
                   help="fit mixed models only up to N votes per model (default 2000; larger "
                   "fits are slow in statsmodels)")
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
