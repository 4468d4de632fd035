"""Audio ingest: any file ffmpeg reads -> mono float32 at the project's sample rate.

Stereo (or more channels) is averaged to mono; other rates (44.1 kHz, 48 kHz, ...) are resampled
with librosa (soxr, high quality). Plain audio files soundfile reads (wav, flac, ogg) are read
directly; anything else (the audio track of an mp4/webm/mkv/avi) is first decoded by ffmpeg to a
temporary float wav at its own rate and channel count, so the conversion is always ours.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from regnet.data.video import _last_line, ffmpeg_exe
from regnet.errors import UserError

log = logging.getLogger(__name__)


def load_audio(path: str | Path, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate`` (at most ``max_seconds`` of it).

    A file with no audio stream is a `UserError` ("no audio track"); callers that accept silent
    videos check `probe(...).has_audio` first.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: audio file not found")
    data, sr = _read_native(path, max_seconds)
    if data.ndim == 2:
        data = data.mean(axis=1)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if sr != sample_rate and len(data):
        data = librosa.resample(data, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    if max_seconds is not None:
        data = data[: int(round(max_seconds * sample_rate))]
    return data.astype(np.float32)


def _read_native(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is not None and info.frames > 0:
        frames = -1 if max_seconds is None else int(max_seconds * info.samplerate) + 1
        data, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
        return data, int(sr)
    return _ffmpeg_decode(path, max_seconds)


def _ffmpeg_decode(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    got = decode_audio(path, max_seconds)
    if got is None:
        raise UserError(f"{path}: no audio track")
    return got


def decode_audio(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int] | None:
    """The sound of any file ffmpeg reads (its first audio stream), as float32 [samples, channels] at
    its own rate; None when it has no audio stream; a file ffmpeg cannot read is a one-line error."""
    fd, tmp = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        cmd = [ffmpeg_exe(), "-y", "-loglevel", "error"]
        if max_seconds is not None:
            # Slightly more than needed so the resampler has context at the cut.
            cmd += ["-t", f"{max_seconds + 0.05:.3f}"]
        cmd += ["-i", str(path), "-vn", "-map", "0:a:0", "-c:a", "pcm_f32le", tmp]
        proc = subprocess.run(cmd, capture_output=True)
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            if "matches no streams" in err or "does not contain any stream" in err:
                return None
            raise UserError(f"{path}: cannot decode audio ({_last_line(err)})")
        data, sr = sf.read(tmp, dtype="float32", always_2d=True)
        return data, int(sr)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
