"""Where the simulated raters get per-clip metrics from, in order of preference: the table
`evaluate` wrote (``objective_clips.csv``), the systems' clips.csv files (measured now), or the
clips the study itself shows (measured now, against the study's real-system clip of each video)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from regnet.clips import ClipRecord
from regnet.config import DataConfig
from regnet.data.audio import load_audio
from regnet.data.manifest import read_manifest
from regnet.errors import UserError
from regnet.metrics.evaluate import EvaluateOptions, evaluate, evaluate_clips

log = logging.getLogger(__name__)

REQUIRED = ("system", "video_id", "onset_recall", "mel_l2_x100")


def metrics_from_table(path: str | Path, recorded: float | None = None) -> tuple[pd.DataFrame, float | None]:
    """The table and the clip length: ``recorded`` (the study's, `Study.clip_seconds`) when given,
    else, for a study written before it was recorded, the table's ``clip_seconds`` column."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: metrics file not found (evaluate writes objective_clips.csv)")
    try:
        df = pd.read_csv(path, dtype={"video_id": str, "system": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (not an objective_clips.csv?)")
    seconds = df["clip_seconds"].dropna() if "clip_seconds" in df.columns else pd.Series(dtype=float)
    measured = float(seconds.median()) if len(seconds) else None
    if recorded is None:
        return df, measured
    if measured is not None and abs(measured - recorded) > 1e-6:
        log.warning("%s: metrics measured at %g s clips; the study's clips are %g s", path, measured, recorded)
    return df, recorded


def metrics_from_clips(paths: list[str], cfg: DataConfig, opts: EvaluateOptions,
                       manifest: str | None) -> pd.DataFrame:
    return evaluate(paths, cfg, opts, manifest=manifest).clips


def study_clips(study) -> list[ClipRecord]:
    """One record per (system, video) whose own sound some trial shows."""
    seen: dict[tuple[str, str], ClipRecord] = {}
    for t in study.trials:
        for system, clip, sound in ((t.left_system, t.left_clip, t.left_sound),
                                    (t.right_system, t.right_clip, t.right_sound)):
            if not system or not clip or sound not in ("", "own") or system.startswith("check:"):
                continue
            seen.setdefault((system, t.video_id), ClipRecord(system=system, video_id=t.video_id,
                                                             class_name=t.class_name, clip_path=Path(clip),
                                                             wav_path=Path(clip)))
    return list(seen.values())


def metrics_from_study(study, cfg: DataConfig, opts: EvaluateOptions, manifest: str | None,
                       infer_length: bool) -> tuple[pd.DataFrame, float]:
    clips = study_clips(study)
    if not clips:
        raise UserError(f"{study.directory}: the study shows no clip with its own sound")
    if infer_length and study.clip_seconds is not None:
        cfg.clip_seconds = study.clip_seconds  # recorded by build-study from the clips.csv files
    elif infer_length:
        # A study written before clip length was recorded: the real clips say it (all clips share it).
        real = [c for c in clips if c.system == opts.real_system and c.wav_path.is_file()]
        if real:
            cfg.clip_seconds = round(len(load_audio(real[0].wav_path, cfg.sample_rate)) / cfg.sample_rate, 3)
    result = evaluate_clips(clips, cfg, opts, read_manifest(manifest) if manifest else None)
    if result.skipped:
        log.warning("%d clip(s) of the study could not be measured; trials showing them are answered "
                    "as if their sound were absent", len(result.skipped))
    return result.clips, cfg.clip_seconds
