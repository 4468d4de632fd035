"""Verbs `generate` (RegNet sound for silent videos) and `import-clips` (other systems' clips)."""

from __future__ import annotations

import argparse
import logging

from regnet.commands.common import add_config_args, config_from_args
from regnet.device import resolve_device
from regnet.errors import UserError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="RegNet sound for silent videos: mp4 + wav per video and clips.csv",
        description="Features -> RegNet spectrogram (regularizer zeroed) -> vocoder -> OUT/clips/<id>.mp4 "
        "(the source picture with the new sound, as long as the source), OUT/wav/<id>.wav and "
        "OUT/clips.csv. A video longer than the model's clip length is generated whole, in windows of "
        "that length that overlap by --overlap, crossfaded in the mel domain before the vocoder; a "
        "shorter one is padded as the training data was (data.pad_mode) and cut back. Videos whose "
        "mp4 and wav exist are kept unless --overwrite. A per-class checkpoint takes its own class "
        "from a manifest.")
    p.add_argument("--checkpoint", required=True, help="RegNet checkpoint (regnet-bench train)")
    p.add_argument("--videos", required=True, help="folder of videos, or a dataset manifest.csv")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--vocoder", default="griffin-lim",
                   help="'griffin-lim' (default, no weights) or a WaveNet checkpoint from train-vocoder")
    p.add_argument("--system", default="regnet", help="system name written to clips.csv (default regnet)")
    p.add_argument("--split", help="with a manifest: only this split (e.g. test)")
    p.add_argument("--overwrite", action="store_true", help="regenerate clips that already exist")
    p.add_argument("--features", metavar="DIR", help="feature cache: use fresh files from it, store new ones in it")
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help="generate at most the first S seconds of each video (default: the whole video; "
                   "the model's clip length gives the first window only)")
    p.add_argument("--overlap", type=float, metavar="S",
                   help="seconds by which consecutive windows overlap (default: a quarter of the model's "
                   "clip length, 2.5 s for the paper's 10 s clips, 0.5 s for 2 s clips)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="videos per batch, and windows per RegNet forward (default 8)")
    p.add_argument("--vocoder-batch", type=int, help="clips sampled together by WaveNet (default vocoder.sample_batch)")
    p.add_argument("--vocoder-dtype", choices=["float32", "bfloat16", "float16"],
                   help="WaveNet sampling weights (reduced precision on CUDA only; default float32)")
    p.add_argument("--griffin-lim-iters", type=int, help="Griffin-Lim iterations (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for z and vocoder sampling (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    p.set_defaults(func=run_generate)

    q = sub.add_parser(
        "import-clips", help="wrap another system's wavs/mp4s (or the real sound) into clips.csv",
        description="Package a folder of wavs or videos (file stem = video id) as OUT/clips.csv of "
        "system NAME; with --manifest each clip gets its class and source video (wavs are muxed with "
        "the source picture). --system real packages each manifest video's own sound instead (no DIR).")
    q.add_argument("dir", nargs="?", help="folder of <video_id>.wav/.flac/.mp4 files (not for --system real)")
    q.add_argument("--system", required=True, help="system name ('real' = the manifest's own sound)")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--manifest", help="dataset manifest.csv: class and source video per id (required for real)")
    q.add_argument("--split", help="with --system real: only this split")
    q.add_argument("--resample", action="store_true",
                   help="convert wavs at another sample rate instead of refusing them")
    add_config_args(q)
    q.set_defaults(func=run_import)


def _finish(report, what: str) -> int:
    for vid, why in report.failed:
        log.error("skipped %s: %s", vid, why)
    log.info("%s: %s", what, report.summary())
    if report.clips_csv is None:
        raise UserError(f"{what}: no clip written ({len(report.failed)} skipped, reasons above)")
    print(report.clips_csv)
    return 1 if report.failed else 0


def run_generate(args: argparse.Namespace) -> int:
    from regnet.config import VocoderConfig
    from regnet.generation import generate_clips

    for name in ("batch_size", "vocoder_batch", "griffin_lim_iters"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UserError(f"--{name.replace('_', '-')}: must be at least 1, got {v}")
    run_cfg = VocoderConfig()
    if args.vocoder_batch:
        run_cfg.sample_batch = args.vocoder_batch
    if args.vocoder_dtype:
        run_cfg.sample_dtype = args.vocoder_dtype
    if args.griffin_lim_iters:
        run_cfg.griffin_lim_iters = args.griffin_lim_iters
    report = generate_clips(args.checkpoint, args.videos, args.out, args.vocoder, system=args.system,
                            overwrite=args.overwrite, split=args.split, device=resolve_device(args.device),
                            batch_size=args.batch_size, seed=args.seed, features_dir=args.features,
                            vocoder_cfg=run_cfg, max_seconds=args.max_seconds, overlap_s=args.overlap)
    log.info("seconds per stage: %s", ", ".join(f"{k} {v:.2f}" for k, v in report.stage_seconds.items()))
    return _finish(report, "generate")


def run_import(args: argparse.Namespace) -> int:
    from regnet.generation import import_clips, import_real

    cfg = config_from_args(args)
    if args.system == "real":
        if not args.manifest:
            raise UserError("--system real: needs --manifest (the videos whose own sound to package)")
        if args.dir:
            raise UserError(f"{args.dir}: --system real takes its sound from the manifest, not a folder")
        report = import_real(args.manifest, args.out, cfg.data, split=args.split)
    else:
        if not args.dir:
            raise UserError("import-clips: give the folder of clips (DIR)")
        report = import_clips(args.dir, args.out, args.system, cfg.data, manifest=args.manifest,
                              resample=args.resample)
    return _finish(report, "import-clips")
