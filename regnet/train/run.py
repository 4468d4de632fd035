"""`regnet-bench train` as a function: pick classes, build datasets, train, one run folder each.

Layout of a run folder: ``config.yaml`` (the full config used), ``last.pt`` (latest checkpoint,
rewritten every ``train.checkpoint_every`` steps and at the end), ``log.csv`` (+ ``tensorboard/``).
With several classes trained one model each, every class gets ``OUT/<class>/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from regnet.config import Config
from regnet.errors import UserError
from regnet.train.dataset import ALL_CLASSES, FeatureDataset, manifest_classes
from regnet.train.distributed import DistInfo, init_from_env, shutdown
from regnet.train.trainer import LAST, Trainer

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    class_name: str
    out_dir: Path
    checkpoint: Path
    step: int
    losses: dict


def plan_classes(manifest: str | Path, class_name: str | None, all_classes: bool, cfg: Config,
                 out: Path) -> list[tuple[str, Path]]:
    """(class, run folder) pairs: one given class, all classes in one model, or one model per class."""
    if class_name and all_classes:
        raise UserError("--class and --all-classes: give one or the other")
    if all_classes or (not cfg.train.per_class and not class_name):
        return [(ALL_CLASSES, out)]
    classes = manifest_classes(manifest, "train")
    if class_name:
        if class_name not in classes:
            raise UserError(f"--class {class_name}: not in the training split of {manifest} "
                            f"(classes: {', '.join(classes) or 'none'})")
        return [(class_name, out)]
    if not classes:
        raise UserError(f"{manifest}: no clips in split 'train'")
    if len(classes) == 1:
        return [(classes[0], out)]
    return [(c, out / c) for c in classes]


def train_runs(cfg: Config, manifest: str | Path, features: str | Path, out: str | Path,
               class_name: str | None = None, all_classes: bool = False, resume: bool = False,
               device: torch.device | str = "cpu") -> list[TrainResult]:
    out = Path(out)
    dist_info, device = init_from_env(torch.device(device))
    try:
        results = []
        for cls, run_dir in plan_classes(manifest, class_name, all_classes, cfg, out):
            results.append(_train_one(cfg, manifest, features, run_dir, cls, resume, device, dist_info))
        return results
    finally:
        shutdown()


def _train_one(cfg: Config, manifest, features, run_dir: Path, cls: str, resume: bool,
               device: torch.device, dist_info: DistInfo) -> TrainResult:
    dataset = FeatureDataset(manifest, features, cfg, split="train", class_name=cls)
    last = run_dir / LAST
    if last.exists() and not resume:
        raise UserError(f"{last}: a run is already there; pass --resume to continue it or choose "
                        "another --out")
    if resume and not last.exists():
        raise UserError(f"{last}: nothing to resume (no checkpoint in {run_dir})")
    trainer = Trainer(cfg, device, class_name=cls, out_dir=run_dir, dist_info=dist_info)
    if resume:
        trainer.load(last)
    if dist_info.is_main:
        from regnet.deviations import announce, paper_deviations

        announce("train", paper_deviations(cfg))
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
    losses = trainer.fit(dataset)
    return TrainResult(cls, run_dir, last, trainer.step, losses)
