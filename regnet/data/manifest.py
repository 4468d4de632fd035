"""Dataset manifests: ``manifest.csv`` with ``video_id, class, split, video_path, audio_path,
duration_s`` (docs/architecture.md). Relative paths are relative to the manifest's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from regnet.errors import UserError
from regnet.tables import read_table

MANIFEST_COLUMNS = ["video_id", "class", "split", "video_path", "audio_path", "duration_s"]
# Written by `synth` only: the clean relevant track and the exact event times (docs/paper.md).
SYNTH_COLUMNS = ["clean_path", "events_path"]


@dataclass
class ManifestRow:
    video_id: str
    class_name: str
    split: str
    video_path: Path
    audio_path: Path | None
    duration_s: float
    clean_path: Path | None = None
    events_path: Path | None = None


def read_manifest(path: str | Path) -> list[ManifestRow]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found")
    df = read_table(path, required=("video_id", "video_path"), dtype={"video_id": str, "class": str, "split": str})
    if df["video_id"].duplicated().any():
        dup = df.loc[df["video_id"].duplicated(), "video_id"].iloc[0]
        raise UserError(f"{path}: video_id '{dup}' appears more than once")
    base = path.parent
    rows = []
    for r in df.to_dict("records"):
        audio = r.get("audio_path")
        rows.append(ManifestRow(
            video_id=str(r["video_id"]),
            class_name=str(r.get("class") if pd.notna(r.get("class")) else "all"),
            split=str(r.get("split") if pd.notna(r.get("split")) else "train"),
            video_path=_resolve(base, r["video_path"]),
            audio_path=_resolve(base, audio) if isinstance(audio, str) and audio else None,
            duration_s=float(r["duration_s"]) if pd.notna(r.get("duration_s")) else float("nan"),
            clean_path=_optional_path(base, r.get("clean_path")),
            events_path=_optional_path(base, r.get("events_path")),
        ))
    return rows


def write_manifest(path: str | Path, rows: list[ManifestRow]) -> None:
    path = Path(path)
    base = path.parent.resolve()
    synth = any(r.clean_path or r.events_path for r in rows)
    df = pd.DataFrame([{
        "video_id": r.video_id, "class": r.class_name, "split": r.split,
        "video_path": _relative(base, r.video_path),
        "audio_path": _relative(base, r.audio_path) if r.audio_path else "",
        "duration_s": round(r.duration_s, 4),
        "clean_path": _relative(base, r.clean_path) if r.clean_path else "",
        "events_path": _relative(base, r.events_path) if r.events_path else "",
    } for r in rows], columns=MANIFEST_COLUMNS + SYNTH_COLUMNS)
    if not synth:
        df = df[MANIFEST_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def _optional_path(base: Path, p: object) -> Path | None:
    return _resolve(base, p) if isinstance(p, str) and p else None


def _resolve(base: Path, p: str) -> Path:
    q = Path(str(p))
    return q if q.is_absolute() else (base / q)


def _relative(base: Path, p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(base))
    except ValueError:
        return str(Path(p).resolve())
