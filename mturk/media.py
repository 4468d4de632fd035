"""The files in a study's ``media/`` folder: clips linked or copied under opaque names, and the
derived clips the checks need (picture without sound; picture with another video's sound).

Derived clips are stream copies made by ffmpeg (no re-encoding), so they are fast and keep the
codec of the source clip. A job with a gain (loudness normalisation, mturk/loudness.py) keeps the
picture as a stream copy and re-encodes only the sound, through the generator's own muxer
(`regnet.generation.media.mux`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from regnet.atomic import atomic_path
from regnet.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaJob:
    """How to make ``name``: op is ``link`` (the clip itself), ``silent`` (drop the audio) or
    ``mux`` (picture of ``source``, sound of ``audio_from``). With ``gain_db`` the sound (of
    ``audio_from``, or of ``source`` for ``link``) is scaled by that gain and re-encoded."""

    name: str
    op: str
    source: Path
    audio_from: Path | None = None
    gain_db: float | None = None


def opaque_name(salt: str, *parts: str, suffix: str = ".mp4") -> str:
    """A name that reveals nothing about system or video but is stable for a given study seed."""
    digest = hashlib.sha256("\x1f".join((salt,) + parts).encode()).hexdigest()[:20]
    return f"{digest}{suffix}"


def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise UserError("ffmpeg: not found (install ffmpeg or the imageio-ffmpeg package)") from None


def make_media(jobs: list[MediaJob], media_dir: Path) -> None:
    media_dir.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not (media_dir / j.name).exists()]
    for job in todo:
        if job.op == "link" and job.gain_db is None:
            try:
                os.link(job.source, media_dir / job.name)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(job.source, media_dir / job.name)
    derived = [j for j in todo if j.op != "link" or j.gain_db is not None]
    if derived:
        exe = ffmpeg_exe()
        # Each call is a short stream copy dominated by process start-up: run a few at once.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda j: _derive(exe, j, media_dir / j.name), derived))
    log.info("media: %d file(s) in %s", len(jobs), media_dir)


def _derive(exe: str, job: MediaJob, out: Path) -> None:
    if job.op not in ("silent", "mux", "link"):
        raise ValueError(job.op)
    if job.gain_db is not None and job.op != "silent":
        _normalised(job, out)
        return
    # The temp file keeps the .mp4 suffix: ffmpeg picks the container by extension.
    with atomic_path(out, suffix=out.suffix) as tmp:
        if job.op == "silent":
            cmd = [exe, "-y", "-loglevel", "error", "-i", str(job.source), "-map", "0:v:0", "-c", "copy",
                   "-an", str(tmp)]
        else:
            cmd = [exe, "-y", "-loglevel", "error", "-i", str(job.source), "-i", str(job.audio_from),
                   "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-shortest", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise UserError(f"{job.source}: ffmpeg could not make a check clip ({last})")


def _normalised(job: MediaJob, out: Path) -> None:
    """Picture of ``job.source`` (stream copy) + the sound of ``audio_from or source`` times the gain."""
    import tempfile

    from mturk.loudness import apply_gain
    from regnet.data.video import probe
    from regnet.generation.media import mux

    sound = job.audio_from or job.source
    fd, wav = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        seconds = apply_gain(sound, float(job.gain_db), Path(wav))
        # A clip's own sound is as long as its picture; another video's sound is cut to the picture.
        picture = probe(job.source).duration_s if job.audio_from is not None else None
        mux(job.source, wav, out, min(seconds, picture) if picture else seconds)
    finally:
        os.unlink(wav)
