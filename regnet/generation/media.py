"""Writing a system's sound: a 16-bit wav, and an mp4 with the source picture and that sound.

Muxing calls the ffmpeg binary that ships with imageio-ffmpeg (the one moviepy 2 drives) directly:
the picture is stream-copied, so it stays bit-identical to the source and nothing is re-encoded;
only a source whose codec mp4 cannot carry is re-encoded with libx264. Both streams are cut to
the same length, so the clip is as long as the source video (the model's padding removed).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from regnet.data.video import _last_line, ffmpeg_exe
from regnet.atomic import atomic_path
from regnet.errors import UserError

log = logging.getLogger(__name__)

def write_wav(path: str | Path, wav: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM (the vocoder's resolution), written atomically."""
    with atomic_path(path, ".wav.tmp") as tmp:
        sf.write(tmp, np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), int(sample_rate),
                 subtype="PCM_16", format="WAV")
    return path


def mux(video: str | Path, wav: str | Path, out: str | Path, duration_s: float) -> Path:
    """``out`` (mp4) = the first ``duration_s`` seconds of ``video``'s picture + ``wav``."""
    video, wav, out = Path(video), Path(wav), Path(out)
    with atomic_path(out, ".mp4") as tmp:
        err = _run_mux(video, wav, str(tmp), duration_s, copy_video=True)
        if err is not None:
            log.info("%s: picture cannot be stream-copied into mp4 (%s); re-encoding", video, err)
            err = _run_mux(video, wav, str(tmp), duration_s, copy_video=False)
        if err is not None:
            raise UserError(f"{video}: cannot write {out.name} ({err})")
    return out


def _run_mux(video: Path, wav: Path, out: str, duration_s: float, copy_video: bool) -> str | None:
    vcodec = ["-c:v", "copy"] if copy_video else ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
                                                  "-preset", "veryfast"]
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video), "-i", str(wav),
           "-map", "0:v:0", "-map", "1:a:0", *vcodec, "-c:a", "aac", "-b:a", "128k",
           "-t", f"{duration_s:.6f}", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", out]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        return _last_line(proc.stderr.decode(errors="replace"))
    return None
