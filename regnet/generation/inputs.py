"""What to generate for: a folder of videos or a dataset manifest, as a list of `VideoItem`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from regnet.data.manifest import read_manifest
from regnet.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


@dataclass
class VideoItem:
    video_id: str
    class_name: str
    video_path: Path


def list_videos(videos: str | Path, split: str | None = None, default_class: str = "all") -> list[VideoItem]:
    """``videos`` is a folder (every video file in it; id = file stem, class = ``default_class``) or a
    manifest.csv (its rows, optionally only ``split``)."""
    src = Path(videos)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        if not files:
            raise UserError(f"{src}: no video files ({', '.join(VIDEO_SUFFIXES)})")
        seen: dict[str, Path] = {}
        for p in files:
            if p.stem in seen:
                raise UserError(f"{p}: same video id '{p.stem}' as {seen[p.stem].name}")
            seen[p.stem] = p
        return [VideoItem(p.stem, default_class, p) for p in files]
    if src.suffix.lower() == ".csv" or src.is_file():
        rows = read_manifest(src)
        if split is not None:
            rows = [r for r in rows if r.split == split]
            if not rows:
                raise UserError(f"{src}: no videos in split '{split}'")
        return [VideoItem(r.video_id, r.class_name, r.video_path) for r in rows]
    raise UserError(f"{src}: neither a folder of videos nor a manifest.csv")
