"""Embedding metrics through a user-supplied audio classifier: Fréchet distance and KL of class
posteriors.

No weights ship with the project and nothing is downloaded. The user gives a local file in this
format (``torch.save`` of a dict):

    {"format": "regnet-bench/audio-embedder", "version": 1,
     "config": {"n_mels": 80, "channels": [64, 128], "embed_dim": 128, "classes": ["dog", ...]},
     "data_config": {...DataConfig fields: sample_rate, n_fft, hop_length, n_mels, fmin, fmax,
                     clip_seconds...},
     "state_dict": AudioEmbedder.state_dict()}

`AudioEmbedder` reads the normalised log-mel of `regnet.data.mel.log_mel` computed with the file's
``data_config`` ([n_mels, frames]), runs 1-D convolutions over time, averages over time, and gives
an embedding (``embed_dim``, the penultimate layer: what the Fréchet distance uses) and class logits
(softmax: the posteriors the KL uses). Any classifier trained in this format plugs in;
`save_embedder` writes one.

- **Fréchet distance** between Gaussians fitted to the embeddings of a system's clips and of their
  references (as FID / FAD): ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``. One number per set,
  so it has no per-clip interval; with fewer clips than dimensions the covariances are singular and
  the value is biased upwards (the table gives n).
- **KL** of class posteriors per clip, ``KL(p_reference || p_generated)`` (the "MKL" of SpecVQGAN),
  averaged over clips.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.config import DataConfig
from regnet.errors import UserError

FORMAT = "regnet-bench/audio-embedder"
VERSION = 1


@dataclass
class EmbedderConfig:
    n_mels: int = 80
    channels: tuple[int, ...] = (64, 128)
    embed_dim: int = 128
    classes: tuple[str, ...] = ()
    kernel_size: int = 3


def _build(cfg: EmbedderConfig):
    import torch.nn as nn

    class AudioEmbedder(nn.Module):
        """Log-mel [B, n_mels, T] -> (embedding [B, embed_dim], logits [B, n_classes])."""

        def __init__(self, c: EmbedderConfig):
            super().__init__()
            layers, prev = [], c.n_mels
            for ch in c.channels:
                layers += [nn.Conv1d(prev, ch, c.kernel_size, padding=c.kernel_size // 2),
                           nn.BatchNorm1d(ch), nn.ReLU()]
                prev = ch
            self.features = nn.Sequential(*layers)
            self.embed = nn.Linear(prev, c.embed_dim)
            self.classify = nn.Linear(c.embed_dim, max(1, len(c.classes)))
            self.config = c

        def forward(self, mel):
            h = self.features(mel).mean(dim=2)
            e = self.embed(h)
            return e, self.classify(nn.functional.relu(e))

    return AudioEmbedder(cfg)


def new_embedder(cfg: EmbedderConfig, seed: int = 0):
    """A freshly initialised `AudioEmbedder` (for training one, or for tests)."""
    import torch

    torch.manual_seed(seed)
    return _build(cfg)


def save_embedder(path: str | Path, model, data_cfg: DataConfig) -> None:
    import torch

    cfg = model.config
    torch.save({"format": FORMAT, "version": VERSION,
                "config": {**dataclasses.asdict(cfg), "channels": list(cfg.channels),
                           "classes": list(cfg.classes)},
                "data_config": {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in dataclasses.asdict(data_cfg).items()},
                "state_dict": model.state_dict()}, str(path))


@dataclass
class Embedder:
    """A loaded embedder with the mel settings it was trained on."""

    model: object
    data_cfg: DataConfig
    classes: tuple[str, ...]
    path: Path

    def embed(self, wavs: list[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [N, D], class posteriors [N, C]) of waveforms at ``sample_rate``."""
        import torch

        from regnet.data.mel import log_mel

        if sample_rate != self.data_cfg.sample_rate:
            import librosa

            wavs = [librosa.resample(np.asarray(w, dtype=np.float32), orig_sr=sample_rate,
                                     target_sr=self.data_cfg.sample_rate) for w in wavs]
        mels = np.stack([log_mel(w, self.data_cfg) for w in wavs])
        with torch.no_grad():
            e, logits = self.model(torch.from_numpy(mels))
            post = torch.softmax(logits, dim=1)
        return e.numpy().astype(np.float64), post.numpy().astype(np.float64)


def load_embedder(path: str | Path) -> Embedder:
    """Load an embedder file; anything not in the format above is a UserError naming the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: embedding weights not found")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise UserError(f"{path}: not a torch file ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise UserError(f"{path}: not a regnet-bench audio embedder (expected format '{FORMAT}')")
    if blob.get("version") != VERSION:
        raise UserError(f"{path}: embedder version {blob.get('version')} not supported (need {VERSION})")
    try:
        c = blob["config"]
        cfg = EmbedderConfig(n_mels=int(c["n_mels"]), channels=tuple(int(x) for x in c["channels"]),
                             embed_dim=int(c["embed_dim"]), classes=tuple(str(x) for x in c["classes"]),
                             kernel_size=int(c.get("kernel_size", 3)))
        data_cfg = DataConfig()
        for k, v in (blob.get("data_config") or {}).items():
            if hasattr(data_cfg, k):
                setattr(data_cfg, k, tuple(v) if isinstance(v, list) else v)
        if data_cfg.n_mels != cfg.n_mels:
            raise UserError(f"{path}: data_config.n_mels {data_cfg.n_mels} != config.n_mels {cfg.n_mels}")
        model = _build(cfg)
        model.load_state_dict(blob["state_dict"])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: embedder file is incomplete or inconsistent ({str(e).splitlines()[0][:160]})") from None
    model.eval()
    return Embedder(model=model, data_cfg=data_cfg, classes=cfg.classes, path=path)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings [N, D]; NaN with fewer
    than two vectors in either set (no covariance). Exact also with fewer clips than dimensions
    (see `regnet.metrics.fad`)."""
    from regnet.metrics.fad import frechet_distance as fd

    return fd(a, b)


def kl_divergence(p_ref: np.ndarray, p_gen: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Row-wise KL(p_ref || p_gen) of class posteriors [N, C]."""
    p = np.clip(np.asarray(p_ref, dtype=np.float64), eps, 1.0)
    q = np.clip(np.asarray(p_gen, dtype=np.float64), eps, 1.0)
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)
