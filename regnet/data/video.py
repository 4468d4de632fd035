"""Video ingest: probe a file, decode its frames resampled to the feature rate, write mp4s.

Decoding goes through the ffmpeg binary that ships with imageio-ffmpeg (the one moviepy 2 uses), so
any container ffmpeg reads works (mp4, webm, avi, mkv, mov). Frames are resampled to ``fps`` by
nearest-timestamp picking: output step ``k`` (time ``k / fps``) takes source frame
``round(k / fps * src_fps)``. Frames are scaled to one working size on decode, as the authors do
(340x256 for both the RGB and the flow stream), which also bounds memory for large videos.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile as sf

from regnet.errors import UserError

log = logging.getLogger(__name__)
# imageio-ffmpeg warns whenever the decoded size differs from the source; scaling on decode is the
# point here, so that warning is noise.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)


@dataclass
class MediaInfo:
    """What ffmpeg says about a file before decoding it."""

    path: Path
    has_video: bool
    has_audio: bool
    fps: float | None
    size: tuple[int, int] | None  # (width, height)
    duration_s: float | None
    audio_sample_rate: int | None


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str | Path) -> MediaInfo:
    """Read stream information; a missing, empty or unreadable file is a `UserError` naming it."""
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file (0 bytes)")
    try:
        info = ffmpeg_parse_infos(str(path), check_duration=True)
    except (OSError, IndexError, ValueError, KeyError, AttributeError) as e:
        text = str(e)
        if "Input #0" in text and "Stream #" not in text:
            raise UserError(f"{path}: no video or audio streams (zero-length or empty container)") \
                from None
        raise UserError(f"{path}: not a readable video/audio file ({_last_line(text)})") from None
    fps = info.get("video_fps")
    size = info.get("video_size")
    return MediaInfo(
        path=path,
        has_video=bool(info.get("video_found")),
        has_audio=bool(info.get("audio_found")),
        fps=float(fps) if fps and math.isfinite(float(fps)) and float(fps) > 0 else None,
        size=(int(size[0]), int(size[1])) if size else None,
        duration_s=float(info["duration"]) if info.get("duration") else None,
        audio_sample_rate=int(info["audio_fps"]) if info.get("audio_fps") else None,
    )


def pick_indices(n_src: int, src_fps: float, fps: float, max_steps: int) -> np.ndarray:
    """Source frame index for each output step (nearest timestamp), at most ``max_steps`` steps.

    A step exists while its nearest source frame does, so a 1.3 s video at 30 fps yields the 28
    steps whose times fall inside it.
    """
    k = np.arange(max_steps)
    idx = np.floor(k / fps * src_fps + 0.5).astype(np.int64)
    return idx[idx < n_src]


@dataclass
class DecodedVideo:
    frames: np.ndarray  # [N, H, W, 3] uint8 at the working size, N = picked steps
    src_fps: float
    src_frames: int  # source frames read (up to what the clip needs)
    src_size: tuple[int, int]
    duration_s: float  # the source's length as far as it was read (frames / fps)
    info: MediaInfo


def read_video(path: str | Path, fps: float, max_seconds: float, size: tuple[int, int],
               info: MediaInfo | None = None) -> DecodedVideo:
    """Decode up to ``max_seconds`` of video resampled to ``fps`` and scaled to ``size`` (w, h)."""
    path = Path(path)
    info = info or probe(path)
    if not info.has_video:
        raise UserError(f"{path}: no video stream")
    src_fps = info.fps
    if not src_fps:
        raise UserError(f"{path}: frame rate unknown (ffmpeg reports none)")
    max_steps = max(1, int(round(max_seconds * fps)))
    # The last source frame any step can need; decoding stops there.
    need = int(math.floor((max_steps - 1) / fps * src_fps + 0.5)) + 1
    w, h = int(size[0]), int(size[1])
    gen = imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgb24",
        output_params=["-vf", f"scale={w}:{h}:flags=area", "-an"])
    frames: list[np.ndarray] = []
    n_src = 0
    wanted = iter(pick_indices(need, src_fps, fps, max_steps))
    next_idx = next(wanted, None)
    try:
        meta = next(gen)
        fw, fh = meta.get("size", (w, h))
        for raw in gen:
            if next_idx is not None and n_src == next_idx:
                frame = np.frombuffer(raw, dtype=np.uint8).reshape(fh, fw, 3)
                # A source frame can serve several steps when the source rate is below fps.
                while next_idx == n_src:
                    frames.append(frame)
                    next_idx = next(wanted, None)
            n_src += 1
            if n_src >= need:
                break
    except (RuntimeError, OSError, StopIteration) as e:
        if not frames:
            raise UserError(f"{path}: cannot decode video ({_last_line(str(e))})") from None
        log.warning("%s: decoding stopped early after %d frames (%s)", path, n_src, _last_line(str(e)))
    finally:
        gen.close()
    if n_src == 0:
        raise UserError(f"{path}: no video frames (zero-length video)")
    if n_src == 1:
        raise UserError(f"{path}: only one video frame (need at least 2 for optical flow)")
    # Steps computed from a nominal count may point past a short stream's real end.
    picked = pick_indices(n_src, src_fps, fps, max_steps)
    frames = frames[: len(picked)]
    return DecodedVideo(frames=np.stack(frames), src_fps=src_fps, src_frames=n_src,
                        src_size=info.size or (fw, fh), duration_s=n_src / src_fps, info=info)


def pad_steps(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Pad (or cut) a per-step sequence along axis 0 to ``n`` steps.

    'repeat' loops the sequence (the paper: short videos are repeated to the clip length);
    'zero' appends zeros (the authors' data loader).
    """
    if len(x) == 0:
        raise ValueError("cannot pad an empty sequence")
    if len(x) >= n:
        return x[:n]
    if mode == "repeat":
        reps = -(-n // len(x))
        return np.concatenate([x] * reps, axis=0)[:n]
    if mode == "zero":
        pad = np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)
        return np.concatenate([x, pad], axis=0)
    raise UserError(f"data.pad_mode: '{mode}' is not one of repeat, zero")


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int | None = None, codec: str = "libx264", pix_fmt: str = "yuv420p",
                audio_codec: str = "aac", crf: int = 18) -> Path:
    """Write frames [N, H, W, 3] uint8 (and optionally audio [S] or [S, C] float) to a video file.

    Output is bit-exact for the same input (one encoder thread, no version/time metadata), so
    `synth` is reproducible byte for byte. libx264 with yuv420p needs even sizes: pass
    ``pix_fmt='yuv444p'`` for odd ones.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3], got {frames.shape}")
    n, h, w, _ = frames.shape
    rate = Fraction(fps).limit_denominator(1001)
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{rate.numerator}/{rate.denominator}", "-i", "-"]
    tmp_wav = None
    try:
        if audio is not None:
            if not sample_rate:
                raise ValueError("sample_rate is needed with audio")
            fd, tmp_wav = tempfile.mkstemp(suffix=".wav")
            os.close(fd)
            sf.write(tmp_wav, np.clip(np.asarray(audio, dtype=np.float32), -1, 1), int(sample_rate),
                     subtype="FLOAT")
            cmd += ["-i", tmp_wav]
        cmd += ["-map", "0:v:0"] + (["-map", "1:a:0"] if audio is not None else [])
        cmd += ["-c:v", codec, "-pix_fmt", pix_fmt, "-threads", "1"]
        if codec == "libx264":
            cmd += ["-crf", str(crf), "-preset", "veryfast"]
        if audio is not None:
            cmd += ["-c:a", audio_codec]
            if audio_codec == "aac":
                cmd += ["-b:a", "128k"]
        cmd += ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                "-flags:a", "+bitexact", str(path)]
        proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {path}: "
                               f"{_last_line(proc.stderr.decode(errors='replace'))}")
    finally:
        if tmp_wav and os.path.exists(tmp_wav):
            os.unlink(tmp_wav)
    return path


def _last_line(text: str) -> str:
    # ffmpeg ends a bare probe with this line whatever went wrong; the reason is above it.
    lines = [ln.strip() for ln in text.strip().splitlines()
             if ln.strip() and "At least one output file" not in ln]
    return lines[-1][:200] if lines else "unknown error"
