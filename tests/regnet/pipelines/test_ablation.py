"""`regnet-bench ablate`: the clean-track reference lines up with the features; the verb runs end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regnet.cli import main
from regnet.config import preset
from regnet.data.audio import load_audio
from regnet.data.features import feature_path, load_features
from regnet.data.manifest import read_manifest
from regnet.pipelines.ablation import padded_mel, source_steps


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    assert main(["synth", "--out", str(root / "data"), "--n-per-class", "2", "--classes", "strike",
                 "flash", "--seed", "3"]) == 0
    return root


def test_source_steps_finds_the_loop_period():
    cfg = preset("tiny")
    n = cfg.data.n_steps
    base = np.random.default_rng(0).standard_normal((30, 4))
    rgb = np.concatenate([base, base])[:n]
    assert source_steps(rgb, 30 / cfg.data.fps, cfg) == 30
    assert source_steps(np.random.default_rng(1).standard_normal((n, 4)), 2.0, cfg) == n


def test_ablate_runs_and_reference_mel_matches_extract(synth_set, capsys):
    data, runs, res = synth_set / "data", synth_set / "runs", synth_set / "results"
    assert main(["ablate", "--data", str(data), "--out", str(runs), "--results", str(res),
                 "--steps", "2", "--seeds", "2", "--variants", "RegNet,woREG"]) == 0
    assert "| woREG |" in capsys.readouterr().out
    table = pd.read_csv(res / "ablation.csv")
    assert list(table.variant) == ["RegNet", "woREG"] and (table.seeds == 2).all()
    assert np.isfinite(table.l2_clean_mean).all() and (table.l2_clean_mean > 0).all()
    assert "L2 to clean" in (res / "ablation.md").read_text()
    assert np.isfinite(table[["train_code_to_mixed", "train_zero_to_clean"]].to_numpy()).all()
    md = (res / "ablation.md").read_text()
    assert "Table V analogue" in md and "VII: swapped, to own clean" in md and "Deviations from the paper" in md
    assert np.isfinite(table.code_cos_between[0]) and np.isnan(table.code_cos_between[1])  # woREG: no code
    assert "Griffin" not in table.deviations[0] and "'simple' backbone" in table.deviations[0]
    per_clip = pd.read_csv(runs / "ablation_per_clip.csv")
    assert len(per_clip) == 2 * 2 * 2  # variants x seeds x test clips
    # The reference padding reproduces extract's mel from the video's own (mixed) sound exactly,
    # so the clean track is compared on the same frames, including the looped short videos.
    cfg = preset("small")
    short = [r for r in read_manifest(data / "manifest.csv") if r.duration_s < cfg.data.clip_seconds - 0.1]
    assert short
    for r in short[:2]:
        f = load_features(feature_path(data / "features", r.video_id))
        mel = padded_mel(load_audio(r.video_path, cfg.data.sample_rate, cfg.data.clip_seconds),
                         cfg.data.sample_rate, f.rgb, r.duration_s, cfg)
        assert np.allclose(mel, f.mel, atol=1e-5)


def test_ablate_unknown_variant_is_a_user_error(synth_set, capsys):
    assert main(["ablate", "--data", str(synth_set / "data"), "--variants", "RegNet,bogus",
                 "--out", str(synth_set / "r2"), "--results", str(synth_set / "res2")]) == 2
    assert "--variants: unknown variant 'bogus'" in capsys.readouterr().err


def _tiny_model(regularizer="lstm"):
    import torch

    from regnet.models import RegNet

    cfg = preset("tiny")
    cfg.model.visual_dim, cfg.model.regularizer, cfg.model.aux_dim = 12, regularizer, 6
    torch.manual_seed(0)
    model = RegNet(cfg)
    g = torch.Generator().manual_seed(1)
    visual = torch.randn(3, cfg.data.n_steps, 12, generator=g)
    mixed = torch.rand(3, cfg.data.n_mels, cfg.data.mel_frames, generator=g)
    clean = torch.rand(3, cfg.data.n_mels, cfg.data.mel_frames, generator=g).numpy()
    return model, visual, mixed, clean


def test_regularizer_tables_match_a_direct_computation():
    """Tables V, VI, VII from the model's parts (encoder, code, decoder, post-net) written out here."""
    import torch

    from regnet.pipelines.ablation import regularizer_tables

    model, visual, mixed, clean = _tiny_model()
    got, cos = regularizer_tables(model, visual, mixed, clean, seed=4)
    model.eval()
    with torch.no_grad():
        z = torch.randn(3, model.z_dim, generator=torch.Generator().manual_seed(4))
        codes = model.auxiliary(mixed, visual)  # [3, T, D]

        def decode(vis, code):
            h = torch.cat([model.encoder(vis, z), code], dim=2)
            init = model.decoder(h)
            return (init + model.postnet(init)).numpy()

        flat = codes.reshape(3, -1).numpy().astype(np.float64)
        want_cos = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in flat] for a in flat])
        novis = decode(torch.zeros_like(visual), codes)
        swap = decode(visual, codes[[1, 2, 0]])
    m = mixed.numpy()
    l2 = lambda a, b: float(((a.astype(np.float64) - b) ** 2).mean() * 100)  # noqa: E731
    np.testing.assert_allclose(cos, want_cos, atol=1e-6)
    assert got["code_cos_between"] == pytest.approx(want_cos[~np.eye(3, dtype=bool)].mean(), abs=1e-6)
    assert got["novis_to_clean"] == pytest.approx(l2(novis, clean), rel=1e-5)
    assert got["novis_to_mixed"] == pytest.approx(l2(novis, m), rel=1e-5)
    assert got["swap_to_own_clean"] == pytest.approx(l2(swap, clean), rel=1e-5)
    assert got["swap_to_donor_mixed"] == pytest.approx(l2(swap, m[[1, 2, 0]]), rel=1e-5)
    # woREG has no code: Tables V and VII do not apply, VI is the visual-free output itself.
    wo, cos_wo = regularizer_tables(*_tiny_model("none"), seed=4)
    assert cos_wo is None and np.isnan(wo["code_cos_between"]) and np.isfinite(wo["novis_to_clean"])


