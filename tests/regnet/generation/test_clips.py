"""`generate` and `import-clips` end to end on the synthetic benchmark (tiny model, 2 s clips)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from regnet.cli import main
from regnet.clips import read_clips
from regnet.config import preset
from regnet.data.audio import load_audio
from regnet.data.manifest import read_manifest
from regnet.data.video import ffmpeg_exe, probe
from regnet.generation import generate_clips
from regnet.models import RegNet
from regnet.train.checkpoint import save_checkpoint


def _checkpoint(path: Path, class_name: str = "strike", **model_overrides) -> Path:
    cfg = preset("tiny")
    for k, v in model_overrides.items():
        setattr(cfg.model, k, v)
    torch.manual_seed(0)
    # An untrained generator is enough: these tests check the plumbing, not the sound's quality.
    # Its output sits near 0 (= -100 dB, silence), so the post-net's last bias lifts it to about
    # -40 dB: the "not silent" check then tests the path, not the weights.
    model = RegNet(cfg)
    with torch.no_grad():
        model.state_dict()["postnet.convolutions.4.1.bias"].fill_(0.6)
    save_checkpoint(path, cfg, model, None, class_name=class_name)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    assert main(["-q", "synth", "--out", str(root / "synth"), "--classes", "strike", "--n-per-class", "2",
                 "--size", "64x64", "--seconds", "2"]) == 0
    ck = _checkpoint(root / "regnet.pt")
    rc = main(["-q", "generate", "--checkpoint", str(ck), "--videos", str(root / "synth" / "manifest.csv"),
               "--out", str(root / "out"), "--features", str(root / "features")])
    assert rc == 0
    return root


def test_generated_mp4_has_picture_and_sound_of_the_source_length(run):
    rows = {r.video_id: r for r in read_manifest(run / "synth" / "manifest.csv")}
    clips = read_clips(run / "out" / "clips.csv")
    assert sorted(c.video_id for c in clips) == sorted(rows)
    durations = set()
    for c in clips:
        src = probe(rows[c.video_id].video_path)
        info = probe(c.clip_path)
        assert info.has_video and info.has_audio
        assert abs(info.duration_s - src.duration_s) <= 1.0 / src.fps
        durations.add(round(src.duration_s, 2))
        sound = load_audio(c.clip_path, 22050)
        assert np.sqrt(np.mean(sound ** 2)) > 1e-3  # not silent
        wav, sr = sf.read(c.wav_path)
        assert sr == 22050 and abs(len(wav) / sr - src.duration_s) <= 1.0 / src.fps
        assert c.system == "regnet" and c.vocoder == "griffin-lim" and c.class_name == "strike"
    assert len(durations) == 2  # a shorter source (synth makes one) is cut back, not padded


def test_rerun_keeps_existing_clips_and_overwrite_remakes_them(run):
    mp4 = run / "out" / "clips" / "strike_001.mp4"
    before = mp4.stat().st_mtime_ns
    ck = run / "regnet.pt"
    manifest = run / "synth" / "manifest.csv"
    report = generate_clips(ck, manifest, run / "out", features_dir=run / "features")
    assert sorted(report.reused) == ["strike_000", "strike_001"] and not report.generated
    assert mp4.stat().st_mtime_ns == before
    report = generate_clips(ck, manifest, run / "out", split="test", overwrite=True, features_dir=run / "features")
    assert report.generated == ["strike_001"]
    assert mp4.stat().st_mtime_ns != before
    assert len(read_clips(run / "out" / "clips.csv")) == 2  # the other video's row is kept


def test_bad_videos_are_listed_and_the_rest_go_on(run, tmp_path, caplog):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(run / "synth" / "videos" / "strike_001.mp4", videos / "good.mp4")
    (videos / "empty.mp4").write_bytes(b"")
    # A file with sound and no picture.
    sf.write(tmp_path / "tone.wav", 0.1 * np.sin(np.arange(22050) / 10.0), 22050)
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(tmp_path / "tone.wav"), "-c:a", "aac",
                    str(videos / "soundonly.mp4")], check=True)
    report = generate_clips(run / "regnet.pt", videos, tmp_path / "out")
    assert report.generated == ["good"]
    failed = dict(report.failed)
    assert set(failed) == {"empty", "soundonly"}
    assert "empty.mp4" in failed["empty"] and "soundonly.mp4" in failed["soundonly"]
    assert [c.video_id for c in read_clips(tmp_path / "out" / "clips.csv")] == ["good"]


def test_checkpoint_not_matching_the_features_names_the_file(run, tmp_path):
    ck = _checkpoint(tmp_path / "wide.pt", visual_dim=100)
    report = generate_clips(ck, run / "synth" / "manifest.csv", tmp_path / "out", split="test",
                            features_dir=run / "features")
    assert not report.generated and report.clips_csv is None
    (vid, why), = report.failed
    assert "strike_001.mp4" in why and "100" in why


def test_cli_errors_are_one_line(run, tmp_path, capsys):
    rc = main(["generate", "--checkpoint", str(tmp_path / "missing.pt"), "--videos",
               str(run / "synth" / "manifest.csv"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "missing.pt" in err and "\n" not in err
    other = _checkpoint(tmp_path / "dog.pt", class_name="dog")
    rc = main(["generate", "--checkpoint", str(other), "--videos", str(run / "synth" / "manifest.csv"),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "manifest.csv" in err and "dog" in err


def test_import_clips_round_trips(run, tmp_path):
    src = tmp_path / "theirs"
    src.mkdir()
    for w in (run / "out" / "wav").glob("*.wav"):
        shutil.copy(w, src / w.name)
    # A wav at another rate is refused by name; the others are imported.
    sf.write(src / "strike_x.wav", np.zeros(1600), 16000)
    manifest = run / "synth" / "manifest.csv"
    rc = main(["-q", "import-clips", "--system", "baseline", str(src), "--out", str(tmp_path / "imp"),
               "--manifest", str(manifest), "--preset", "tiny"])
    assert rc == 1  # something was skipped
    clips = {c.video_id: c for c in read_clips(tmp_path / "imp" / "clips.csv")}
    original = {c.video_id: c for c in read_clips(run / "out" / "clips.csv")}
    assert set(clips) == set(original)
    for vid, c in clips.items():
        assert c.system == "baseline" and c.class_name == "strike"
        a, _ = sf.read(c.wav_path, dtype="int16")
        b, _ = sf.read(original[vid].wav_path, dtype="int16")
        assert np.array_equal(a, b)
        info = probe(c.clip_path)
        assert info.has_video and info.has_audio
        assert abs(info.duration_s - original[vid].duration_s) <= 1.0 / 21.5
    # Read back and written again, the manifest is the same.
    (tmp_path / "imp" / "clips.csv").rename(tmp_path / "imp" / "first.csv")
    (src / "strike_x.wav").unlink()
    assert main(["-q", "import-clips", "--system", "baseline", str(src), "--out", str(tmp_path / "imp"),
                 "--manifest", str(manifest), "--preset", "tiny"]) == 0
    assert (tmp_path / "imp" / "clips.csv").read_text() == (tmp_path / "imp" / "first.csv").read_text()


def test_import_clips_wrong_rate_error_and_resample(tmp_path, capsys):
    src = tmp_path / "w"
    src.mkdir()
    sf.write(src / "a.wav", 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
    rc = main(["import-clips", "--system", "x", str(src), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "a.wav" in err and "16000" in err
    assert main(["-q", "import-clips", "--system", "x", str(src), "--out", str(tmp_path / "o"), "--resample"]) == 0
    (c,) = read_clips(tmp_path / "o" / "clips.csv")
    assert sf.info(str(c.wav_path)).samplerate == 22050 and c.duration_s == pytest.approx(1.0, abs=1e-3)


def test_import_real_packages_each_videos_own_sound(run, tmp_path):
    manifest = run / "synth" / "manifest.csv"
    assert main(["-q", "import-clips", "--system", "real", "--manifest", str(manifest), "--out",
                 str(tmp_path / "real"), "--preset", "tiny"]) == 0
    rows = {r.video_id: r for r in read_manifest(manifest)}
    for c in read_clips(tmp_path / "real" / "clips.csv"):
        assert c.system == "real"
        own = load_audio(rows[c.video_id].video_path, 22050)
        got, _ = sf.read(c.wav_path, dtype="float32")
        n = len(got)
        assert abs(n / 22050 - probe(rows[c.video_id].video_path).duration_s) <= 1 / 21.5
        assert np.max(np.abs(got - own[:n])) < 1e-3  # 16-bit rounding only


def test_generate_with_a_wavenet_vocoder_records_it(run, tmp_path):
    from regnet.vocoder.checkpoint import save_vocoder
    from regnet.vocoder.wavenet import WaveNet

    cfg = preset("tiny")
    cfg.vocoder.layers, cfg.vocoder.stacks = 2, 1  # sampling 27,562 steps: the fewer layers the better
    torch.manual_seed(0)
    voc = tmp_path / "wavenet_strike.pt"
    save_vocoder(voc, WaveNet(cfg.vocoder), cfg.data, "strike", 0)
    report = generate_clips(run / "regnet.pt", run / "synth" / "manifest.csv", tmp_path / "out", vocoder=voc,
                            split="test", features_dir=run / "features")
    assert report.generated == ["strike_001"] and report.vocoder == f"wavenet:{voc}"
    (c,) = read_clips(tmp_path / "out" / "clips.csv")
    assert c.vocoder == f"wavenet:{voc}"
    info = probe(c.clip_path)
    assert info.has_video and info.has_audio and abs(info.duration_s - 1.25) <= 1 / 21.5
    wav, _ = sf.read(c.wav_path)
    assert np.std(wav) > 1e-3  # a random WaveNet makes noise, not silence


def _settings(path):
    return {(c.clip_seconds, c.sample_rate, c.feature_config_hash) for c in read_clips(path)}


def test_clips_csv_records_clip_length_rate_and_feature_hash(run, tmp_path):
    d = preset("tiny").data
    # generate: the checkpoint's data config (its clips are cut to their sources, shorter than 2 s)
    assert _settings(run / "out" / "clips.csv") == {(2.0, 22050, d.cache_hash())}
    # import-clips (another system) and import real: the data config used to import them
    src = tmp_path / "theirs"
    src.mkdir()
    for w in (run / "out" / "wav").glob("*.wav"):
        shutil.copy(w, src / w.name)
    manifest = run / "synth" / "manifest.csv"
    assert main(["-q", "import-clips", "--system", "other", str(src), "--out", str(tmp_path / "imp"),
                 "--manifest", str(manifest), "--preset", "tiny"]) == 0
    assert _settings(tmp_path / "imp" / "clips.csv") == {(2.0, 22050, d.cache_hash())}
    assert main(["-q", "import-clips", "--system", "real", "--manifest", str(manifest), "--out",
                 str(tmp_path / "real"), "--preset", "tiny", "--set", "data.clip_seconds=1.5"]) == 0
    d.clip_seconds = 1.5
    assert _settings(tmp_path / "real" / "clips.csv") == {(1.5, 22050, d.cache_hash())}
