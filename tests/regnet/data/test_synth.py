"""The synthetic benchmark: real mp4s with known events, deterministic from the seed."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from regnet.cli import main
from regnet.config import preset
from regnet.data.audio import load_audio
from regnet.data.extract import extract_video
from regnet.data.manifest import read_manifest
from regnet.data.synth import SynthConfig, make_synth, make_video
from regnet.data.video import probe

SMALL = dict(classes=("strike", "flash", "mouth"), n_per_class=2, seconds=1.6, size=(64, 64))


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "a"
    rows = make_synth(root, SynthConfig(seed=7, **SMALL))
    return root, rows


def test_layout_and_manifest(bench):
    root, rows = bench
    assert [r.video_id for r in rows] == ["strike_000", "strike_001", "flash_000", "flash_001",
                                          "mouth_000", "mouth_001"]
    back = read_manifest(root / "manifest.csv")
    assert {r.split for r in back} == {"train", "test"}
    for r in back:
        assert r.video_path.is_file() and r.clean_path.is_file() and r.events_path.is_file()
        info = probe(r.video_path)
        assert info.has_audio and info.size == (64, 64)
        ev = json.loads(r.events_path.read_text())
        assert ev["video_id"] == r.video_id and ev["class"] == r.class_name and ev["events"]
        assert ev["irrelevant"] == {"kind": "gauss", "sigma": 0.1}
    # Every second video (index 1) is shorter than the clip, so padding is exercised.
    short = [r for r in back if r.duration_s < 0.85 * 1.6]
    assert [r.video_id for r in short] == ["strike_001", "flash_001", "mouth_001"]


def test_sound_happens_at_the_events(bench):
    root, rows = bench
    for r in rows:
        clean, sr = sf.read(r.clean_path, dtype="float32")
        events = json.loads(r.events_path.read_text())["events"]
        for e in events:
            i = int(e["time_s"] * sr)
            after = np.sqrt(np.mean(clean[i:i + int(0.05 * sr)] ** 2))
            before = np.sqrt(np.mean(clean[max(0, i - int(0.12 * sr)):i - int(0.01 * sr)] ** 2))
            assert after > 0.05 and after > 5 * before, (r.video_id, e)
        # The mp4's sound is the clean track plus Gaussian noise of σ≈0.1 (through AAC).
        mixed = load_audio(r.video_path, sr)
        n = min(len(mixed), len(clean))
        assert 0.07 < np.std(mixed[:n] - clean[:n]) < 0.13


def test_events_are_visible(bench):
    """The picture changes most around the events (features differ there from before)."""
    root, rows = bench
    r = next(r for r in rows if r.class_name == "flash")
    cfg = preset("tiny").data
    cfg.clip_seconds = 1.6
    f = extract_video(r.video_path, cfg)
    ev = json.loads(r.events_path.read_text())["events"][0]
    k = int(round(ev["time_s"] * cfg.fps))
    change = np.abs(np.diff(f.rgb[:, :768], axis=0)).mean(axis=1)
    assert change[k - 1:k + 1].max() > 5 * np.median(change)


def test_deterministic_from_seed(bench, tmp_path):
    root, _ = bench
    make_synth(tmp_path / "b", SynthConfig(seed=7, **SMALL))
    assert _digests(root) == _digests(tmp_path / "b")  # byte for byte, mp4s included
    make_synth(tmp_path / "c", SynthConfig(seed=8, **SMALL))
    other = _digests(tmp_path / "c")
    assert other["clean/strike_000.wav"] != _digests(root)["clean/strike_000.wav"]


@pytest.mark.parametrize("kind", ["other-class", "speech", "none"])
def test_irrelevant_kinds(kind):
    scfg = SynthConfig(seed=3, irrelevant=kind, size=(64, 64))
    v = make_video("strike", np.random.default_rng(0), scfg, 2.0)
    extra = v.mixed - v.clean
    if kind == "none":
        assert not extra.any()
        return
    assert np.abs(extra).max() > 0.05
    if kind == "other-class":
        assert v.irrelevant["class"] in ("flash", "mouth")
        for e in v.irrelevant["events"]:  # never at a visible event
            assert all(abs(e["time_s"] - x["time_s"]) > 0.25 for x in v.events)
        assert v.irrelevant["events"]


def test_synth_cli(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--seed", "1", "--classes", "flash", "--n-per-class", "1",
                 "--seconds", "1", "--size", "48x32", "--irrelevant", "speech"]) == 0
    assert str(out / "manifest.csv") in capsys.readouterr().out
    assert probe(out / "videos" / "flash_000.mp4").size == (48, 32)
    assert json.loads((out / "synth.json").read_text())["irrelevant"] == "speech"
    assert main(["synth", "--out", str(out), "--classes", "dog"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --classes: unknown class dog "
                                               "(choose from strike, flash, mouth)")
    assert main(["synth", "--out", str(out), "--size", "31x32"]) == 2
    assert "--size: 31x32" in capsys.readouterr().err
