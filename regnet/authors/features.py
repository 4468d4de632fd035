"""Import the authors' pre-computed features into our feature cache.

Their release (`features_dog_testset.tar`) holds, per video id:
``feature_rgb_bninception_dim1024_21.5fps/ID.pkl`` and ``feature_flow_bninception_dim1024_21.5fps/ID.pkl``
(pickled numpy ``[T, 1024]``), ``melspec_10s_22050hz/ID_mel.npy`` (``[80, T]``) and a filelist of ids.
Their loader zero-pads or cuts each array to 215 steps / 860 frames; we fit to this config's
``n_steps`` / ``mel_frames`` with ``data.pad_mode`` ('zero' = their loader, 'repeat' = the paper).

The cache is written with ``data.feature_source = 'authors'``, so its hash reads ``external:...``
and only a run with the same setting (``--config OUT/config.yaml``) accepts it.
"""

from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from regnet.config import Config, DataConfig
from regnet.data.features import VideoFeatures, feature_path, save_features
from regnet.errors import UserError

log = logging.getLogger(__name__)

SOURCE = "authors"
CONFIG_NAME = "config.yaml"

# A pickle can run any code on load; a downloaded one may only rebuild numpy arrays.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are accepted)")


@dataclass
class FeatureImport:
    out_dir: Path
    config_hash: str
    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video id, reason)


def load_pickled_array(path: Path) -> np.ndarray:
    """One numpy array from a pickle, refusing anything else (their features: ``[T, 1024]``)."""
    try:
        # encoding='bytes' as their loader: the files were written by Python 2-era numpy.
        obj = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except Exception as e:  # a truncated or foreign pickle raises many types
        raise UserError(f"{path}: not a pickled numpy array ({e})") from None
    if not isinstance(obj, np.ndarray):
        raise UserError(f"{path}: holds a {type(obj).__name__}, expected a numpy array")
    return obj


def fit_length(x: np.ndarray, n: int, axis: int, mode: str) -> np.ndarray:
    """Cut to ``n`` along ``axis``, or pad: 'zero' appends zeros, 'repeat' loops the clip."""
    t = x.shape[axis]
    if t >= n:
        return np.take(x, np.arange(n), axis=axis)
    if mode == "repeat":
        return np.take(x, np.arange(n) % t, axis=axis)
    if mode != "zero":
        raise UserError(f"data.pad_mode: '{mode}' is not one of zero, repeat")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, n - t)
    return np.pad(x, widths)


def external_data_config(data: DataConfig) -> DataConfig:
    """The data section an imported cache is made (and must be read) with."""
    cfg = Config(data=data).copy().data
    cfg.feature_source = SOURCE
    return cfg


def read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: ids file not found")
    ids, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        vid = line.strip()
        if vid and vid not in seen:
            seen.add(vid)
            ids.append(vid)
    if not ids:
        raise UserError(f"{path}: no video ids in the file")
    return ids


def _one(vid: str, rgb_dir: Path, flow_dir: Path, mel_dir: Path | None, data: DataConfig,
         class_name: str, config_hash: str) -> VideoFeatures:
    arrays = {}
    for name, folder in (("rgb", rgb_dir), ("flow", flow_dir)):
        p = folder / f"{vid}.pkl"
        if not p.is_file():
            raise UserError(f"{p}: file not found")
        a = load_pickled_array(p)
        if a.ndim != 2 or a.shape[0] == 0:
            raise UserError(f"{p}: expected [T, dim] with T > 0, got shape {list(a.shape)}")
        arrays[name] = a
    if mel_dir is not None:
        p = mel_dir / f"{vid}_mel.npy"
        if not p.is_file():
            raise UserError(f"{p}: file not found")
        try:
            mel = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{p}: not a numpy array file ({e})") from None
        if mel.ndim != 2 or mel.shape[0] != data.n_mels or mel.shape[1] == 0:
            raise UserError(f"{p}: expected [{data.n_mels}, T] with T > 0, got shape {list(mel.shape)}")
        mel = fit_length(mel, data.mel_frames, 1, data.pad_mode)
    else:
        mel = np.zeros((data.n_mels, data.mel_frames), np.float32)
    steps = min(arrays["rgb"].shape[0], arrays["flow"].shape[0])
    return VideoFeatures(
        video_id=vid, class_name=class_name,
        rgb=fit_length(arrays["rgb"], data.n_steps, 0, data.pad_mode).astype(np.float32),
        flow=fit_length(arrays["flow"], data.n_steps, 0, data.pad_mode).astype(np.float32),
        mel=mel.astype(np.float32), config_hash=config_hash, has_audio=mel_dir is not None,
        duration_s=min(steps / data.fps, data.clip_seconds))


def import_features(rgb_dir: str | Path, flow_dir: str | Path, mel_dir: str | Path | None,
                    ids_file: str | Path, out_dir: str | Path, data: DataConfig,
                    class_name: str) -> FeatureImport:
    """Convert every listed video; a bad one is skipped with its reason, not fatal."""
    rgb_dir, flow_dir, out = Path(rgb_dir), Path(flow_dir), Path(out_dir)
    mel = Path(mel_dir) if mel_dir else None
    for flag, d in (("--rgb-dir", rgb_dir), ("--flow-dir", flow_dir), ("--mel-dir", mel)):
        if d is not None and not d.is_dir():
            raise UserError(f"{flag} {d}: not a directory")
    ext = external_data_config(data)
    result = FeatureImport(out_dir=out, config_hash=ext.cache_hash())
    ids = read_ids(Path(ids_file))
    out.mkdir(parents=True, exist_ok=True)
    dims: set[tuple[int, int]] = set()
    for vid in ids:
        try:
            f = _one(vid, rgb_dir, flow_dir, mel, ext, class_name, result.config_hash)
        except UserError as e:
            result.skipped.append((vid, str(e)))
            continue
        width = (f.rgb.shape[1], f.flow.shape[1])
        if dims and width not in dims:
            # One cache feeds one model: a video of another width would fail later, far from here.
            first = next(iter(dims))
            result.skipped.append((vid, f"{rgb_dir / (vid + '.pkl')}: rgb/flow widths {list(width)}, the "
                                        f"videos before it have {list(first)}"))
            continue
        dims.add(width)
        save_features(feature_path(out, vid), f)
        result.written.append(vid)
    # The config that reads this cache back: the data section only, so it layers over any preset.
    (out / CONFIG_NAME).write_text(yaml.safe_dump({"data": Config(data=ext).to_dict()["data"]},
                                                  sort_keys=False))
    from regnet.deviations import announce, data_deviations, write_cache_config

    announce("import-features", data_deviations(ext))
    write_cache_config(out, ext)
    return result