def test_predicted_mel_l2_is_the_papers_table_iii_number():
    from regnet.metrics.predicted_mel import LABEL, predicted_mel_l2

    rng = np.random.default_rng(0)
    pred, ref = rng.random((2, 4, 5)), rng.random((2, 4, 5))
    want = [100 * np.mean((pred[i] - ref[i]) ** 2) for i in range(2)]
    np.testing.assert_allclose(predicted_mel_l2(pred, ref), want)
    assert "predicted" in LABEL and "Table III" in LABEL


def test_wogan_is_a_variant_without_the_adversarial_loss():
    from regnet.pipelines.ablation import SCALES, _config, make_variants

    sc = SCALES["small"]
    v = {x.name: x for x in make_variants(preset("small"), sc)}["woGAN"]
    cfg = _config(preset("small"), sc, v, 0, 10, 12)
    assert cfg.train.adversarial is False and cfg.model.regularizer == "lstm"


def test_baseline_pastes_the_class_sound_at_the_visual_events(synth_set, capsys):
    import json

    import soundfile as sf

    from regnet.clips import read_clips
    from regnet.generation.baseline import choose_polarity, class_sound, detect_visual_events

    data, out = synth_set / "data", synth_set / "baseline"
    assert main(["-q", "baseline", "--manifest", str(data / "manifest.csv"), "--out", str(out),
                 "--preset", "small"]) == 0
    rows = read_manifest(data / "manifest.csv")
    test = [r for r in rows if r.split == "test"]
    clips = {c.video_id: c for c in read_clips(out / "clips.csv")}
    assert set(clips) == {r.video_id for r in test} and {c.system for c in clips.values()} == {"baseline"}
    d = preset("small").data
    # clips.csv records the data config the baseline was made (and imported) with
    assert {(c.clip_seconds, c.sample_rate, c.feature_config_hash) for c in clips.values()} == {
        (d.clip_seconds, d.sample_rate, d.cache_hash())}
    strike = [r for r in test if r.class_name == "strike"][0]
    train = [r for r in rows if r.split == "train" and r.class_name == "strike"]
    assert choose_polarity(train, d) == "drop"  # a falling block sounds when it stops
    times = detect_visual_events(strike.video_path, d, polarity="drop")
    truth = [e["time_s"] for e in json.loads(strike.events_path.read_text())["events"]]
    assert len(times) == len(truth) and np.all(np.abs(np.sort(times) - np.sort(truth)) < 0.1)
    snippet = class_sound(train, d)
    wav, sr = sf.read(str(clips[strike.video_id].wav_path), dtype="float32")
    assert sr == d.sample_rate
    for t in times:  # the snippet itself, written out at each event (16-bit wav: 1e-4)
        a = int(round(t * sr))
        k = min(len(snippet), len(wav) - a)
        others = [u for u in times if u != t and abs(u - t) * sr < len(snippet)]
        if not others:
            np.testing.assert_allclose(wav[a:a + k], np.clip(snippet[:k], -1, 1), atol=1e-3)
    quiet = int(round(min(times) * sr)) - 100
    assert np.abs(wav[:quiet]).max() < 1e-3  # silence before the first event


def test_ablate_study_makes_the_variants_clips_and_a_real_or_fake_and_mos_study(tmp_path):
    data, runs, out = tmp_path / "data", tmp_path / "runs", tmp_path / "ablate_study"
    # MOS needs three test videos (one is the reference).
    assert main(["-q", "synth", "--out", str(data), "--n-per-class", "6", "--classes", "strike", "flash",
                 "--size", "64x64", "--seed", "3"]) == 0
    assert main(["-q", "ablate", "--data", str(data), "--out", str(runs), "--results", str(tmp_path / "r3"),
                 "--steps", "1", "--seeds", "1", "--variants", "RegNet,woREG"]) == 0
    # One training step: the variants' clips are near silent, which build-study refuses unless told;
    # four test videos: three real-or-fake trials per HIT leave a video for its check.
    assert main(["-q", "ablate-study", "--runs", str(runs), "--data", str(data), "--out", str(out),
                 "--", "--allow-silent", "--trials-per-hit", "3"]) == 0
    trials = pd.read_csv(out / "study" / "trials.csv", keep_default_na=False)
    main_trials = trials[trials.role == "main"]
    rf = main_trials[main_trials.kind == "real_fake"]
    systems = set(rf.left_system) | set(rf.right_system)
    assert {"RegNet", "woREG", "real"} <= systems
    assert {"RegNet", "woREG"} <= set(main_trials[main_trials.kind == "mos"].left_system)
    assert main(["-q", "ablate-study", "--runs", str(runs), "--data", str(data), "--out", str(out / "x"),
                 "--variants", "D8"]) == 2  # not trained: one-line error
