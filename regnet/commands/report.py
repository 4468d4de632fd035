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


def load_server_votes(db_url: str, study=None):
    """(votes frame, source) straight from a local server's database: the server's batch-result
    table (`eval_server.export`) read by the study side's batch converter (`mturk.report.inputs`).
    Here, at the top, because neither of those two packages imports the other."""
    from sqlalchemy.exc import SQLAlchemyError

    from eval_server.export import batch_results_frame
    from mturk.report.inputs import load_votes

    try:
        frame = batch_results_frame(db_url)
    except SQLAlchemyError as e:
        first = str(e.orig if getattr(e, "orig", None) else e).splitlines()[0]
        raise UserError(f"{db_url}: not a readable regnet-bench server database ({first})") from None
    return load_votes(study=study, batch=frame, source=f"local server database {db_url}")


def _report(args: argparse.Namespace) -> int:
    from mturk.qc import config_from_flags, rules_in_force
    from mturk.report.build import ReportOptions, build_report, write_report
    from mturk.report.inputs import load_study, load_votes

    study = load_study(args.study)
    if args.votes and args.db:
        raise UserError("give exactly one of --votes FILE or --db URL")
    raw, source = load_server_votes(args.db, study) if args.db else load_votes(args.votes, study)
    base, decisions = rules_in_force(args.votes, args.study)
    rules = config_from_flags(args, base)  # a flag given here overrides one field
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
    from mturk.report.inputs import load_study, load_votes
    from mturk.report.power import existing_cells

    study = load_study(args.study)
    raw, source = load_votes(args.votes, study) if args.votes else (None, "")
    return existing_cells(study, raw, source, args.votes_per_item)


def register(subparsers) -> None:
    from mturk.study import DEFAULT_REWARD

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
    q.add_argument("--reward", default=DEFAULT_REWARD,
                   help=f"US dollars per assignment, as build-study takes it (default {DEFAULT_REWARD})")
    q.add_argument("--items-per-hit", type=int, default=1, help="main trials per assignment")
    q.add_argument("--cells", type=int, default=1,
                   help="comparison x criterion cells tested (alpha is split for Holm)")
    q.add_argument("--icc", type=float, default=0.0,
                   help="correlation of votes on one item (inflates the vote-level sample)")
    q.add_argument("--study", metavar="DIR", help="existing study: power it had")
    q.add_argument("--votes", metavar="FILE", help="existing votes: power the kept votes had")
    q.set_defaults(func=_plan)
