"""Arguments shared by several verbs."""

from __future__ import annotations

import argparse
from pathlib import Path

from regnet.config import Config, load_config
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


def resolve_device(name: str | None = None) -> "torch.device":  # noqa: F821
    """'auto' (default) picks CUDA when present, else CPU."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device: '{name}' is not a device (auto, cpu, cuda, cuda:1 ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


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
