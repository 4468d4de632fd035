"""import-features: the authors' per-video pickles -> our feature cache (external hash)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from regnet.cli import main
from regnet.config import load_config, preset
from regnet.data.features import feature_path, load_features

DIM = 6  # their BN-Inception features are 1024 wide; any width goes


def _write_release(root, lengths: dict[str, int], n_mels: int = 80, mel_per_step: int = 4):
    rgb, flow, mel = (root / "feature_rgb_bninception_dim1024_21.5fps",
                      root / "feature_flow_bninception_dim1024_21.5fps", root / "melspec_10s_22050hz")
    for d in (rgb, flow, mel):
        d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for vid, t in lengths.items():
        a = {"rgb": rng.standard_normal((t, DIM)), "flow": rng.standard_normal((t, DIM)),
             "mel": rng.random((n_mels, t * mel_per_step))}
        for name, folder in (("rgb", rgb), ("flow", flow)):
            with open(folder / f"{vid}.pkl", "wb") as fh:
                pickle.dump(a[name], fh)
        np.save(mel / f"{vid}_mel.npy", a["mel"])
        arrays[vid] = a
    ids = root / "dog_test.txt"
    ids.write_text("\n".join(lengths) + "\n")
    return rgb, flow, mel, ids, arrays


def test_import_pads_short_and_cuts_long_videos_zero_mode(tmp_path):
    cfg = preset("tiny")  # 2 s: 43 steps, 172 mel frames
    n, m = cfg.data.n_steps, cfg.data.mel_frames
    rgb, flow, mel, ids, arrays = _write_release(tmp_path / "rel", {"long1": n + 7, "short1": 20, "exact": n})
    out = tmp_path / "cache"
    rc = main(["import-features", "--rgb-dir", str(rgb), "--flow-dir", str(flow), "--mel-dir", str(mel),
               "--ids", str(ids), "--out", str(out), "--preset", "tiny", "--set", "data.pad_mode=zero"])
    assert rc == 0
    read_cfg = load_config(out / "config.yaml", "tiny")
    assert read_cfg.data.feature_source == "authors" and read_cfg.data.pad_mode == "zero"
    expected = read_cfg.data.cache_hash()
    assert expected.startswith("external:") and expected != preset("tiny").data.cache_hash()
    # Their features are the paper's (BN-Inception + TV-L1); only the run's own choices are deviations.
    import yaml

    meta = yaml.safe_load((out / "cache_config.yaml").read_text())
    assert meta["config_hash"] == expected
    assert meta["deviations"] == ["2 s clips (paper: 10 s)", "pad_mode 'zero' (paper: 'repeat')"]

    f = load_features(feature_path(out, "short1"), expected_hash=expected)
    a = arrays["short1"]
    assert f.rgb.shape == (n, DIM) and f.flow.shape == (n, DIM) and f.mel.shape == (80, m)
    np.testing.assert_array_equal(f.rgb[:20], a["rgb"].astype(np.float32))
    np.testing.assert_array_equal(f.flow[:20], a["flow"].astype(np.float32))
    assert not f.rgb[20:].any() and not f.flow[20:].any() and not f.mel[:, 80:].any()
    np.testing.assert_array_equal(f.mel[:, :80], a["mel"].astype(np.float32))
    assert f.class_name == "dog" and f.has_audio and f.duration_s == pytest.approx(20 / 21.5)
    assert f.visual.shape == (n, 2 * DIM)

    g = load_features(feature_path(out, "long1"), expected_hash=expected)
    np.testing.assert_array_equal(g.rgb, arrays["long1"]["rgb"][:n].astype(np.float32))
    np.testing.assert_array_equal(g.mel, arrays["long1"]["mel"][:, :m].astype(np.float32))
    # An extracted-feature run never accepts this cache.
    from regnet.errors import UserError
    with pytest.raises(UserError, match="another config"):
        load_features(feature_path(out, "exact"), expected_hash=preset("tiny").data.cache_hash())


def test_repeat_padding_loops_the_clip(tmp_path):
    cfg = preset("tiny")
    rgb, flow, mel, ids, arrays = _write_release(tmp_path / "rel", {"v": 10})
    from regnet.authors.features import import_features
    res = import_features(rgb, flow, mel, ids, tmp_path / "c", cfg.data, "dog")  # paper default: repeat
    f = load_features(feature_path(tmp_path / "c", "v"))
    idx = np.arange(cfg.data.n_steps) % 10
    np.testing.assert_array_equal(f.rgb, arrays["v"]["rgb"][idx].astype(np.float32))
    np.testing.assert_array_equal(f.mel, arrays["v"]["mel"][:, np.arange(cfg.data.mel_frames) % 40].astype(np.float32))
    assert res.written == ["v"] and f.config_hash == res.config_hash


def test_bad_items_are_skipped_and_foreign_pickles_refused(tmp_path, caplog):
    cfg = preset("tiny")
    rgb, flow, mel, ids, _ = _write_release(tmp_path / "rel", {"good": 30, "nomel": 30, "evil": 30})
    (mel / "nomel_mel.npy").unlink()

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (rgb / "evil.pkl").write_bytes(pickle.dumps(Boom()))
    ids.write_text("good\nnomel\nevil\nmissing\n")
    from regnet.authors.features import import_features
    res = import_features(rgb, flow, mel, ids, tmp_path / "c", cfg.data, "dog")
    assert res.written == ["good"]
    reasons = dict(res.skipped)
    assert set(reasons) == {"nomel", "evil", "missing"}
    assert "nomel_mel.npy" in reasons["nomel"] and "builtins.print" in reasons["evil"]
    assert all("\n" not in r for r in reasons.values())


def test_cli_errors_are_one_line(tmp_path, capsys):
    rgb, flow, mel, ids, _ = _write_release(tmp_path / "rel", {"a": 5})
    rc = main(["import-features", "--rgb-dir", str(tmp_path / "nope"), "--flow-dir", str(flow),
               "--ids", str(ids), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --rgb-dir") and "\n" not in err
    (rgb / "a.pkl").unlink()
    rc = main(["-q", "import-features", "--rgb-dir", str(rgb), "--flow-dir", str(flow), "--mel-dir", str(mel),
               "--ids", str(ids), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "none of the 1 videos" in err and "a.pkl" in err
