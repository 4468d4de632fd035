"""Clip manifests: ``clips.csv`` per system (DESIGN §3).

Columns: ``system, video_id, class, clip_path, wav_path, vocoder, checkpoint, source_video,
duration_s, windows``. ``clip_path`` is an mp4 (original picture + the system's sound), ``wav_path`` the
sound alone at 22,050 Hz. Relative paths are relative to the clips.csv folder. Written by
`generate` and `import-clips`; read by `evaluate`, `build-study` and the simulated raters.
``windows`` (written by `generate`) lists the spans of the source, ``start-stop;...`` in seconds,
that went through the model one window of its clip length at a time. ``deviations`` (written by
`generate`) says how the system departs from the paper's (`regnet.deviations`), empty for the paper's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from regnet.errors import UserError

CLIP_COLUMNS = ["system", "video_id", "class", "clip_path", "wav_path", "vocoder", "checkpoint",
                "source_video", "duration_s", "windows", "deviations"]


@dataclass
class ClipRecord:
    system: str
    video_id: str
    class_name: str
    clip_path: Path
    wav_path: Path
    vocoder: str = ""
    checkpoint: str = ""
    source_video: str = ""
    duration_s: float = float("nan")
    windows: str = ""
    # How the system that made the clip departs from the paper's (regnet.deviations; '; '-joined).
    deviations: str = ""


def read_clips(path: str | Path, check_files: bool = True) -> list[ClipRecord]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: clip manifest not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in ("system", "video_id", "clip_path") if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise UserError(f"{path}: no clips listed")
    base = path.parent
    out = []
    for r in df.to_dict("records"):
        clip = _abs(base, r["clip_path"])
        wav = _abs(base, r.get("wav_path") or "") if r.get("wav_path") else clip
        if check_files:
            for p in (clip, wav):
                if not p.is_file():
                    raise UserError(f"{path}: clip file {p} (video {r['video_id']}) does not exist")
        dur = r.get("duration_s", "")
        out.append(ClipRecord(system=r["system"], video_id=r["video_id"],
                              class_name=r.get("class", "") or "all", clip_path=clip, wav_path=wav,
                              vocoder=r.get("vocoder", ""), checkpoint=r.get("checkpoint", ""),
                              source_video=r.get("source_video", ""),
                              duration_s=float(dur) if dur not in ("", None) else float("nan"),
                              windows=r.get("windows", ""), deviations=r.get("deviations", "")))
    return out


def earlier_clips(out_dir: str | Path, system: str) -> dict[str, ClipRecord]:
    """The clips an earlier run left in ``out_dir`` (its clips.csv), by video id, for a run of
    ``system`` to keep and merge with. A folder holds one system: one that holds another is refused,
    since writing there would replace that system's files."""
    path = Path(out_dir) / "clips.csv"
    if not path.is_file():
        return {}
    try:
        rows = read_clips(path, check_files=False)
    except UserError as e:
        raise UserError(f"{path}: an earlier clip manifest that cannot be read ({e}); "
                        "move it away or choose another --out") from None
    others = sorted({r.system for r in rows} - {system})
    if others:
        raise UserError(f"{path}: holds clips of system '{others[0]}', not '{system}'; choose another --out")
    return {r.video_id: r for r in rows if r.clip_path.is_file() and r.wav_path.is_file()}


def write_clips(path: str | Path, clips: list[ClipRecord]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    rows = []
    for c in clips:
        d = asdict(c)
        d["class"] = d.pop("class_name")
        for k in ("clip_path", "wav_path"):
            d[k] = _rel(base, Path(d[k]))
        rows.append(d)
    pd.DataFrame(rows, columns=CLIP_COLUMNS).to_csv(path, index=False)


def _abs(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else base / q


def _rel(base: Path, p: Path) -> str:
    try:
        return str(p.resolve().relative_to(base))
    except ValueError:
        return str(p.resolve())
