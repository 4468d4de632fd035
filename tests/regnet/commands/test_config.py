from __future__ import annotations

import subprocess
import sys

import pytest

from regnet.cli import main
from regnet.config import Config, load_config, preset
from regnet.errors import UserError


def test_paper_geometry():
    c = Config()
    assert (c.data.sample_rate, c.data.n_fft, c.data.win_length, c.data.hop_length, c.data.n_mels) == (
        22050, 1024, 1024, 256, 80)
    assert (c.data.n_steps, c.data.mel_frames, c.data.num_samples) == (215, 860, 220160)
    assert (c.model.aux_dim, c.model.aux_sample) == (32, 860)
    assert (c.train.alpha, c.train.beta, c.train.lr) == (1.0, 10000.0, 2e-4)


def test_short_clip_is_a_config_change():
    c = preset("tiny")
    assert c.data.clip_seconds == 2.0
    assert (c.data.n_steps, c.data.mel_frames) == (43, 172)
    assert c.model.aux_sample == 172


def test_yaml_round_trip_and_overrides(tmp_path):
    c = preset("small").apply_overrides(["model.aux_dim=8", "train.max_steps=none",
                                         "model.disc_channels=[8,16,32]", "train.amp=true"])
    assert c.model.aux_dim == 8 and c.train.max_steps is None and c.model.disc_channels == (8, 16, 32)
    assert c.train.amp is True
    p = tmp_path / "c.yaml"
    c.to_yaml(p)
    assert Config.from_yaml(p) == c
    assert load_config(p, overrides=["data.clip_seconds=4"]).data.n_steps == 86


@pytest.mark.parametrize("bad, msg", [
    (["model.nope=1"], "unknown config field 'model.nope'"),
    (["nosection.x=1"], "unknown config section"),
    (["model.aux_dim=abc"], "model.aux_dim must be int"),
    (["model.aux_dim"], "expected section.key=value"),
])
def test_bad_overrides_are_one_line_errors(bad, msg):
    with pytest.raises(UserError, match=msg):
        Config().apply_overrides(bad)


def test_bad_yaml_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="bad.yaml"):
        Config.from_yaml(p)


def test_cli_help_lists_verbs_and_user_errors_are_one_line(capsys):
    out = subprocess.run([sys.executable, "-m", "regnet.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "regnet-bench" in out.stdout
    assert main([]) == 0  # no verb: prints help, exits 0
