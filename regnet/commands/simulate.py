"""Verb `simulate-raters`: bots that take HITs on the local server like people and answer from the
objective metrics with noise (for demonstrations and the end-to-end test; every answer is labelled
simulated)."""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from regnet.commands.common import add_config_args, clip_data_config, config_from_args
from regnet.errors import UserError
from regnet.tables import read_table
from regnet.metrics.evaluate import EvaluateOptions
from regnet.metrics.references import REFERENCES
from mturk.simulate.client import simulate_study
from mturk.simulate.decide import MetricTable, RaterParams
from mturk.simulate.sources import metrics_from_clips, metrics_from_study, metrics_from_table

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate-raters", help="bots that take HITs over HTTP and answer from the metrics (labelled simulated)",
        description="Simulated raters SIM-<seed>-<k> take every available HIT on the local server "
        "through the worker pages (list, accept, HIT page, submit) and answer from the objective "
        "metrics of the clips with logistic noise. Their answers carry simulated=1; collect and "
        "report label them.")
    p.add_argument("--endpoint-url", required=True, help="local server URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--study", required=True, help="study folder (study.json, trials.csv)")
    p.add_argument("--n", type=int, default=3, help="number of simulated raters (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed; rater k is SIM-<seed>-<k>")
    p.add_argument("--noise", type=float, default=0.1,
                   help="logistic temperature in metric-score units (0 = always the metric's answer)")
    p.add_argument("--check-accuracy", type=float, default=0.95,
                   help="probability of answering a gold/catch trial correctly (default 0.95)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--metrics", help="per-clip metrics from evaluate (objective_clips.csv); fastest")
    src.add_argument("--clips", nargs="+", metavar="CLIPS_CSV",
                     help="clips.csv of the study's systems (with the real one): metrics are measured now. "
                     "Without --metrics or --clips the clips the study shows are measured")
    p.add_argument("--manifest", help="dataset manifest: real audio / clean track / event times")
    p.add_argument("--reference", choices=REFERENCES, default="real",
                   help="when measuring now: compare to the real sound (default) or the clean track")
    p.add_argument("--max-hits", type=int, help="at most this many HITs per rater")
    p.add_argument("--links", metavar="CSV",
                   help="the raters' personal sign-in links (export-links output, worker_id,link) for a server "
                   "run with --require-signed-links; make them for SIM-<seed>-<k>")
    p.add_argument("--loudspeaker-raters", type=int, default=0, metavar="K",
                   help="K more bots SIM-<seed>-L<k> that take the screening test over loudspeakers "
                   "(and so fail the headphone check; a demonstration of screening)")
    add_config_args(p)
    p.set_defaults(func=run)


def _metrics(args: argparse.Namespace, study) -> tuple[pd.DataFrame, float]:
    opts = EvaluateOptions(reference=args.reference, real_system=study.real_system)
    if args.metrics:
        df, seconds = metrics_from_table(args.metrics, study.clip_seconds)
        return df, seconds or config_from_args(args).data.clip_seconds
    if args.clips:
        cfg = clip_data_config(args, args.clips)
        return metrics_from_clips(args.clips, cfg, opts, args.manifest), cfg.clip_seconds
    explicit = bool(args.config or args.preset or args.overrides)
    return metrics_from_study(study, config_from_args(args).data, opts, args.manifest, not explicit)


def _read_links(path: str) -> dict[str, str]:
    df = read_table(path, "export-links writes it", required=("worker_id", "link"), dtype=str,
                    keep_default_na=False, flag="--links")
    return dict(zip(df["worker_id"], df["link"]))


def run(args: argparse.Namespace) -> int:
    from mturk.study import load_study

    study = load_study(args.study)
    try:
        params = RaterParams(noise=args.noise, check_accuracy=args.check_accuracy)
    except ValueError as e:
        raise UserError(f"--noise/--check-accuracy: {e}") from None
    per_clip, clip_seconds = _metrics(args, study)
    links = _read_links(args.links) if args.links else None
    rep = simulate_study(args.endpoint_url, study, MetricTable(per_clip), args.n, args.seed, params,
                         clip_seconds=clip_seconds, loudspeaker_raters=args.loudspeaker_raters,
                         max_hits=args.max_hits, links=links)
    if rep.loudspeakers:
        print(f"{len(rep.loudspeakers)} loudspeaker bot(s) took the screening test: {', '.join(rep.loudspeakers)}")
    for r in rep.results:
        print(f"{r.worker_id}\t{len(r.submitted)} HITs\t{r.answers} answers\t{len(r.skipped)} skipped")
    return 0
