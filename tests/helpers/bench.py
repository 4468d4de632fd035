"""A tiny objective benchmark on disk for the `evaluate` tests: three videos whose clean tracks are
noise bursts at known event times, and the clips.csv of four systems. Its ``bench`` fixture is served
to every test by tests/conftest.py (``pytest_plugins``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.helpers.media import SR, bursts

VIDEOS = {"v1": [0.3, 0.8, 1.3], "v2": [0.5, 1.0, 1.6], "v3": [0.2, 0.9, 1.5]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """A tiny benchmark: clean track = bursts at the events; real = clean + noise; systems
    'good' (the clean track), 'late' (200 ms late) and 'mute' (silence)."""
    root = tmp_path_factory.mktemp("bench")
    for d in ("clean", "events", "real", "good", "late", "mute"):
        (root / d).mkdir()
    man, systems = [], {s: [] for s in ("real", "good", "late", "mute")}
    for k, (vid, ev) in enumerate(VIDEOS.items()):
        clean = bursts(ev, seed=k)
        sf.write(root / "clean" / f"{vid}.wav", clean, SR)
        (root / "events" / f"{vid}.json").write_text(json.dumps(
            {"video_id": vid, "class": "hit", "events": [{"time_s": t, "class": "hit"} for t in ev]}))
        waves = {"real": clean + bursts([], seed=k, noise=0.02), "good": clean,
                 "late": bursts(np.array(ev) + 0.2, seed=k), "mute": np.zeros_like(clean)}
        for s, w in waves.items():
            sf.write(root / s / f"{vid}.wav", w, SR)
            systems[s].append({"system": s, "video_id": vid, "class": "hit",
                               "clip_path": f"{vid}.wav", "wav_path": f"{vid}.wav", "duration_s": 2.0})
        man.append({"video_id": vid, "class": "hit", "split": "test", "video_path": f"videos/{vid}.mp4",
                    "audio_path": f"real/{vid}.wav", "duration_s": 2.0,
                    "clean_path": f"clean/{vid}.wav", "events_path": f"events/{vid}.json"})
    pd.DataFrame(man).to_csv(root / "manifest.csv", index=False)
    for s, rows in systems.items():
        pd.DataFrame(rows).to_csv(root / s / "clips.csv", index=False)
    return root


def bench_clips(root: Path, *systems: str) -> list[Path]:
    """The clips.csv of each named system of the ``bench`` at ``root``."""
    return [root / s / "clips.csv" for s in systems]
