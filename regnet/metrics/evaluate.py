"""`evaluate`: join clips with their references, measure every clip, summarise per system and class.

Writes ``objective.md`` (table, mean ± half-width of the t-based 95% interval), ``objective.csv``
(long: system, class, metric, n, mean, ci95_low, ci95_high) and ``objective_clips.csv`` (one row per
clip; the simulated raters read it). Clips without a usable reference or file are skipped and
listed, the rest go on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regnet.atomic import atomic_path
from regnet.clips import ClipRecord, read_clips
from regnet.config import DataConfig
from regnet.data.manifest import read_manifest
from regnet.data.mel import fit_length
from regnet.errors import UserError
from regnet.data.audio import load_audio
from regnet.metrics.envelope import envelope_correlation
from regnet.metrics.mel_l2 import mel_l2
from regnet.metrics.onsets import DEFAULT_TOLERANCE_S, detect_onsets, score_onsets
from regnet.metrics.references import (ONSET_REFERENCES, REFERENCES, Reference, ReferenceIndex,
                                       read_event_times)
from regnet.metrics.stats import mean_ci

if TYPE_CHECKING:
    from regnet.metrics.embedders import EmbedderSpec, ReleasedEmbedder

log = logging.getLogger(__name__)

# Per-clip metric columns, in table order, with their table headings.
METRICS = {
    "mel_l2_x100": "waveform mel L2 (×10⁻²) ↓",
    "onset_precision": "onset P ↑",
    "onset_recall": "onset R ↑",
    "onset_f1": "onset F1 ↑",
    "onset_acc": "onset Acc ↑",
    "onset_ap": "onset AP ↑",
    "envelope_corr": "envelope r ↑",
    "kl_posterior": "KL ↓",
}
SET_METRICS = {"frechet_distance": "FD ↓"}
ALL_CLASSES = "all"


@dataclass
class EvaluateOptions:
    reference: str = "real"
    onset_reference: str = "auto"
    tolerance_s: float = DEFAULT_TOLERANCE_S
    embedding: Path | None = None
    real_system: str = "real"

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise UserError(f"--reference: '{self.reference}' is not one of {', '.join(REFERENCES)}")
        if self.onset_reference not in ONSET_REFERENCES:
            raise UserError(f"--onset-reference: '{self.onset_reference}' is not one of "
                            f"{', '.join(ONSET_REFERENCES)}")
        if not (self.tolerance_s > 0):
            raise UserError(f"--tolerance: must be > 0 seconds, got {self.tolerance_s}")


@dataclass
class Skipped:
    where: str
    reason: str


@dataclass
class EvaluationResult:
    clips: pd.DataFrame  # one row per clip
    summary: pd.DataFrame  # long: system, class, metric, n, mean, ci95_low, ci95_high
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _AudioCache:
    """Each reference is decoded (and its onsets detected) once, however many systems use it."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self.n = int(round(cfg.clip_seconds * cfg.sample_rate))
        self._wav: dict[Path, np.ndarray] = {}
        self._onsets: dict[Path, object] = {}

    def wav(self, path: Path) -> np.ndarray:
        if path not in self._wav:
            self._wav[path] = fit_length(load_audio(path, self.cfg.sample_rate, self.cfg.clip_seconds), self.n)
        return self._wav[path]

    def onsets(self, path: Path):
        if path not in self._onsets:
            self._onsets[path] = detect_onsets(self.wav(path), self.cfg.sample_rate, self.cfg.hop_length)
        return self._onsets[path]


