"""Clip manifests: ``clips.csv`` per system (docs/architecture.md).

Columns: ``system, video_id, class, clip_path, wav_path, vocoder, checkpoint, source_video,
duration_s, windows``. ``clip_path`` is an mp4 (original picture + the system's sound), ``wav_path`` the
sound alone at 22,050 Hz. Relative paths are relative to the clips.csv folder. Written by
`generate` and `import-clips`; read by `evaluate`, `build-study` and the simulated raters.
``windows`` (written by `generate`) lists the spans of the source, ``start-stop;...`` in seconds,
that went through the model one window of its clip length at a time. ``deviations`` (written by
`generate`) says how the system departs from the paper's (`regnet.deviations`), empty for the paper's.
``clip_seconds``, ``sample_rate`` and ``feature_config_hash`` record the data config the clips were
made with (`generate`: the checkpoint's, and the hash of the features it was trained on, as
`regnet.data.extract` writes it; `import-clips`: the config used to import them): `evaluate` and
`build-study` read the clip length from here. A file written before these columns has them empty
(`ClipSettings` of None / ""), and its readers fall back to what they inferred before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from regnet.errors import UserError

CLIP_COLUMNS = ["system", "video_id", "class", "clip_path", "wav_path", "vocoder", "checkpoint",
                "source_video", "duration_s", "windows", "deviations", "clip_seconds", "sample_rate",
                "feature_config_hash"]


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
    # The data config the clip was made with (None / "": a clips.csv written before they were recorded).
    clip_seconds: float | None = None
    sample_rate: int | None = None
    feature_config_hash: str = ""


@dataclass(frozen=True)
class ClipSettings:
    """What a clips.csv records of the data config its clips were made with; None / "" where it
    records nothing (a file written before these columns)."""

    clip_seconds: float | None = None
    sample_rate: int | None = None
    feature_config_hash: str = ""


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
        settings = _row_settings(path, r)
        out.append(ClipRecord(system=r["system"], video_id=r["video_id"],
                              class_name=r.get("class", "") or "all", clip_path=clip, wav_path=wav,
                              vocoder=r.get("vocoder", ""), checkpoint=r.get("checkpoint", ""),
                              source_video=r.get("source_video", ""),
                              duration_s=float(dur) if dur not in ("", None) else float("nan"),
                              windows=r.get("windows", ""), deviations=r.get("deviations", ""),
                              clip_seconds=settings.clip_seconds, sample_rate=settings.sample_rate,
                              feature_config_hash=settings.feature_config_hash))
    return out


def _row_settings(path: Path, r: dict) -> ClipSettings:
    seconds, rate = (r.get("clip_seconds") or "").strip(), (r.get("sample_rate") or "").strip()
    try:
        return ClipSettings(float(seconds) if seconds else None, int(float(rate)) if rate else None,
                            (r.get("feature_config_hash") or "").strip())
    except ValueError:
        raise UserError(f"{path}: video {r['video_id']}: clip_seconds {seconds!r} / sample_rate {rate!r} "
                        "is not a number") from None


def clip_settings(path: str | Path, rows: list[ClipRecord] | None = None) -> ClipSettings:
    """The settings a clips.csv records (``rows``: its records, when already read). Rows recording
    different clip lengths or rates (an earlier run's clips kept next to a new config's) are
    refused; different feature hashes are '; '-joined."""
    rows = read_clips(path, check_files=False) if rows is None else rows
    seconds = sorted({r.clip_seconds for r in rows if r.clip_seconds is not None})
    rates = sorted({r.sample_rate for r in rows if r.sample_rate is not None})
    for name, values in (("clip_seconds", seconds), ("sample_rate", rates)):
        if len(values) > 1:
            raise UserError(f"{path}: its clips record {name} {values[0]:g} and {values[1]:g} (made with "
                            "different data configs); make them again with one")
    hashes = sorted({r.feature_config_hash for r in rows if r.feature_config_hash})
    return ClipSettings(seconds[0] if seconds else None, rates[0] if rates else None, "; ".join(hashes))


def agreed_settings(paths: list[str | Path], why: str = "") -> ClipSettings:
    """The clip length and sample rate that the clips.csv files record, the same in all that record
    one (None: none does). Two that differ are a one-line `UserError` naming both, ending with
    ``why``. The feature hash may differ between systems (not all are RegNet) and is left ""."""
    first: dict[str, tuple[Path, float | int]] = {}
    for p in paths:
        s = clip_settings(p)
        for name, value in (("clip_seconds", s.clip_seconds), ("sample_rate", s.sample_rate)):
            if value is None:
                continue
            if name not in first:
                first[name] = (Path(p), value)
            elif first[name][1] != value:
                q, other = first[name]
                raise UserError(f"{q} records {name} {other:g} but {p} records {value:g}"
                                + (f"; {why}" if why else ""))
    return ClipSettings(first["clip_seconds"][1] if "clip_seconds" in first else None,
                        int(first["sample_rate"][1]) if "sample_rate" in first else None)


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
        for k in ("clip_seconds", "sample_rate"):  # unknown: an empty cell, as an old file reads
            d[k] = "" if d[k] is None else d[k]
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
