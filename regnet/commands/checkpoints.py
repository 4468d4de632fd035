"""Verbs for the authors' released artefacts: import-checkpoint, export-checkpoint, import-features."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from regnet.commands.common import add_config_args, check_output_file, config_from_args
from regnet.errors import UserError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-checkpoint", help="convert the authors' RegNet (netG/netD) or WaveNet (*_ema.pth) checkpoint",
        description="Convert a checkpoint released by the RegNet authors into a regnet-bench checkpoint. "
        "The kind is detected: a RegNet pair (give the prefix checkpoint_041000 or either _netG/_netD file) "
        "or an r9y9 WaveNet vocoder (*_ema.pth). Sizes are read from the tensors; the config fills in what "
        "a state dict does not record (vocoder.stacks, model.aux_sample for lstm_sample, and the test-time "
        "switches model.test_z / model.test_regularizer).")
    p.add_argument("path", help="authors' file (or the netG/netD prefix)")
    p.add_argument("--out", required=True, help="regnet-bench checkpoint to write (.pt)")
    p.add_argument("--class", dest="class_name", help="sound class the model is for (default: from the "
                   "vocoder file name, else 'all')")
    p.add_argument("--z", choices=["random", "zero"],
                   help="test-time z stored with the model (model.test_z; random = their code, seeded by generate --seed)")
    p.add_argument("--test-regularizer", choices=["zero_output", "zero_input"],
                   help="zero_output = the regularizer's output zeroed: the paper and their documented test "
                   "command, aux_zero True (default); zero_input = the regularizer run on a zeroed "
                   "spectrogram, as their code does only with an explicit mode_input vis")
    add_config_args(p)
    p.set_defaults(func=run_import_checkpoint)

    p = sub.add_parser(
        "export-checkpoint", help="write a regnet-bench checkpoint in the authors' layout",
        description="Write a regnet-bench RegNet checkpoint as the authors' pair OUT_netG / OUT_netD (plus "
        "OUT_opts.yml with their config keys; their test.py loads it with checkpoint_path OUT), or a "
        "WaveNet checkpoint as an r9y9 file with 'state_dict'.")
    p.add_argument("checkpoint", help="regnet-bench checkpoint (.pt)")
    p.add_argument("--format", choices=["authors"], default="authors", help="target layout")
    p.add_argument("--out", required=True, help="output prefix (RegNet) or file (WaveNet)")
    p.set_defaults(func=run_export_checkpoint)

    p = sub.add_parser(
        "import-features", help="turn the authors' pre-computed features into a feature cache",
        description="Read the authors' per-video pickles (RGB and flow [T, 1024]) and mels (ID_mel.npy, "
        "[80, T]) for the ids listed in --ids, fit them to the clip length (data.pad_mode: 'zero' as their "
        "loader, 'repeat' as the paper), and write one .npz per video plus OUT/config.yaml. The cache is "
        "marked external (data.feature_source=authors): pass --config OUT/config.yaml to the verbs that read it.")
    p.add_argument("--rgb-dir", required=True, help="feature_rgb_bninception_dim1024_21.5fps folder")
    p.add_argument("--flow-dir", required=True, help="feature_flow_bninception_dim1024_21.5fps folder")
    p.add_argument("--mel-dir", help="melspec_10s_22050hz folder (without it the cache has no audio)")
    p.add_argument("--ids", required=True, help="filelist with one video id per line (e.g. dog_test.txt)")
    p.add_argument("--out", required=True, help="feature cache folder to write")
    p.add_argument("--class", dest="class_name",
                   help="sound class of these videos (default: the ids file name up to '_', e.g. dog)")
    add_config_args(p)
    p.set_defaults(func=run_import_features)


def run_import_checkpoint(args: argparse.Namespace) -> int:
    from regnet.authors.checkpoints import import_checkpoint, kind_of, regnet_pair

    source = Path(args.path)
    if not source.exists() and not regnet_pair(source)[0].is_file():
        raise UserError(f"{source}: file not found (nor {regnet_pair(source)[0].name})")
    check_output_file(args.out, (source, *regnet_pair(source)))
    if Path(args.out).is_file() and kind_of(args.out) != "ours":
        # Re-running an import replaces its own output; any other file is left alone.
        raise UserError(f"--out {args.out}: exists and is not a regnet-bench checkpoint; choose another path")
    cfg = config_from_args(args)
    if args.z:
        cfg.model.test_z = args.z
    if args.test_regularizer:
        cfg.model.test_regularizer = args.test_regularizer
    done = import_checkpoint(args.path, args.out, cfg, args.class_name)
    print(done.out)
    return 0


def run_export_checkpoint(args: argparse.Namespace) -> int:
    from regnet.authors.checkpoints import export_checkpoint

    src = Path(args.checkpoint)
    for suffix in ("", "_netG", "_netD", "_opts.yml"):
        check_output_file(f"{args.out}{suffix}", (src,))
    for p in export_checkpoint(args.checkpoint, args.out):
        print(p)
    return 0


def run_import_features(args: argparse.Namespace) -> int:
    from regnet.authors.features import CONFIG_NAME, import_features

    class_name = args.class_name or Path(args.ids).stem.split("_")[0] or "all"
    cfg = config_from_args(args)
    res = import_features(args.rgb_dir, args.flow_dir, args.mel_dir, args.ids, args.out, cfg.data, class_name)
    for vid, why in res.skipped:
        log.warning("skipped %s: %s", vid, why)
    log.info("imported %d videos of class %s (%d skipped), hash %s, pad %s", len(res.written), class_name,
             len(res.skipped), res.config_hash, cfg.data.pad_mode)
    if not res.written:
        raise UserError(f"--ids {args.ids}: none of the {len(res.skipped)} videos could be imported "
                        f"(first: {res.skipped[0][1]})")
    print(res.out_dir / CONFIG_NAME)
    return 0
