"""Finding, for each clip, what it is measured against.

A clip is matched to its reference by ``video_id`` (the clips.csv ``source_video`` is tried too:
as a manifest video_id, as a path equal to a manifest ``video_path``, or by its file stem).

- ``real``: the real sound: a clip of the real system (named ``real`` unless told otherwise) for the same video among the given
  clips.csv files (what raters hear), else the manifest's ``audio_path``, else the audio stream of
  its ``video_path``.
- ``clean``: the synthetic benchmark's clean relevant track (manifest ``clean_path``).

Onset reference: ``events`` = the exact event times in the manifest's ``events_path`` json
(``{"events": [{"time_s", "class"}]}``), ``audio`` = onsets detected in the reference sound,
``auto`` = events where the manifest has them, else audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regnet.clips import ClipRecord
from regnet.data.manifest import ManifestRow
from regnet.errors import UserError

REAL_SYSTEM = "real"
REFERENCES = ("real", "clean")
ONSET_REFERENCES = ("auto", "events", "audio")


@dataclass(frozen=True)
class Reference:
    video_id: str
    class_name: str
    audio_path: Path
    source: str  # "real clip", "manifest audio", "manifest video", "clean track"
    events_path: Path | None = None


class ReferenceIndex:
    """Looks up references for clips from the real-system clips and the dataset manifest."""

    def __init__(self, clips: list[ClipRecord], manifest: list[ManifestRow] | None,
                 real_system: str = REAL_SYSTEM):
        self.real_system = real_system
        self.real = {c.video_id: c for c in clips if c.system.lower() == real_system.lower()}
        self.by_id = {r.video_id: r for r in manifest or []}
        self.by_path = {str(Path(r.video_path).resolve()): r for r in manifest or []}

    def manifest_row(self, clip: ClipRecord) -> ManifestRow | None:
        if clip.video_id in self.by_id:
            return self.by_id[clip.video_id]
        src = (clip.source_video or "").strip()
        if not src:
            return None
        if src in self.by_id:
            return self.by_id[src]
        hit = self.by_path.get(str(Path(src).resolve()))
        return hit or self.by_id.get(Path(src).stem)

    def reference(self, clip: ClipRecord, kind: str) -> Reference:
        """The reference of ``clip``; a UserError says why there is none (the clip is skipped)."""
        row = self.manifest_row(clip)
        events = row.events_path if row else None
        cls = clip.class_name if clip.class_name not in ("", "all") or not row else row.class_name
        if kind == "clean":
            if row is None:
                raise UserError(f"video {clip.video_id}: not in the manifest (needed for --reference clean)")
            if row.clean_path is None:
                raise UserError(f"video {clip.video_id}: manifest has no clean_path "
                                "(the clean track exists for the synthetic benchmark)")
            return Reference(clip.video_id, cls, row.clean_path, "clean track", events)
        real = self.real.get(clip.video_id)
        if real is not None:
            return Reference(clip.video_id, cls, real.wav_path, "real clip", events)
        if row is not None and row.audio_path is not None:
            return Reference(clip.video_id, cls, row.audio_path, "manifest audio", events)
        if row is not None:
            return Reference(clip.video_id, cls, row.video_path, "manifest video", events)
        raise UserError(f"video {clip.video_id}: no real sound (no '{self.real_system}' clip and not in a manifest)")


def read_event_times(path: Path) -> np.ndarray:
    """Sorted event times (s) from a synthetic-benchmark events json."""
    if not Path(path).is_file():
        raise UserError(f"{path}: events file not found")
    try:
        data = json.loads(Path(path).read_text())
        times = [float(e["time_s"]) for e in data["events"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not an events file ({type(e).__name__}: {e})") from None
    return np.sort(np.asarray(times, dtype=float))
