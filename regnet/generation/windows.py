"""Whole videos through a fixed-length model: the window plan and the mel-domain join.

RegNet sees ``data.n_steps`` feature steps at a time (10 s in the paper, 2 s in the tiny preset).
A longer video is cut into windows of that length that overlap by at least ``overlap`` steps; the
last window is aligned to the video's end, so no window is padded. Each window's predicted mel is
joined by a normalised overlap-add with linear ramps across each overlap: where one window alone
covers a frame, the output is exactly that window's; in an overlap it is a convex blend whose
weights move linearly from one window to the next.

Why the mel domain, before the vocoder: the join then happens once, on a log-mel whose values are
bounded in [0, 1], and the vocoder makes one continuous waveform (Griffin-Lim's phase, WaveNet's
sample history). Joining vocoded waveforms instead would blend two independently estimated phases
in each overlap, which an equal-power crossfade cannot make coherent (comb filtering).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    start: int  # first feature step of the window
    steps: int  # window length in steps (the model's n_steps)

    @property
    def stop(self) -> int:
        return self.start + self.steps

    def span_s(self, fps: float) -> tuple[float, float]:
        return self.start / fps, self.stop / fps


def default_overlap(window_steps: int) -> int:
    """A quarter of the window (2.5 s for the paper's 10 s clips, 0.5 s for 2 s clips)."""
    return max(1, window_steps // 4)


def plan_windows(total_steps: int, window_steps: int, overlap_steps: int) -> list[Window]:
    """Windows covering ``total_steps``: evenly spaced, each overlap at least ``overlap_steps``.

    A video no longer than one window gets that one window (padded by the caller the way the
    training data was). Even spacing (rather than a fixed hop plus a short tail) keeps every
    overlap about the same length, so no seam gets a sudden, short crossfade.
    """
    if window_steps < 1:
        raise ValueError("window_steps must be at least 1")
    if total_steps <= window_steps:
        return [Window(0, window_steps)]
    overlap_steps = min(max(0, int(overlap_steps)), window_steps - 1)
    hop = window_steps - overlap_steps
    n = math.ceil((total_steps - window_steps) / hop) + 1
    span = total_steps - window_steps
    starts = sorted({int(round(k * span / (n - 1))) for k in range(n)})
    return [Window(s, window_steps) for s in starts]


def join_mels(mels: list[np.ndarray], plan: list[Window], frames_per_step: int, total_steps: int) -> np.ndarray:
    """One mel [n_mels, frames_per_step * total_steps] from the windows' mels (see module doc)."""
    if len(mels) != len(plan):
        raise ValueError(f"{len(mels)} mels for {len(plan)} windows")
    fps_ = frames_per_step
    total = fps_ * max(total_steps, plan[-1].stop)
    n_mels = mels[0].shape[0]
    acc = np.zeros((n_mels, total), dtype=np.float64)
    wsum = np.zeros(total, dtype=np.float64)
    for i, (p, m) in enumerate(zip(plan, mels)):
        length = fps_ * p.steps
        w = np.ones(length, dtype=np.float64)
        if i > 0:  # fade in across the overlap with the previous window
            ramp = fps_ * (plan[i - 1].stop - p.start)
            if ramp > 0:
                w[:ramp] = np.minimum(w[:ramp], (np.arange(ramp) + 0.5) / ramp)
        if i + 1 < len(plan):  # fade out across the overlap with the next window
            ramp = fps_ * (p.stop - plan[i + 1].start)
            if ramp > 0:
                w[length - ramp:] = np.minimum(w[length - ramp:], (ramp - np.arange(ramp) - 0.5) / ramp)
        lo = fps_ * p.start
        acc[:, lo:lo + length] += m[:, :length] * w
        wsum[lo:lo + length] += w
    out = acc / np.maximum(wsum, 1e-12)
    return out[:, : fps_ * total_steps].astype(np.float32)


def describe(plan: list[Window], fps: float, seconds: float | None = None) -> str:
    """The windows as ``start-stop;...`` in seconds (clips.csv's ``windows`` column); the last one
    is cut to ``seconds`` when the video is shorter than one window."""
    parts = []
    for p in plan:
        a, b = p.span_s(fps)
        if seconds is not None and len(plan) == 1:
            b = min(b, seconds)
        parts.append(f"{a:.3f}-{b:.3f}")
    return ";".join(parts)