def measure_clip(wav: np.ndarray, ref_wav: np.ndarray, ref_onsets_s: np.ndarray, cfg: DataConfig,
                 tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict[str, float]:
    """All weight-free metrics of one clip against one reference (both already at clip length)."""
    det = detect_onsets(wav, cfg.sample_rate, cfg.hop_length)
    s = score_onsets(det, ref_onsets_s, tolerance_s)
    return {"mel_l2_x100": mel_l2(wav, ref_wav, cfg), "onset_precision": s.precision,
            "onset_recall": s.recall, "onset_f1": s.f1, "onset_acc": s.accuracy, "onset_ap": s.ap,
            "envelope_corr": envelope_correlation(wav, ref_wav, cfg),
            "n_onsets": s.n_detected, "n_reference_onsets": s.n_reference}


def load_clip_lists(paths: list[str | Path]) -> tuple[list[ClipRecord], list[Skipped]]:
    """Clips from several clips.csv files; a repeated (system, video_id) keeps the first."""
    out, skipped, seen = [], [], set()
    for p in paths:
        for c in read_clips(p, check_files=False):
            key = (c.system, c.video_id)
            if key in seen:
                skipped.append(Skipped(f"{p}: {c.system}/{c.video_id}", "listed twice; first kept"))
                continue
            seen.add(key)
            out.append(c)
    return out, skipped


def clip_seconds_of(paths: list[str | Path]) -> float | None:
    """Median ``duration_s`` of the listed clips, None when no clips.csv gives one."""
    durations = [c.duration_s for p in paths for c in read_clips(p, check_files=False)]
    finite = [d for d in durations if np.isfinite(d) and d > 0]
    return float(np.median(finite)) if finite else None


def evaluate(clips_paths: list[str | Path], cfg: DataConfig, opts: EvaluateOptions,
             manifest: str | Path | None = None) -> EvaluationResult:
    """Measure every clip of every clips.csv against its reference (see `regnet.metrics.references`)."""
    if not clips_paths:
        raise UserError("--clips: give at least one clips.csv")
    clips, skipped = load_clip_lists(clips_paths)
    return evaluate_clips(clips, cfg, opts, read_manifest(manifest) if manifest else None, skipped)


def evaluate_clips(clips: list[ClipRecord], cfg: DataConfig, opts: EvaluateOptions,
                   manifest_rows: list | None = None, skipped: list[Skipped] | None = None) -> EvaluationResult:
    """`evaluate` on clip records already in hand (e.g. the clips a study shows)."""
    skipped = list(skipped or [])
    index = ReferenceIndex(clips, manifest_rows, opts.real_system)
    cache = _AudioCache(cfg)
    embedder = _load_embedder(opts)
    records, wavs, ref_wavs = [], [], []
    for clip in clips:
        where = f"{clip.system}/{clip.video_id}"
        try:
            ref = index.reference(clip, opts.reference)
            ref_wav = cache.wav(ref.audio_path)
            onsets_s, onset_src = _reference_onsets(ref, opts.onset_reference, cache, cfg)
            wav = fit_length(load_audio(clip.wav_path, cfg.sample_rate, cfg.clip_seconds), cache.n)
        except UserError as e:
            skipped.append(Skipped(where, str(e)))
            continue
        m = measure_clip(wav, ref_wav, onsets_s, cfg, opts.tolerance_s)
        records.append({"system": clip.system, "video_id": clip.video_id, "class": ref.class_name,
                        "reference": opts.reference, "reference_source": ref.source,
                        "onset_reference": onset_src, "clip_seconds": cfg.clip_seconds, **m})
        if embedder is not None:
            wavs.append(wav)
            ref_wavs.append(ref_wav)
        pairs.append((Path(clip.wav_path), ref.audio_path))
    per_clip = pd.DataFrame(records)
    notes = [f"reference: {opts.reference}; onset tolerance ±{opts.tolerance_s * 1000:.0f} ms; "
             f"clip length {cfg.clip_seconds:g} s at {cfg.sample_rate} Hz",
             "mel L2 here is recomputed from each clip's waveform, so it includes the vocoder's error; the "
             "paper's Table III number is RegNet's predicted mel to the clean mel (`ablate`, "
             "regnet.metrics.predicted_mel)"]
    # Each system that departs from the paper's says so once (clips.csv's deviations column).
    for system, devs in {c.system: getattr(c, "deviations", "") for c in clips}.items():
        if devs:
            notes.append(f"{system} deviates from the paper's system: {devs}")
    embeddings = None
    if embedder is not None and records:
        e_gen, p_gen = embedder.embed(wavs, cfg.sample_rate)
        e_ref, p_ref = embedder.embed(ref_wavs, cfg.sample_rate)
        from regnet.metrics.embedding import kl_divergence

        per_clip["kl_posterior"] = kl_divergence(p_ref, p_gen)
        embeddings = (e_gen, e_ref)
        notes.append(f"embedding metrics from {embedder.path} ({len(embedder.classes)} classes)")
    else:
        notes.append("embedding metrics (FD, KL) skipped: no --embedding weights given"
                     if embedder is None else "embedding metrics: no clips measured")
    if skipped:
        log.warning("skipped %d clip(s):\n%s", len(skipped),
                    "\n".join(f"  {s.where}: {s.reason}" for s in skipped))
    if per_clip.empty:
        raise UserError("evaluate: no clip could be measured (" +
                        "; ".join(f"{s.where}: {s.reason}" for s in skipped[:3]) + ")")
    return EvaluationResult(per_clip, summarise(per_clip, embeddings), skipped, notes)


def _load_embedder(opts: EvaluateOptions):
    if opts.embedding is None:
        return None
    from regnet.metrics.embedding import load_embedder

    return load_embedder(opts.embedding)


def _reference_onsets(ref: Reference, mode: str, cache: _AudioCache, cfg: DataConfig):
    use_events = mode == "events" or (mode == "auto" and ref.events_path is not None)
    if use_events:
        if ref.events_path is None:
            raise UserError(f"video {ref.video_id}: no events_path in the manifest (--onset-reference events)")
        times = read_event_times(ref.events_path)
        return times[times < cfg.clip_seconds], "events"
    return cache.onsets(ref.audio_path).times_s, "audio"


def _groups(per_clip: pd.DataFrame):
    """(system, class, row mask) for every class and for all classes of each system."""
    for system in dict.fromkeys(per_clip["system"]):
        sys_mask = per_clip["system"] == system
        classes = list(dict.fromkeys(per_clip.loc[sys_mask, "class"]))
        for cls in classes:
            yield system, cls, sys_mask & (per_clip["class"] == cls)
        if len(classes) > 1:
            yield system, ALL_CLASSES, sys_mask


def summarise(per_clip: pd.DataFrame, embeddings=None) -> pd.DataFrame:
    """Long summary table: mean and t-based 95% CI per system, class and metric; FD per set."""
    out = []
    for system, cls, mask in _groups(per_clip):
        for metric in METRICS:
            if metric not in per_clip.columns:
                continue
            ci = mean_ci(per_clip.loc[mask, metric].to_numpy(dtype=float))
            out.append({"system": system, "class": cls, "metric": metric, "n": ci.n,
                        "mean": ci.mean, "ci95_low": ci.low, "ci95_high": ci.high})
        if embeddings is not None:
            from regnet.metrics.embedding import frechet_distance

            idx = np.flatnonzero(mask.to_numpy())
            fd = frechet_distance(embeddings[0][idx], embeddings[1][idx])
            out.append({"system": system, "class": cls, "metric": "frechet_distance", "n": len(idx),
                        "mean": fd, "ci95_low": math.nan, "ci95_high": math.nan})
    return pd.DataFrame(out, columns=["system", "class", "metric", "n", "mean", "ci95_low", "ci95_high"])


def _cell(row) -> str:
    if row is None or not np.isfinite(row["mean"]):
        return "–"
    if np.isfinite(row["ci95_low"]):
        return f"{row['mean']:.3f} ± {(row['ci95_high'] - row['ci95_low']) / 2:.3f}"
    return f"{row['mean']:.3f}"


def render_markdown(result: EvaluationResult, command: str | None = None) -> str:
    s = result.summary
    metrics = [m for m in list(METRICS) + list(SET_METRICS) if m in set(s["metric"])]
    heads = {**METRICS, **SET_METRICS}
    lines = ["# Objective metrics", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"- {n}" for n in result.notes] + [""]
    lines.append("| system | class | clips | " + " | ".join(heads[m] for m in metrics) + " |")
    lines.append("|---|---|---:|" + "---:|" * len(metrics))
    for (system, cls), g in s.groupby(["system", "class"], sort=False):
        by_metric = {r["metric"]: r for r in g.to_dict("records")}
        n = max(int(r["n"]) for r in by_metric.values())
        lines.append(f"| {system} | {cls} | {n} | " +
                     " | ".join(_cell(by_metric.get(m)) for m in metrics) + " |")
    lines += ["", "Cells: mean ± half-width of the t-based 95% interval over clips (no interval with "
              "one clip; FD is one number per set). P = precision of detected onsets against the "
              "reference onsets (proxy for Sound-Redundant), R = recall (proxy for Sound-Missing), "
              "Acc = fraction of clips with the right number of onsets, AP = onset average "
              "precision (CondFoleyGen), r = correlation of RMS envelopes. Undefined values (e.g. "
              "precision with no detected onset) are left out of a mean; "
              "`objective.csv` gives n per metric.", ""]
    if result.skipped:
        lines += [f"Skipped {len(result.skipped)} clip(s):", ""]
        lines += [f"- {x.where}: {x.reason}" for x in result.skipped] + [""]
    return "\n".join(lines)


def write_results(result: EvaluationResult, out_dir: str | Path, command: str | None = None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "objective.md", "csv": out / "objective.csv", "clips": out / "objective_clips.csv"}
    # The simulated raters read objective_clips.csv: never leave half of it behind.
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(render_markdown(result, command))
    with atomic_path(paths["csv"]) as tmp:
        result.summary.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(paths["clips"]) as tmp:
        result.clips.to_csv(tmp, index=False, float_format="%.6g")
    return paths

