"""Verb `train-vocoder`: a WaveNet vocoder per sound class on a manifest's real audio."""

from __future__ import annotations

import argparse
import logging

from regnet.commands.common import add_config_args, config_from_args
from regnet.device import resolve_device
from regnet.data.manifest import read_manifest
from regnet.errors import UserError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-vocoder", help="train a WaveNet vocoder (mixture of logistics) per sound class",
        description="Train a mel-conditioned WaveNet on the real audio of one class (or every class) "
        "of a manifest. Writes OUT/wavenet_<class>.pt (latest state, every vocoder.checkpoint_every "
        "steps); --resume continues it. Pass the file to `generate --vocoder`. Paper size "
        "(24 layers, 512 channels) is GPU work; --preset small/tiny are CPU-sized.")
    p.add_argument("--manifest", required=True, help="dataset manifest.csv (audio_path, else the video's sound)")
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS",
                   help="sound class to train (repeatable; default: every class in the manifest)")
    p.add_argument("--out", required=True, help="output folder for wavenet_<class>.pt")
    p.add_argument("--resume", action="store_true", help="continue OUT/wavenet_<class>.pt where it stopped")
    p.add_argument("--steps", type=int, help="total training steps (default vocoder.steps)")
    p.add_argument("--split", default="train", help="manifest split to train on (default train; 'all' = every split)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from regnet.vocoder.train import train_vocoder

    cfg = config_from_args(args)
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps: must be at least 1, got {args.steps}")
    split = None if args.split == "all" else args.split
    classes = args.classes or sorted({r.class_name for r in read_manifest(args.manifest)
                                      if split is None or r.split == split})
    if not classes:
        raise UserError(f"{args.manifest}: no clips in split '{args.split}'")
    device = resolve_device(args.device)
    failed: list[tuple[str, str]] = []
    for c in classes:
        try:
            path, loss, clips = train_vocoder(cfg, args.manifest, c, args.out, device, resume=args.resume,
                                              steps=args.steps, split=split)
        except UserError as e:
            if len(classes) == 1:
                raise
            failed.append((c, str(e)))
            continue
        log.info("class %s: %d clips, last NLL %.4f", c, len(clips.video_ids), loss)
        for vid, why in clips.skipped:
            log.warning("class %s: skipped %s (%s)", c, vid, why)
        print(path)
    for c, why in failed:
        log.error("class %s not trained: %s", c, why)
    return 1 if failed else 0
