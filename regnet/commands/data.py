"""Verbs ``synth`` (make the synthetic benchmark) and ``extract`` (manifest -> feature cache)."""

from __future__ import annotations

import argparse
import logging

from regnet.commands.common import add_config_args, config_from_args
from regnet.device import resolve_device
from regnet.errors import UserError

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT, e.g. 112x112") from None
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    from regnet.data.synth import IRRELEVANT_KINDS, SYNTH_CLASSES, SynthConfig

    d = SynthConfig()
    p = sub.add_parser(
        "synth", help="write the synthetic benchmark (mp4 + clean wav + event times + manifest)",
        description="Videos with visible events at known times, each with its class sound, plus "
        "sound the picture cannot explain. Deterministic from --seed.")
    p.add_argument("--out", required=True, help="output folder (manifest.csv, videos/, clean/, events/)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--classes", nargs="+", default=list(d.classes), metavar="CLASS",
                   help=f"event classes, from {', '.join(SYNTH_CLASSES)} (default: all)")
    p.add_argument("--n-per-class", type=int, default=d.n_per_class,
                   help=f"videos per class (default {d.n_per_class}; a quarter go to the test split)")
    p.add_argument("--seconds", type=float, default=d.seconds,
                   help=f"video length (default {d.seconds}; every {d.short_every}th video is shorter)")
    p.add_argument("--irrelevant", choices=IRRELEVANT_KINDS, default=d.irrelevant,
                   help="sound the picture cannot explain: gauss (σ=0.1, Dog-gauss), other-class, "
                   f"speech (off-screen babble), none (default {d.irrelevant})")
    p.add_argument("--size", type=_size, default=d.size, metavar="WxH",
                   help=f"frame size (default {d.size[0]}x{d.size[1]})")
    p.add_argument("--fps", type=float, default=d.fps, help=f"frame rate of the videos (default {d.fps})")
    p.set_defaults(func=run_synth)

    p = sub.add_parser(
        "extract", help="manifest -> feature cache (one .npz per video: rgb, flow, mel, config hash)",
        description="Resumable: files made with the same config are kept, files made with another "
        "config are recomputed. Bad videos are skipped and listed at the end (exit 1).")
    p.add_argument("--manifest", required=True, help="dataset manifest.csv")
    p.add_argument("--out", required=True, help="feature cache folder")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--device", default="cpu",
                   help="torch device for CNN backbones: cpu (default), cuda, auto")
    p.add_argument("--force", action="store_true", help="recompute even fresh files")
    add_config_args(p)
    p.set_defaults(func=run_extract)


def run_synth(args: argparse.Namespace) -> int:
    from regnet.data.synth import SynthConfig, make_synth

    scfg = SynthConfig(seed=args.seed, classes=tuple(args.classes), n_per_class=args.n_per_class,
                       seconds=args.seconds, irrelevant=args.irrelevant, size=tuple(args.size),
                       fps=args.fps)
    rows = make_synth(args.out, scfg)
    n_test = sum(r.split == "test" for r in rows)
    print(f"{args.out}/manifest.csv  ({len(rows)} videos: {len(rows) - n_test} train, {n_test} test)")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from regnet.data.extract import extract_manifest

    if args.workers < 1:
        raise UserError("--workers: must be at least 1")
    cfg = config_from_args(args)
    device = str(resolve_device(args.device))
    report = extract_manifest(args.manifest, args.out, cfg.data, workers=args.workers,
                              device=device, force=args.force)
    print(f"{report.cache_dir}  ({report.summary()}; config hash {report.config_hash})")
    return 1 if report.failed else 0
