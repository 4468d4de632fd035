"""Tiny training inputs: the `tiny` preset with a 16-wide visual feature, and a manifest plus feature
cache whose mel is a fixed function of the visual features (so a few steps can learn it). Shared by
the train command's tests and the DDP test (which imports it under torchrun too); holds no tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regnet.config import Config, preset
from regnet.data.features import VideoFeatures, feature_path, save_features
from regnet.data.manifest import ManifestRow, write_manifest

VISUAL_DIM = 16


def tiny_cfg() -> Config:
    cfg = preset("tiny")
    cfg.model.visual_dim = VISUAL_DIM
    cfg.train.log_every = 2
    cfg.train.checkpoint_every = 4
    return cfg


def make_dataset(root: Path, cfg: Config, n: int = 6, classes=("dog",), visual_dim: int = VISUAL_DIM,
                 has_audio: bool = True, seed: int = 0) -> tuple[Path, Path]:
    """manifest.csv + feature cache whose mel is a fixed function of the visual features."""
    rng = np.random.default_rng(seed)
    feats = root / "features"
    rows = []
    proj = rng.standard_normal((visual_dim, cfg.data.n_mels)).astype(np.float32) / np.sqrt(visual_dim)
    for i in range(n):
        cls = classes[i % len(classes)]
        vid = f"{cls}_{i:03d}"
        vis = rng.standard_normal((cfg.data.n_steps, visual_dim)).astype(np.float32)
        mel = 1 / (1 + np.exp(-np.repeat(vis @ proj, 4, axis=0).T))
        half = visual_dim // 2
        save_features(feature_path(feats, vid), VideoFeatures(
            vid, cls, vis[:, :half], vis[:, half:], mel.astype(np.float32), cfg.data.cache_hash(),
            has_audio=has_audio, duration_s=cfg.data.clip_seconds))
        rows.append(ManifestRow(vid, cls, "train" if (i // len(classes)) % 3 else "test", root / f"{vid}.mp4", None,
                                cfg.data.clip_seconds))
    write_manifest(root / "manifest.csv", rows)
    return root / "manifest.csv", feats

