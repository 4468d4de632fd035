"""Verb `evaluate`: objective metrics of generated clips against the real or clean sound."""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from regnet.commands.common import add_config_args, check_output_file, clip_data_config, config_from_args
from regnet.errors import UserError
from regnet.metrics.evaluate import EvaluateOptions, evaluate, write_results
from regnet.metrics.onsets import DEFAULT_TOLERANCE_S
from regnet.metrics.references import ONSET_REFERENCES, REFERENCES

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="objective metrics: mel L2, onset P/R/F1/Acc/AP, envelope r, [FD, KL, IS, DeSync, IB-score]",
        description="Measure generated clips against the real sound (or the synthetic benchmark's "
        "clean relevant track and exact event times) and write objective.md / objective.csv with "
        "mean ± 95% CI per system and class.")
    p.add_argument("--clips", nargs="+", required=True, metavar="CLIPS_CSV",
                   help="clips.csv of one or more systems (a system named 'real' is the real sound)")
    p.add_argument("--reference", choices=REFERENCES, default="real",
                   help="measure against the real sound (default) or the clean relevant track (synthetic benchmark)")
    p.add_argument("--manifest", help="dataset manifest.csv (real audio, clean_path, events_path)")
    p.add_argument("--onset-reference", choices=ONSET_REFERENCES, default="auto",
                   help="reference onsets: exact event times, onsets detected in the reference, "
                   "or auto (events where the manifest has them)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_S, metavar="SECONDS",
                   help="onset matching tolerance (default 0.05; CondFoleyGen's AP used 0.1)")
    p.add_argument("--embedding", action="append", default=[], metavar="[NAME=]PATH",
                   help="repeatable. NAME=PATH: a released embedder's weight file, NAME one of "
                   "panns-cnn14 (Cnn14_mAP=0.431.pth or Cnn14_16k_mAP=0.438.pth: FD, KL, IS) or "
                   "vggish (vggish-10086976.pth: FD) or passt (passt-s-f128-p16-s10-ap.476-swa.pt: "
                   "FD, KL, IS) or synchformer (synchformer_state_dict.pth: per-clip audio-visual "
                   "offset and DeSync against each clip's video) or imagebind (imagebind_huge.pth: per-clip "
                   "IB-score, audio against the clip's video) or clap (630k-audioset-best.pt or 630k-best.pt: "
                   "FD; with --clap-tokenizer also the CLAP score); a plain PATH: a fit-embedder file (FD, KL). "
                   "Nothing is downloaded; skipped without it")
    p.add_argument("--vggish-pca", metavar="PATH",
                   help="VGGish PCA parameters (vggish_pca_params-970ea276.pth) to apply torchvggish's "
                   "postprocessing; av-benchmark's FD-VGG uses the raw embeddings (the default)")
    p.add_argument("--clap-tokenizer", metavar="DIR",
                   help="folder with roberta-base's vocab.json and merges.txt (downloaded once), for the "
                   "CLAP score of --embedding clap=PATH; needs transformers (pip install 'regnet-bench[clap]')")
    p.add_argument("--clap-prompt", default="the sound of {class}", metavar="TEMPLATE",
                   help="the CLAP score's text per class, {class} = the class name, underscores as "
                   "spaces (default 'the sound of {class}')")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help="bootstrap replicates for the released embedders' intervals (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--real-system", default="real", metavar="NAME",
                   help="system name of the real sound in the clips.csv files (default real)")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    add_config_args(p)
    p.set_defaults(func=run)

    f = sub.add_parser(
        "fit-embedder", help="train the small audio classifier that evaluate --embedding uses (FD, KL)",
        description="Train a small audio classifier/embedder on the real sound of a dataset's "
        "classes and save it in the regnet-bench/audio-embedder format, for evaluate --embedding. "
        "No weights are downloaded.")
    f.add_argument("--manifest", required=True, help="dataset manifest.csv (class column = labels)")
    f.add_argument("--out", required=True, help="weights file to write, e.g. embedder.pt")
    f.add_argument("--split", default="train", help="manifest split to train on (default train; 'all' for every row)")
    f.add_argument("--epochs", type=int, default=40)
    f.add_argument("--seed", type=int, default=0)
    add_config_args(f)
    f.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from regnet.metrics.fit_embedder import FitOptions, fit_embedder

    if args.epochs < 1:
        raise UserError(f"--epochs: must be at least 1, got {args.epochs}")
    check_output_file(args.out, (args.manifest,))
    cfg = config_from_args(args).data
    report = fit_embedder(args.manifest, cfg, args.out,
                          FitOptions(epochs=args.epochs, seed=args.seed,
                                     split=None if args.split == "all" else args.split))
    for vid, why in report.skipped:
        log.warning("skipped %s: %s", vid, why)
    log.info("training accuracy %.3f over %d clips of %d classes", report.train_accuracy,
             report.n_clips, len(report.classes))
    print(report.path)
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command as the user could re-run it, rebuilt from the parsed options (so it is right
    whether the verb came from a shell or from `regnet.cli.main([...])`)."""
    parts = ["regnet-bench", "evaluate", "--clips", *args.clips, "--reference", args.reference]
    for e in args.embedding:
        parts += ["--embedding", str(e)]
    if args.clap_prompt != "the sound of {class}":
        parts += ["--clap-prompt", args.clap_prompt]
    for flag, value in (("--manifest", args.manifest), ("--vggish-pca", args.vggish_pca),
                        ("--clap-tokenizer", args.clap_tokenizer),
                        ("--config", args.config), ("--preset", args.preset)):
        if value:
            parts += [flag, str(value)]
    if args.bootstrap != 200:
        parts += ["--bootstrap", str(args.bootstrap)]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    if args.real_system != "real":
        parts += ["--real-system", args.real_system]
    if args.onset_reference != "auto":
        parts += ["--onset-reference", args.onset_reference]
    if args.tolerance != DEFAULT_TOLERANCE_S:
        parts += ["--tolerance", f"{args.tolerance:g}"]
    for o in args.overrides:
        parts += ["--set", o]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(str(p)) for p in parts)


def run(args: argparse.Namespace) -> int:
    from regnet.metrics.embedders import parse_spec

    cfg = clip_data_config(args, args.clips)
    released, own = [], []
    for text in args.embedding:
        spec = parse_spec(text)
        (own if spec is None else released).append(spec or Path(text))
    if len(own) > 1:
        raise UserError(f"--embedding: one fit-embedder file at most (got {', '.join(map(str, own))})")
    opts = EvaluateOptions(reference=args.reference, onset_reference=args.onset_reference,
                           tolerance_s=args.tolerance, real_system=args.real_system,
                           embedding=own[0] if own else None, released=released,
                           vggish_pca=Path(args.vggish_pca) if args.vggish_pca else None,
                           clap_tokenizer=Path(args.clap_tokenizer) if args.clap_tokenizer else None,
                           clap_prompt=args.clap_prompt,
                           bootstrap=args.bootstrap, seed=args.seed)
    result = evaluate(args.clips, cfg, opts, manifest=args.manifest)
    paths = write_results(result, args.out, _command_line(args))
    for key in ("md", "csv", "clips", "embedder_clips"):
        if key in paths:
            print(paths[key])
    if result.skipped:
        log.warning("%d clip(s) skipped; listed in %s", len(result.skipped), paths["md"])
    return 0
