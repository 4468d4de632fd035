"""Synthetic signals whose content is known: decaying noise bursts (strikes) at given times, a sine
tone, and frames of a textured square moving right. Shared by the data, metrics and simulated-rater
tests; holds no tests itself."""

from __future__ import annotations

import numpy as np

SR = 22050


def bursts(times, sr=SR, seconds=2.0, seed=0, noise=0.0) -> np.ndarray:
    """Decaying noise bursts (a strike) starting at each time."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = np.zeros(n, np.float32)
    length = int(0.08 * sr)
    env = np.exp(-np.arange(length) / (0.015 * sr))
    for t in times:
        i = int(round(t * sr))
        seg = (rng.standard_normal(length) * env * 0.5)[: max(0, min(length, n - i))]
        x[i:i + len(seg)] += seg
    if noise:
        x += (rng.standard_normal(n) * noise).astype(np.float32)
    return x


def tone(seconds: float, sr: int = SR, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    a = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return a if channels == 1 else np.stack([a] * channels, axis=1)


def square_frames(n: int, w: int = 64, h: int = 48, speed: int = 2) -> np.ndarray:
    """A bright textured square moving right by ``speed`` px per frame (wrapping)."""
    rng = np.random.default_rng(0)
    tex = rng.integers(120, 255, size=(12, 12, 3), dtype=np.uint8)
    f = np.full((n, h, w, 3), 30, dtype=np.uint8)
    for i in range(n):
        x = (4 + i * speed) % (w - 12)
        f[i, 18:30, x:x + 12] = tex
    return f
