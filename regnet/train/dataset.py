"""Training clips: manifest rows of one split (and class) joined with their feature-cache files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from regnet.config import Config
from regnet.data.features import VideoFeatures, feature_path, load_features
from regnet.data.manifest import ManifestRow, read_manifest
from regnet.errors import UserError

log = logging.getLogger(__name__)

ALL_CLASSES = "all"
# Below this many clips the whole split is held in memory (a few MB at the small preset).
PRELOAD_MAX_CLIPS = 4096


def select_rows(manifest: str | Path, split: str, class_name: str | None) -> list[ManifestRow]:
    """Rows of ``split`` and (unless None/'all') of ``class_name``; an empty result is a UserError."""
    rows = [r for r in read_manifest(manifest) if r.split == split]
    if class_name not in (None, ALL_CLASSES):
        rows = [r for r in rows if r.class_name == class_name]
    if not rows:
        which = f" and class '{class_name}'" if class_name not in (None, ALL_CLASSES) else ""
        raise UserError(f"{manifest}: no clips in split '{split}'{which}")
    return rows


def manifest_classes(manifest: str | Path, split: str = "train") -> list[str]:
    return sorted({r.class_name for r in read_manifest(manifest) if r.split == split})


def check_features(f: VideoFeatures, path: Path, cfg: Config, need_audio: bool = True) -> None:
    """Features must fit the model: visual dim, clip length in steps and mel frames, audio present."""
    d, m = cfg.data, cfg.model
    dv = f.rgb.shape[1] + f.flow.shape[1]
    if dv != m.visual_dim:
        raise UserError(f"{path}: visual features have {f.rgb.shape[1]}+{f.flow.shape[1]}={dv} dims "
                        f"but model.visual_dim is {m.visual_dim} (use --set model.visual_dim={dv} "
                        "when training a new model)")
    if f.rgb.shape[0] != d.n_steps or f.flow.shape[0] != d.n_steps:
        raise UserError(f"{path}: {f.rgb.shape[0]} visual steps, the config expects {d.n_steps} "
                        f"({d.clip_seconds} s at {d.fps} fps)")
    if need_audio:
        if not f.has_audio:
            raise UserError(f"{path}: video '{f.video_id}' has no audio track; training needs its sound")
        if f.mel.shape != (d.n_mels, d.mel_frames):
            raise UserError(f"{path}: mel is {list(f.mel.shape)}, the config expects "
                            f"[{d.n_mels}, {d.mel_frames}]")


class FeatureDataset(Dataset):
    """Items ``(visual [T, Dv], mel [n_mels, M], video_id)`` as float32 tensors."""

    def __init__(self, manifest: str | Path, features_dir: str | Path, cfg: Config, split: str = "train",
                 class_name: str | None = None, need_audio: bool = True):
        self.cfg = cfg
        self.rows = select_rows(manifest, split, class_name)
        self.features_dir = Path(features_dir)
        self.expected_hash = cfg.data.cache_hash()
        self.need_audio = need_audio
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, str]] = {}
        self.preload = len(self.rows) <= PRELOAD_MAX_CLIPS
        # Read the first file now so a wrong cache fails before any model is built.
        self[0]
        if self.preload:
            for i in range(1, len(self.rows)):
                self[i]
        log.info("%d %s clips from %s", len(self.rows), split, manifest)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if i in self._cache:
            return self._cache[i]
        row = self.rows[i]
        path = feature_path(self.features_dir, row.video_id)
        f = load_features(path, self.expected_hash)
        check_features(f, path, self.cfg, self.need_audio)
        item = (torch.from_numpy(np.ascontiguousarray(f.visual, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(f.mel, dtype=np.float32)), row.video_id)
        if self.preload:
            self._cache[i] = item
        return item
