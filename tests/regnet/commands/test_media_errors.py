"""QA regressions for the media verbs: hostile input gets one `error:` line (exit 2), never a
traceback, and nothing already stored is lost (synth, extract, generate, import-clips,
import/export-checkpoint, import-features, evaluate, fit-embedder)."""

from __future__ import annotations

import pickle
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from regnet.cli import main
from regnet.clips import ClipRecord, earlier_clips, read_clips, write_clips
from regnet.config import load_config
from regnet.errors import UserError


def _fails(capsys, argv: list[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def a_file(tmp_path):
    p = tmp_path / "afile"
    p.write_text("not a folder")
    return p


def test_output_path_that_is_a_file_is_one_line(tmp_path, a_file, capsys):
    # synth creates OUT/videos: with OUT a plain file the file system refuses, named in one line.
    _fails(capsys, ["synth", "--out", str(a_file), "--n-per-class", "1", "--seconds", "1"], str(a_file))
    assert a_file.read_text() == "not a folder"


def test_bad_device_is_one_line(tmp_path, capsys):
    man = tmp_path / "m.csv"
    man.write_text("video_id,video_path\nv,v.mp4\n")
    _fails(capsys, ["extract", "--manifest", str(man), "--out", str(tmp_path / "f"), "--preset", "tiny",
                    "--device", "nonsense"], "--device", "nonsense")
    if not torch.cuda.is_available():
        _fails(capsys, ["extract", "--manifest", str(man), "--out", str(tmp_path / "f"), "--preset", "tiny",
                        "--device", "cuda"], "--device cuda", "CUDA")


@pytest.mark.parametrize("override, field", [
    ("data.clip_seconds=0", "data.clip_seconds"),
    ("data.fps=-1", "data.fps"),
    ("data.pad_mode=bogus", "data.pad_mode"),
    ("vocoder.upsample_scales=4,0", "vocoder.upsample_scales"),
    ("data.fmin=9000", "data.fmin"),
])
def test_config_values_no_stage_can_use_are_refused(override, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_config(None, "tiny", [override])


def test_yaml_config_with_negative_value_names_file_and_field(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  fps: -1\n")
    man = tmp_path / "m.csv"
    man.write_text("video_id,video_path\nv,v.mp4\n")
    _fails(capsys, ["extract", "--manifest", str(man), "--out", str(tmp_path / "f"), "--config", str(cfg)],
           str(cfg), "data.fps")


def test_presets_pass_validation():
    for name in ("paper", "small", "tiny"):
        load_config(None, name)


def test_binary_file_as_manifest_is_one_line(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, bad)
    _fails(capsys, ["extract", "--manifest", str(bad), "--out", str(tmp_path / "f"), "--preset", "tiny"],
           str(bad), "not a readable CSV")


def test_fit_embedder_never_writes_over_its_manifest(tmp_path, capsys):
    man = tmp_path / "manifest.csv"
    text = "video_id,class,video_path\nv,a,v.mp4\n"
    man.write_text(text)
    _fails(capsys, ["fit-embedder", "--manifest", str(man), "--out", str(man), "--preset", "tiny"],
           "--out", "input file")
    assert man.read_text() == text
    _fails(capsys, ["fit-embedder", "--manifest", str(man), "--out", str(tmp_path), "--preset", "tiny"],
           "is a folder")


def _authors_pair(tmp_path):
    """An authors' netG/netD pair made by exporting a tiny model of ours."""
    from regnet.config import preset
    from regnet.models import Discriminator, RegNet
    from regnet.train.checkpoint import save_checkpoint

    cfg = preset("tiny")
    ours = tmp_path / "ours.pt"
    save_checkpoint(ours, cfg, RegNet(cfg), Discriminator(cfg), step=1, class_name="dog")
    assert main(["export-checkpoint", str(ours), "--out", str(tmp_path / "ck")]) == 0
    return ours, tmp_path / "ck_netG", tmp_path / "ck_netD"


def test_import_checkpoint_never_writes_over_its_source_or_a_foreign_file(tmp_path, capsys):
    ours, g, d = _authors_pair(tmp_path)
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (g, d)}
    for target in (g, d):
        _fails(capsys, ["import-checkpoint", str(tmp_path / "ck"), "--out", str(target), "--preset", "tiny"],
               "input file")
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    _fails(capsys, ["import-checkpoint", str(g), "--out", str(other), "--preset", "tiny"],
           str(other), "not a regnet-bench checkpoint")
    assert other.read_text() == "keep me"
    assert {p: p.read_bytes() for p in (g, d)} == before
    # Re-running an import replaces its own output.
    out = tmp_path / "imported.pt"
    assert main(["import-checkpoint", str(g), "--out", str(out), "--preset", "tiny"]) == 0
    assert main(["import-checkpoint", str(g), "--out", str(out), "--preset", "tiny"]) == 0
    # export never writes over the checkpoint it reads
    _fails(capsys, ["export-checkpoint", str(ours), "--out", str(ours)], "input file")
    _fails(capsys, ["import-checkpoint", str(tmp_path / "missing"), "--out", str(out)], "not found")


def _wavs(folder, ids, sr=22050, seconds=0.5):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    for i, vid in enumerate(ids):
        sf.write(folder / f"{vid}.wav", (0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t)).astype(np.float32), sr)


def test_import_clips_merges_with_earlier_run_and_refuses_another_system(tmp_path, capsys):
    _wavs(tmp_path / "a", ["v1", "v2"])
    _wavs(tmp_path / "b", ["v3"])
    out = tmp_path / "out"

    def imp(folder: str) -> int:
        return main(["import-clips", str(tmp_path / folder), "--system", "sysA", "--out", str(out),
                     "--preset", "tiny"])

    assert imp("a") == 0 and imp("b") == 0
    rows = read_clips(out / "clips.csv")
    assert sorted(r.video_id for r in rows) == ["v1", "v2", "v3"]
    # re-running adds nothing twice
    assert imp("b") == 0
    assert len(pd.read_csv(out / "clips.csv")) == 3
    before = (out / "wav" / "v1.wav").read_bytes()
    _fails(capsys, ["import-clips", str(tmp_path / "a"), "--system", "sysB", "--out", str(out),
                    "--preset", "tiny"], "clips.csv", "sysA")
    assert (out / "wav" / "v1.wav").read_bytes() == before
    assert set(pd.read_csv(out / "clips.csv")["system"]) == {"sysA"}


def test_earlier_clips_refuses_other_system_and_unreadable_manifest(tmp_path):
    wav = tmp_path / "wav" / "v.wav"
    _wavs(wav.parent, ["v"])
    write_clips(tmp_path / "clips.csv", [ClipRecord("regnet", "v", "all", wav, wav)])
    assert set(earlier_clips(tmp_path, "regnet")) == {"v"}
    with pytest.raises(UserError, match="holds clips of system 'regnet'"):
        earlier_clips(tmp_path, "woreg")
    (tmp_path / "clips.csv").write_bytes(b"\x80\x81garbage")
    with pytest.raises(UserError, match="clips.csv"):
        earlier_clips(tmp_path, "regnet")


def test_generate_refuses_a_folder_of_another_system(tmp_path, capsys):
    # The guard runs before the checkpoint is even read: nothing there is touched.
    wav = tmp_path / "out" / "wav" / "v.wav"
    _wavs(wav.parent, ["v"])
    write_clips(tmp_path / "out" / "clips.csv", [ClipRecord("real", "v", "all", wav, wav)])
    before = wav.read_bytes()
    _fails(capsys, ["generate", "--checkpoint", str(tmp_path / "none.pt"), "--videos", str(tmp_path),
                    "--out", str(tmp_path / "out"), "--device", "cpu"], "system 'real'")
    assert wav.read_bytes() == before


def test_import_features_skips_a_video_of_another_width(tmp_path, tiny_config):
    from regnet.authors.features import import_features

    rgb, flow = tmp_path / "rgb", tmp_path / "flow"
    rgb.mkdir()
    flow.mkdir()
    for vid, w in (("a", 16), ("b", 8), ("c", 16)):
        with open(rgb / f"{vid}.pkl", "wb") as fh:
            pickle.dump(np.ones((10, w), np.float32), fh)
        with open(flow / f"{vid}.pkl", "wb") as fh:
            pickle.dump(np.ones((10, 16), np.float32), fh)
    ids = tmp_path / "dog_test.txt"
    ids.write_text("a\nb\nc\n")
    res = import_features(rgb, flow, None, ids, tmp_path / "out", tiny_config.data, "dog")
    assert res.written == ["a", "c"]
    assert [v for v, _ in res.skipped] == ["b"] and "b.pkl" in res.skipped[0][1]
    assert not (tmp_path / "out" / "b.npz").exists()


def test_evaluate_out_that_is_a_file_is_one_line(tmp_path, a_file, capsys):
    for system in ("x", "real"):
        wav = tmp_path / system / "wav" / "v.wav"
        _wavs(wav.parent, ["v"], seconds=1.0)
        write_clips(tmp_path / system / "clips.csv", [ClipRecord(system, "v", "all", wav, wav, duration_s=1.0)])
    _fails(capsys, ["evaluate", "--clips", str(tmp_path / "x" / "clips.csv"), str(tmp_path / "real" / "clips.csv"),
                    "--out", str(a_file)], str(a_file))
    assert a_file.read_text() == "not a folder"
