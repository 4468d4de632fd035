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

from mturk.report.tables import CRITERIA  # noqa: E402

log = logging.getLogger(__name__)


def _finish(fig, ax, path: Path, banner: str | None) -> Path:
    if banner:
        fig.suptitle(banner, color="#b00020", fontsize=9, fontweight="bold")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _err(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Error-bar lengths for matplotlib: a zero-width interval (every vote the same) can come out a
    rounding error below zero, which matplotlib refuses; a missing interval draws no bar."""
    return np.clip(np.nan_to_num(np.vstack([center - low, high - center])), 0.0, None)


def preference_plot(t1: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    """Stacked bars (A | B) with A's share as a point and its Wilson interval, so a 0% or 100%
    row still shows a mark; the legend sits below the axes, outside the data."""
    if t1.empty:
        return None
    labels = [f"{r.system_a} preferred over {r.system_b}\n{CRITERIA[r.criterion]}"
              for r in t1.itertuples()]
    y = np.arange(len(t1))
    p = 100 * t1["pref_a"].to_numpy()
    err = _err(p, 100 * t1["ci_low"].to_numpy(), 100 * t1["ci_high"].to_numpy())
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(t1) + 2.0))
    ax.barh(y, p, color="#3b75af", label="first-named system (A)")
    ax.barh(y, 100 - p, left=p, color="#d0d7e2", label="second-named system (B)")
    ax.errorbar(p, y, xerr=err, fmt="o", color="black", ms=4, capsize=3,
                label="% preferring A, Wilson 95% CI")
    ax.axvline(50, color="black", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-2, 102)
    ax.set_xlabel("% of votes preferring the first-named system")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28 if len(t1) < 4 else -0.12),
              ncol=3, frameon=False)
    return _finish(fig, ax, path, banner)


def real_fake_plot(t2: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    """Bars with an outline and a point at the rate, so a 0% bar is visible; legend outside."""
    if t2.empty:
        return None
    classes = list(dict.fromkeys(t2["class"]))
    systems = list(dict.fromkeys(t2["system"]))
    w = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(classes) * len(systems) ** 0.5 + 2), 4.2))
    for j, s in enumerate(systems):
        d = t2[t2["system"] == s].set_index("class").reindex(classes)
        x = np.arange(len(classes)) + (j - (len(systems) - 1) / 2) * w
        v = 100 * d["real_rate"].to_numpy()
        err = _err(v, 100 * d["ci_low"].to_numpy(), 100 * d["ci_high"].to_numpy())
        bars = ax.bar(x, v, w, label=s, edgecolor="black", linewidth=0.6)
        ax.errorbar(x, v, yerr=err, fmt="o", ms=3, color="black", capsize=2)
        for xi, vi in zip(x, v):
            if vi == 0:
                ax.annotate("0%", (xi, 0), xytext=(0, 3), textcoords="offset points",
                            ha="center", fontsize=6)
        del bars
    ax.set_xticks(np.arange(len(classes)), classes, rotation=20, fontsize=8)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% judged real (Wilson 95% CI)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _finish(fig, ax, path, banner)


def mos_plot(tm: pd.DataFrame, path: Path, banner: str | None) -> Path | None:
    """Means as points with their intervals on the 1-5 scale (bars from the bottom of the scale
    would hide a mean of 1.0); legend outside the axes."""
    if tm.empty:
        return None
    crit = list(dict.fromkeys(tm["criterion"]))
    systems = list(dict.fromkeys(tm["system"]))
    w = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for j, s in enumerate(systems):
        d = tm[tm["system"] == s].set_index("criterion").reindex(crit)
        x = np.arange(len(crit)) + (j - (len(systems) - 1) / 2) * w
        m = d["mean"].to_numpy()
        err = _err(m, d["ci_low"].to_numpy(), d["ci_high"].to_numpy())
        ax.errorbar(x, m, yerr=err, fmt="o", ms=6, capsize=3, label=s)
    ax.set_xticks(np.arange(len(crit)), [CRITERIA[c] for c in crit], fontsize=8)
    ax.set_ylim(0.8, 5.2)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.grid(axis="y", lw=0.4, alpha=0.5)
    ax.set_ylabel("MOS (1 worst – 5 best), 95% CI")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _finish(fig, ax, path, banner)
