"""`regnet-bench train` end to end on tiny feature caches: runs, resume, checkpoints, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from regnet.cli import main
from regnet.errors import UserError
from regnet.train.checkpoint import load_checkpoint, load_regnet, save_checkpoint
from regnet.train.run import train_runs

from tests.helpers.training import VISUAL_DIM, make_dataset, tiny_cfg


def _cli_args(cfg_path: Path, manifest: Path, feats: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--manifest", str(manifest), "--features", str(feats), "--out", str(out),
            "--config", str(cfg_path), *extra]


def test_train_cli_writes_run_and_resume_continues(tmp_path, capsys):
    cfg = tiny_cfg()
    manifest, feats = make_dataset(tmp_path, cfg)
    cfg_path = tmp_path / "c.yaml"
    cfg.to_yaml(cfg_path)
    out = tmp_path / "run"
    assert main(_cli_args(cfg_path, manifest, feats, out, "--steps", "4")) == 0
    assert str(out / "last.pt") in capsys.readouterr().out
    assert load_checkpoint(out / "last.pt")["step"] == 4
    assert (out / "config.yaml").is_file()
    # A second run into the same folder without --resume is refused, with the way out named.
    assert main(_cli_args(cfg_path, manifest, feats, out, "--steps", "8")) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(_cli_args(cfg_path, manifest, feats, out, "--steps", "8", "--resume")) == 0
    ck = load_checkpoint(out / "last.pt")
    assert ck["step"] == 8 and ck["class_name"] == "dog"
    with open(out / "log.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [2, 4, 6, 8]

    # The resumed run is the uninterrupted run, bit for bit (CPU).
    straight = tmp_path / "straight"
    assert main(_cli_args(cfg_path, manifest, feats, straight, "--steps", "8")) == 0
    a, b = load_checkpoint(out / "last.pt"), load_checkpoint(straight / "last.pt")
    for k in a["generator"]:
        assert torch.equal(a["generator"][k], b["generator"][k]), k


def test_train_is_deterministic_with_seed(tmp_path):
    cfg = tiny_cfg()
    cfg.train.max_steps = 3
    manifest, feats = make_dataset(tmp_path, cfg)
    runs = [train_runs(cfg, manifest, feats, tmp_path / f"r{i}")[0] for i in range(2)]
    cfg.train.seed = 7
    other = train_runs(cfg, manifest, feats, tmp_path / "r_other")[0]
    w = [load_checkpoint(r.checkpoint)["generator"]["decoder.model.0.weight"] for r in runs + [other]]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_one_model_per_class_by_default(tmp_path):
    cfg = tiny_cfg()
    cfg.train.max_steps = 1
    manifest, feats = make_dataset(tmp_path, cfg, n=9, classes=("dog", "drum", "baby"))
    results = train_runs(cfg, manifest, feats, tmp_path / "run")
    assert sorted(r.class_name for r in results) == ["baby", "dog", "drum"]
    assert all((tmp_path / "run" / r.class_name / "last.pt").is_file() for r in results)
    both = train_runs(cfg, manifest, feats, tmp_path / "all", all_classes=True)
    assert [r.class_name for r in both] == ["all"]
    one = train_runs(cfg, manifest, feats, tmp_path / "drum", class_name="drum")
    assert load_checkpoint(one[0].checkpoint)["class_name"] == "drum"


def test_checkpoint_round_trip_reproduces_outputs(tmp_path, tiny_config):
    from regnet.models import Discriminator, RegNet

    g, d = RegNet(tiny_config), Discriminator(tiny_config)
    for p in g.parameters():  # move away from init so a silent re-init would show
        p.data.add_(0.01 * torch.randn_like(p))
    g.train()
    g(torch.randn(2, 43, tiny_config.model.visual_dim), torch.rand(2, 80, 172))  # BN running stats
    path = save_checkpoint(tmp_path / "c.pt", tiny_config, g, d, step=17, epoch=2, class_name="dog")
    g2, cfg2, meta = load_regnet(path)
    assert cfg2 == tiny_config and meta["step"] == 17 and meta["class_name"] == "dog"
    assert meta["data_hash"] == tiny_config.data.cache_hash()
    v = torch.randn(3, 43, tiny_config.model.visual_dim)
    assert torch.equal(g.generate(v, seed=3), g2.generate(v, seed=3))
    assert not g2.training


@pytest.mark.parametrize("content, msg", [
    (b"not a checkpoint", "not a PyTorch checkpoint"),
    ({"format": "regnet-bench/wavenet"}, "not a regnet-bench RegNet checkpoint"),
    ({"iteration": 41000, "optimizer_netG": {}}, "import-checkpoint"),
])
def test_wrong_checkpoint_file_is_a_user_error(tmp_path, content, msg):
    p = tmp_path / "x.pt"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        torch.save(content, p)
    with pytest.raises(UserError, match=msg):
        load_regnet(p)
    with pytest.raises(UserError, match="not found"):
        load_regnet(tmp_path / "missing.pt")


def test_resume_with_other_config_or_class_is_refused(tmp_path):
    cfg = tiny_cfg()
    cfg.train.max_steps = 2
    manifest, feats = make_dataset(tmp_path, cfg, n=6, classes=("dog", "drum"))
    train_runs(cfg, manifest, feats, tmp_path / "run", class_name="dog")
    other = tiny_cfg()
    other.train.max_steps = 4
    other.model.aux_dim = 8
    with pytest.raises(UserError, match=r"another config: model.aux_dim \(checkpoint 32, now 8\)"):
        train_runs(other, manifest, feats, tmp_path / "run", class_name="dog", resume=True)
    cfg.train.max_steps = 4
    with pytest.raises(UserError, match="trained on class 'dog'.*'drum'"):
        train_runs(cfg, manifest, feats, tmp_path / "run", class_name="drum", resume=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train_runs(cfg, manifest, feats, tmp_path / "empty", class_name="dog", resume=True)


def test_bad_training_data_is_one_line(tmp_path, capsys):
    cfg = tiny_cfg()
    cfg_path = tmp_path / "c.yaml"
    cfg.to_yaml(cfg_path)
    # features of another dimension
    m1, f1 = make_dataset(tmp_path / "wrongdim", cfg, visual_dim=VISUAL_DIM + 4)
    assert main(_cli_args(cfg_path, m1, f1, tmp_path / "o1", "--steps", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "20 dims but model.visual_dim is 16" in err
    # silent videos
    m2, f2 = make_dataset(tmp_path / "silent", cfg, has_audio=False)
    assert main(_cli_args(cfg_path, m2, f2, tmp_path / "o2", "--steps", "1")) == 2
    assert "no audio track" in capsys.readouterr().err
    # empty training split / unknown class
    m3, f3 = make_dataset(tmp_path / "ok", cfg)
    assert main(_cli_args(cfg_path, m3, f3, tmp_path / "o3", "--class", "cat")) == 2
    assert "--class cat: not in the training split" in capsys.readouterr().err
    rows = (tmp_path / "ok" / "manifest.csv").read_text().replace(",train,", ",val,")
    (tmp_path / "ok" / "manifest.csv").write_text(rows)
    assert main(_cli_args(cfg_path, m3, f3, tmp_path / "o4")) == 2
    assert "no clips in split 'train'" in capsys.readouterr().err
    # features made with another data config
    other = tiny_cfg()
    other.data.fmin = 50.0
    m5, f5 = make_dataset(tmp_path / "stale", other)
    assert main(_cli_args(cfg_path, m5, f5, tmp_path / "o5", "--steps", "1")) == 2
    assert "made with another config" in capsys.readouterr().err


def test_fewer_clips_than_one_batch_warns_with_the_count_needed(tmp_path, capsys):
    cfg = tiny_cfg()
    cfg.train.batch_size = 8
    cfg_path = tmp_path / "c.yaml"
    cfg.to_yaml(cfg_path)
    m, f = make_dataset(tmp_path / "few", cfg, n=6)  # 4 of them in the training split
    assert main(_cli_args(cfg_path, m, f, tmp_path / "o", "--steps", "1")) == 0
    msg = capsys.readouterr().err
    assert "4 clip(s), fewer than one batch" in msg and "needs at least 8" in msg
