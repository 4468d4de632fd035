"""Runs that depart from the paper's system say so: in the log once, in the feature cache's
``cache_config.yaml`` and in ``clips.csv``'s ``deviations`` column (regnet.deviations)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml

from regnet.cli import main
from regnet.config import Config, preset
from regnet.deviations import CACHE_CONFIG, paper_deviations
from regnet.models import RegNet
from regnet.train.checkpoint import save_checkpoint


def test_the_paper_config_with_a_paper_wavenet_has_no_deviation():
    cfg = Config()
    cfg.data.backbone, cfg.data.backbone_weights, cfg.data.flow_method = "bninception", "bn.pth", "tvl1"
    cfg.vocoder.skip_rule = "r9y9-2092a64"  # as import-checkpoint records the authors' vocoders
    assert paper_deviations(cfg, "wavenet:x.pt", cfg.vocoder) == []
    cfg.vocoder.skip_rule = "sum-sqrt"
    assert paper_deviations(cfg, "wavenet:x.pt", cfg.vocoder) == [
        "WaveNet skip rule 'sum-sqrt' (the authors': r9y9-2092a64)"]
    cfg.train.adversarial = False
    assert "no adversarial loss (woGAN)" in paper_deviations(cfg)
    # The authors' released features (BN-Inception + TV-L1) are the paper's, whatever data.backbone says.
    authors = Config()
    authors.data.feature_source = "authors"
    assert paper_deviations(authors, parts=("data",)) == []


def test_paper_preset_defaults_name_the_backbone_and_the_vocoder():
    devs = paper_deviations(preset("paper"), "griffin-lim")
    assert any("'simple' backbone" in d and "BN-Inception" in d for d in devs)
    assert any("Griffin-Lim" in d and "WaveNet" in d for d in devs)
    tiny = paper_deviations(preset("tiny"), "griffin-lim")
    assert any("Farneback" in d and "TV-L1" in d for d in tiny)
    assert any("2 s clips" in d for d in tiny) and any("z_dim 8" in d for d in tiny)
    # S = the whole clip is the authors' lstm_last at any length: not a size difference.
    assert not any("aux_sample" in d for d in tiny)
    cfg = preset("tiny")
    cfg.train.loss_form = "eq7"
    assert any("loss_form 'eq7'" in d for d in paper_deviations(cfg))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev")
    assert main(["-q", "synth", "--out", str(root / "synth"), "--classes", "strike", "--n-per-class", "2",
                 "--size", "64x64", "--seconds", "2"]) == 0
    cfg = preset("tiny")
    torch.manual_seed(0)
    save_checkpoint(root / "regnet.pt", cfg, RegNet(cfg), None, class_name="strike")
    return root


def test_extract_and_generate_record_and_log_the_deviations_once(generated, capfd, monkeypatch):
    import regnet.deviations

    # announce() says a list once per process; other tests in this process may have said it already.
    monkeypatch.setattr(regnet.deviations, "_SAID", set())
    root = generated
    assert main(["-q", "extract", "--manifest", str(root / "synth" / "manifest.csv"), "--out",
                 str(root / "features"), "--preset", "tiny"]) == 0
    assert main(["-q", "generate", "--checkpoint", str(root / "regnet.pt"), "--videos",
                 str(root / "synth" / "manifest.csv"), "--out", str(root / "out"), "--features",
                 str(root / "features")]) == 0
    meta = yaml.safe_load((root / "features" / CACHE_CONFIG).read_text())
    want = paper_deviations(preset("tiny"), parts=("data",))
    assert meta["deviations"] == want and meta["data"]["clip_seconds"] == 2.0
    clips = pd.read_csv(root / "out" / "clips.csv", keep_default_na=False)
    full = paper_deviations(preset("tiny"), "griffin-lim")
    assert set(clips["deviations"]) == {"; ".join(full)}
    said = [line for line in capfd.readouterr().err.splitlines() if "deviates from the paper" in line]
    assert len([m for m in said if "generate deviates" in m]) == 1  # once per run, not per clip
    assert len([m for m in said if "extract deviates" in m]) == 1


def test_evaluate_tables_carry_each_systems_deviations(generated):
    root = generated
    if not (root / "out" / "clips.csv").is_file():
        assert main(["-q", "generate", "--checkpoint", str(root / "regnet.pt"), "--videos",
                     str(root / "synth" / "manifest.csv"), "--out", str(root / "out")]) == 0
    assert main(["-q", "evaluate", "--clips", str(root / "out" / "clips.csv"), "--manifest",
                 str(root / "synth" / "manifest.csv"), "--reference", "clean", "--out", str(root / "res")]) == 0
    md = (root / "res" / "objective.md").read_text()
    assert "regnet deviates from the paper's system: " + "; ".join(
        paper_deviations(preset("tiny"), "griffin-lim")) in md
    assert "waveform mel L2" in md and "predicted mel" in md
