"""PNG figures (matplotlib Agg, no display needed). Each returns the path it wrote, or None when
its table is empty."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from regnet.report.tables import CRITERIA  # noqa: E402

log = logging.getLogger(__name__)


def _finish(fig, ax, path: Path, banner: str | None) -> Path:
    if banner:
        fig.suptitle(banner, color="#b00020", fontsize=9, fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _err(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Error-bar lengths for matplotlib: a zero-width interval (every vote the same) can come out a
    rounding error below zero, which matplotlib refuses; a missing interval draws no bar."""
    return np.clip(np.nan_to_num(np.vstack([center - low, high - center])), 0.0, None)


def preference_plot(t1: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    if t1.empty:
        return None
    labels = [f"{r.system_a} vs {r.system_b}\n{CRITERIA[r.criterion]}" for r in t1.itertuples()]
    y = np.arange(len(t1))
    p = 100 * t1["pref_a"].to_numpy()
    err = _err(p, 100 * t1["ci_low"].to_numpy(), 100 * t1["ci_high"].to_numpy())
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(t1) + 1.5))
    ax.barh(y, p, color="#3b75af", label="first-named system")
    ax.barh(y, 100 - p, left=p, color="#d0d7e2", label="second-named system")
    ax.errorbar(p, y, xerr=err, fmt="none", ecolor="black", capsize=3)
    ax.axvline(50, color="black", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of votes preferring the first-named system (Wilson 95% CI)")
    ax.legend(fontsize=7, loc="lower right")
    return _finish(fig, ax, path, banner)


def real_fake_plot(t2: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    if t2.empty:
        return None
    classes = list(dict.fromkeys(t2["class"]))
    systems = list(dict.fromkeys(t2["system"]))
    w = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(classes) * len(systems) ** 0.5 + 2), 3.8))
    for j, s in enumerate(systems):
        d = t2[t2["system"] == s].set_index("class").reindex(classes)
        x = np.arange(len(classes)) + (j - (len(systems) - 1) / 2) * w
        v = 100 * d["real_rate"].to_numpy()
        err = _err(v, 100 * d["ci_low"].to_numpy(), 100 * d["ci_high"].to_numpy())
        ax.bar(x, v, w, label=s, yerr=err, capsize=2)
    ax.set_xticks(np.arange(len(classes)), classes, rotation=20, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% judged real (Wilson 95% CI)")
    ax.legend(fontsize=7)
    return _finish(fig, ax, path, banner)


def mos_plot(tm: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    if tm.empty:
        return None
    crit = list(dict.fromkeys(tm["criterion"]))
    systems = list(dict.fromkeys(tm["system"]))
    w = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for j, s in enumerate(systems):
        d = tm[tm["system"] == s].set_index("criterion").reindex(crit)
        x = np.arange(len(crit)) + (j - (len(systems) - 1) / 2) * w
        m = d["mean"].to_numpy()
        err = _err(m, d["ci_low"].to_numpy(), d["ci_high"].to_numpy())
        ax.bar(x, m, w, label=s, yerr=err, capsize=2)
    ax.set_xticks(np.arange(len(crit)), [CRITERIA[c] for c in crit], fontsize=8)
    ax.set_ylim(1, 5)
    ax.set_ylabel("MOS (t 95% CI)")
    ax.legend(fontsize=7)
    return _finish(fig, ax, path, banner)
