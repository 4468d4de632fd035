"""The feature cache: one ``.npz`` per video (docs/architecture.md).

Keys: ``rgb [T, Dr]``, ``flow [T, Df]``, ``mel [n_mels, M]`` (float32), ``config_hash`` (str),
``video_id``, ``class_name``, ``has_audio`` (bool), ``duration_s`` (source length before padding).
A file whose ``config_hash`` differs from the expected one is stale and never silently reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.atomic import atomic_path
from regnet.errors import UserError


@dataclass
class VideoFeatures:
    video_id: str
    class_name: str
    rgb: np.ndarray  # [T, Dr] float32
    flow: np.ndarray  # [T, Df] float32
    mel: np.ndarray  # [n_mels, M] float32 (zeros when has_audio is False)
    config_hash: str
    has_audio: bool = True
    duration_s: float = 0.0

    @property
    def visual(self) -> np.ndarray:
        """RGB and flow concatenated per step: the model's input [T, Dr + Df]."""
        return np.concatenate([self.rgb, self.flow], axis=1)


def feature_path(cache_dir: str | Path, video_id: str) -> Path:
    return Path(cache_dir) / f"{video_id}.npz"


def save_features(path: str | Path, f: VideoFeatures) -> None:
    """Write atomically (temp file + rename) so an interrupted extract never leaves half a file."""
    with atomic_path(path, ".npz.tmp") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, rgb=f.rgb.astype(np.float32), flow=f.flow.astype(np.float32),
                     mel=f.mel.astype(np.float32), config_hash=np.array(f.config_hash),
                     video_id=np.array(f.video_id), class_name=np.array(f.class_name),
                     has_audio=np.array(bool(f.has_audio)), duration_s=np.array(float(f.duration_s)))


def load_features(path: str | Path, expected_hash: str | None = None) -> VideoFeatures:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: feature file not found (run `regnet-bench extract`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            f = VideoFeatures(
                video_id=str(z["video_id"]), class_name=str(z["class_name"]),
                rgb=z["rgb"], flow=z["flow"], mel=z["mel"], config_hash=str(z["config_hash"]),
                has_audio=bool(z["has_audio"]) if "has_audio" in z else True,
                duration_s=float(z["duration_s"]) if "duration_s" in z else 0.0)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path}: not a regnet-bench feature file ({e})") from None
    if expected_hash is not None and f.config_hash != expected_hash:
        raise UserError(f"{path}: made with another config (hash {f.config_hash}, expected "
                        f"{expected_hash}); re-run extract")
    return f


def is_fresh(path: str | Path, expected_hash: str) -> bool:
    """True when the cache file exists and was made with this config."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["config_hash"]) == expected_hash
    except Exception:
        return False
