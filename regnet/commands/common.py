"""Arguments shared by several verbs."""

from __future__ import annotations

import argparse
from pathlib import Path

from regnet.config import Config, DataConfig, load_config
from regnet.errors import UserError


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (sections data/model/train/vocoder)")
    p.add_argument("--preset", choices=["paper", "small", "tiny"],
                   help="starting point: paper size (default), 'small' (2 s clips, CPU-sized) or 'tiny'")
    p.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE", default=[],
                   help="override one config field, e.g. --set model.aux_dim=8 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None), getattr(args, "preset", None),
                       getattr(args, "overrides", None))


def clip_data_config(args: argparse.Namespace, clips: list[str]) -> DataConfig:
    """The data config from --config/--preset/--set, at the clips' own length unless one gave it."""
    from regnet.metrics.evaluate import data_config_for_clips

    explicit = bool(args.config or args.preset or any(o.startswith("data.clip_seconds") for o in args.overrides))
    return data_config_for_clips(config_from_args(args).data, clips, explicit)


def check_output_file(out: str | Path, inputs: tuple[str | Path | None, ...] = (), flag: str = "--out") -> Path:
    """Refuse an output file that would clobber an input or cannot be a file; make its folder.

    ``inputs`` are the files the verb reads: writing over one of them would lose it.
    """
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{flag} {out}: is a folder; give a file name")
    for src in inputs:
        if src is not None and Path(src).exists() and out.exists() and out.resolve() == Path(src).resolve():
            raise UserError(f"{flag} {out}: is the input file {src}; choose another output")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{flag} {out}: {parent} is a file, not a folder")
    parent.mkdir(parents=True, exist_ok=True)
    return out
