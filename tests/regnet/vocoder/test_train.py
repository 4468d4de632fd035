"""train-vocoder, vocoder checkpoints, load_vocoder and Griffin-Lim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from regnet.cli import main
from regnet.config import preset
from regnet.data.mel import log_mel
from regnet.errors import UserError
from regnet.vocoder import GriffinLimVocoder, WaveNetVocoder, load_vocoder
from regnet.vocoder.checkpoint import load_wavenet, save_vocoder
from regnet.vocoder.train import TrainingClips, VocoderTrainer
from regnet.vocoder.wavenet import WaveNet

SR = 22050
TINY_TRAIN = ["--preset", "tiny", "--set", "vocoder.max_time_steps=512", "--set", "vocoder.batch_size=2",
              "--set", "vocoder.checkpoint_every=2"]


def _tone(f0: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc")
    lines = ["video_id,class,split,video_path,audio_path,duration_s"]
    for i, f0 in enumerate((220.0, 330.0, 440.0)):
        sf.write(root / f"hum_{i}.wav", _tone(f0), SR)
        lines.append(f"hum_{i},hum,train,hum_{i}.wav,hum_{i}.wav,2.0")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def test_train_vocoder_cli_writes_resumes_and_loads(manifest, tmp_path, capsys):
    out = tmp_path / "voc"
    assert main(["-q", "train-vocoder", "--manifest", str(manifest), "--class", "hum", "--out", str(out),
                 "--steps", "2", *TINY_TRAIN]) == 0
    path = out / "wavenet_hum.pt"
    assert capsys.readouterr().out.strip() == str(path)
    rc = main(["train-vocoder", "--manifest", str(manifest), "--class", "hum", "--out", str(out), "--steps", "3",
               *TINY_TRAIN])
    assert rc == 2 and "--resume" in capsys.readouterr().err
    assert main(["-q", "train-vocoder", "--manifest", str(manifest), "--class", "hum", "--out", str(out),
                 "--steps", "3", "--resume", *TINY_TRAIN]) == 0
    model, data_cfg, ck = load_wavenet(path)
    assert ck["step"] == 3 and ck["class_name"] == "hum" and data_cfg.clip_seconds == 2.0
    voc = load_vocoder(path, preset("tiny").data, "cpu")
    assert isinstance(voc, WaveNetVocoder) and voc.name.startswith("wavenet:")
    mels = [np.random.default_rng(0).random((80, 3), dtype=np.float32), np.zeros((80, 2), np.float32)]
    wavs = voc.mel_to_audio(mels)  # two lengths in one batch
    assert [len(w) for w in wavs] == [3 * 256, 2 * 256]
    assert all(w.dtype == np.float32 and np.all(np.abs(w) <= 1) for w in wavs)
    rc = main(["train-vocoder", "--manifest", str(manifest), "--class", "bark", "--out", str(out), *TINY_TRAIN])
    assert rc == 2 and "bark" in capsys.readouterr().err


def _clips(cfg) -> TrainingClips:
    wavs = np.stack([_tone(f) for f in (220.0, 440.0)])
    return TrainingClips("hum", ["a", "b"], wavs, np.stack([log_mel(w, cfg.data) for w in wavs]))


def test_resumed_training_equals_uninterrupted(tmp_path):
    cfg = preset("tiny")
    cfg.vocoder.max_time_steps, cfg.vocoder.batch_size, cfg.vocoder.checkpoint_every = 512, 2, 100
    clips = _clips(cfg)
    straight = VocoderTrainer(cfg, torch.device("cpu"), "hum")
    straight.fit(clips, tmp_path / "a.pt", 4)
    first = VocoderTrainer(cfg, torch.device("cpu"), "hum")
    first.fit(clips, tmp_path / "b.pt", 2)
    second = VocoderTrainer(cfg, torch.device("cpu"), "hum")
    second.resume(tmp_path / "b.pt")
    second.fit(clips, tmp_path / "b.pt", 4)
    for (k, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_training_lowers_the_likelihood_loss():
    cfg = preset("tiny")
    cfg.vocoder.max_time_steps, cfg.vocoder.batch_size = 512, 2
    trainer = VocoderTrainer(cfg, torch.device("cpu"), "hum")
    batch = trainer.batch(_clips(cfg))
    losses = [trainer.train_step(*batch) for _ in range(20)]
    assert losses[-1] < losses[0] - 0.15  # nats per sample; deterministic (seeded init and dropout)


def test_load_vocoder_refuses_bad_files_and_other_mels(tmp_path):
    cfg = preset("tiny")
    with pytest.raises(UserError, match="nope.pt"):
        load_vocoder(tmp_path / "nope.pt", cfg.data)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pt"):
        load_vocoder(junk, cfg.data)
    other = tmp_path / "other.pt"
    torch.save({"format": "regnet-bench/regnet"}, other)
    with pytest.raises(UserError, match="not a regnet-bench WaveNet"):
        load_vocoder(other, cfg.data)
    path = tmp_path / "w.pt"
    save_vocoder(path, WaveNet(cfg.vocoder), cfg.data, "hum", 0)
    wanted = preset("tiny").data
    wanted.fmax = 8000.0
    with pytest.raises(UserError, match="fmax"):
        load_vocoder(path, wanted)
    assert isinstance(load_vocoder("griffin-lim", cfg.data), GriffinLimVocoder)


def test_griffin_lim_inverts_log_mel():
    cfg = preset("tiny")
    wav = _tone(330.0)
    mel = log_mel(wav, cfg.data)
    (out,) = GriffinLimVocoder(cfg.data, n_iter=32).mel_to_audio([mel])
    assert out.dtype == np.float32 and len(out) == cfg.data.num_samples
    err = np.mean(np.abs(log_mel(out, cfg.data) - mel))
    silence_err = np.mean(np.abs(log_mel(np.zeros_like(wav), cfg.data) - mel))
    assert err < 0.02 and err < 0.25 * silence_err  # far closer than silence would be
