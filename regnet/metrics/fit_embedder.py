"""Train the small `AudioEmbedder` on a labelled dataset, so FD and KL can be used without any
downloaded weights: the classes are the manifest's ``class`` column, the input the real sound
(``audio_path``, else the video's audio track). The result is an ordinary embedder file for
``evaluate --embedding``. An embedder fitted on the benchmark's own real sound measures closeness
to that sound's class statistics; say so when reporting FD/KL from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.config import DataConfig
from regnet.data.audio import load_audio
from regnet.data.manifest import read_manifest
from regnet.data.mel import log_mel
from regnet.errors import UserError
from regnet.metrics.embedding import EmbedderConfig, new_embedder, save_embedder

log = logging.getLogger(__name__)


@dataclass
class FitOptions:
    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    split: str | None = "train"  # None: every row
    channels: tuple[int, ...] = (64, 128)
    embed_dim: int = 128


@dataclass
class FitReport:
    path: Path
    classes: tuple[str, ...]
    n_clips: int
    train_accuracy: float
    skipped: list[tuple[str, str]]


def fit_embedder(manifest: str | Path, cfg: DataConfig, out: str | Path, opts: FitOptions) -> FitReport:
    import torch

    rows = read_manifest(manifest)
    if opts.split:
        rows = [r for r in rows if r.split == opts.split] or rows
    mels, labels, skipped = [], [], []
    for r in rows:
        try:
            wav = load_audio(r.audio_path or r.video_path, cfg.sample_rate, cfg.clip_seconds)
        except UserError as e:
            skipped.append((r.video_id, str(e)))
            continue
        mels.append(log_mel(wav, cfg))
        labels.append(r.class_name)
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise UserError(f"{manifest}: need clips of at least two classes to fit a classifier "
                        f"(found {len(classes)}: {', '.join(classes) or 'none'})")
    x = torch.from_numpy(np.stack(mels))
    y = torch.tensor([classes.index(c) for c in labels])
    model = new_embedder(EmbedderConfig(n_mels=cfg.n_mels, channels=opts.channels, embed_dim=opts.embed_dim,
                                        classes=classes), seed=opts.seed)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr)
    gen = torch.Generator().manual_seed(opts.seed)
    model.train()
    for epoch in range(opts.epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), opts.batch_size):
            idx = order[i:i + opts.batch_size]
            # A random circular time shift: the class must not depend on where in the clip things happen.
            shift = int(torch.randint(0, x.shape[2], (1,), generator=gen))
            _, logits = model(torch.roll(x[idx], shift, dims=2))
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
        log.debug("epoch %d loss %.4f", epoch, loss.item())
    model.eval()
    with torch.no_grad():
        acc = float((model(x)[1].argmax(1) == y).float().mean())
    save_embedder(out, model, cfg)
    log.info("embedder: %d clips, %d classes, training accuracy %.3f -> %s", len(x), len(classes), acc, out)
    return FitReport(Path(out), classes, len(x), acc, skipped)
