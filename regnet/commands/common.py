"""Arguments shared by several verbs."""

from __future__ import annotations

import argparse

from regnet.config import Config, load_config


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
    return torch.device(name)
