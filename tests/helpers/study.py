"""Shared helpers for the mturk tests: tiny real mp4 clips (ffmpeg lavfi, ~40 ms each) and clip
manifests for three systems. Imported by the other test_mturk_* files; holds no tests itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from mturk.media import ffmpeg_exe

SYSTEMS = ("regnet", "baseline", "real")
FREQS = {"regnet": 440, "baseline": 660, "real": 880}


def make_clip(path: Path, color: str, freq: int, seconds: float = 0.4, audio: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
           f"color=c={color}:s=64x48:d={seconds}:r=10"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=f={freq}:d={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest", str(path)]
    subprocess.run(cmd, check=True)
    return path


def make_manifests(root: Path, n_videos: int = 6, classes=("dog", "drum"), systems=SYSTEMS) -> list[Path]:
    """One clips.csv per system; videos v0..vN alternate classes. Clips of one system share a file
    per video colour to keep this fast (each system still has its own paths)."""
    colors = ["red", "green", "blue", "yellow", "white", "gray", "cyan", "magenta"]
    paths = []
    for s in systems:
        rows = []
        for i in range(n_videos):
            make_clip(root / s / f"v{i}.mp4", colors[i % len(colors)], FREQS.get(s, 500) + 10 * i)
            rows.append({"system": s, "video_id": f"v{i}", "class": classes[i % len(classes)],
                         "clip_path": f"v{i}.mp4", "wav_path": f"v{i}.mp4"})
        p = root / s / "clips.csv"
        pd.DataFrame(rows).to_csv(p, index=False)
        paths.append(p)
    return paths


def build_small_study(clips: list[Path], out: Path, **kw):
    from mturk.trials import StudyOptions, build_study

    opts = dict(seed=7, trials_per_hit=3, name="pilot")
    opts.update(kw)
    return build_study(clips, out, StudyOptions(**opts))


def stubbed_client(service: str = "mturk"):
    """A real botocore client with dummy keys; the caller wraps it in a Stubber, so nothing leaves."""
    import boto3

    from mturk.client import SANDBOX_URL

    session = boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="secret",
                                    region_name="us-east-1")
    return session.client(service, endpoint_url=SANDBOX_URL if service == "mturk" else None)
