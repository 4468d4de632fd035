"""fit-embedder trains a real classifier on a labelled manifest; evaluate uses the saved file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf

from regnet.cli import main
from regnet.metrics.embedding import load_embedder

from tests.helpers.media import bursts

SR = 22050


def _tone(freq: float, seed: int) -> np.ndarray:
    t = np.arange(2 * SR) / SR
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * rng.random()) * t)).astype(np.float32)


def test_fit_embedder_learns_two_classes_and_plugs_into_evaluate(tmp_path, capsys):
    rows = []
    for k in range(4):
        for cls, wav in (("strike", bursts([0.2 + 0.1 * k, 1.1], seed=k)), ("tone", _tone(440 + 40 * k, k))):
            vid = f"{cls}{k}"
            sf.write(tmp_path / f"{vid}.wav", wav, SR)
            rows.append({"video_id": vid, "class": cls, "split": "train", "video_path": f"{vid}.mp4",
                         "audio_path": f"{vid}.wav", "duration_s": 2.0})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    weights = tmp_path / "emb.pt"
    assert main(["fit-embedder", "--manifest", str(tmp_path / "manifest.csv"), "--out", str(weights),
                 "--preset", "tiny", "--epochs", "8", "--set", "data.clip_seconds=2"]) == 0
    emb = load_embedder(weights)
    assert emb.classes == ("strike", "tone")
    wavs = [bursts([0.5, 1.5], seed=99), _tone(500, 99)]
    _, post = emb.embed(wavs, SR)
    assert post[0, 0] > 0.5 and post[1, 1] > 0.5  # unseen clips are classified right

    # evaluate with it: a strike clip judged against a tone reference diverges more than a strike
    pd.DataFrame([{"system": s, "video_id": "strike0", "class": "strike", "clip_path": f"{v}.wav",
                   "wav_path": f"{v}.wav", "duration_s": 2.0} for s, v in (("same", "strike0"), ("tone", "tone0"))]
                 ).to_csv(tmp_path / "clips.csv", index=False)
    out = tmp_path / "res"
    assert main(["evaluate", "--clips", str(tmp_path / "clips.csv"), "--manifest", str(tmp_path / "manifest.csv"),
                 "--embedding", str(weights), "--out", str(out)]) == 0
    s = pd.read_csv(out / "objective.csv").set_index(["system", "metric"])["mean"]
    assert s[("same", "kl_posterior")] < 1e-6 < s[("tone", "kl_posterior")]


def test_fit_embedder_needs_two_classes(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", bursts([0.5]), SR)
    pd.DataFrame([{"video_id": "a", "class": "dog", "split": "train", "video_path": "a.mp4",
                   "audio_path": "a.wav", "duration_s": 2.0}]).to_csv(tmp_path / "m.csv", index=False)
    rc = main(["fit-embedder", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "e.pt")])
    assert rc == 2 and "at least two classes" in capsys.readouterr().err
