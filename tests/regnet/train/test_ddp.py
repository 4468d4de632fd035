"""torchrun DistributedDataParallel with 2 CPU processes on gloo: trains and the ranks agree.

Run by pytest, this file launches itself under torchrun; each rank trains a tiny model through
`regnet.train.run.train_runs` and dumps its final generator parameters for the comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch


def _worker(root: Path) -> None:
    from tests.helpers.training import tiny_cfg

    from regnet.train import run as run_mod

    cfg = tiny_cfg()
    cfg.train.max_steps = 3
    cfg.train.batch_size = 2
    rank = int(os.environ["RANK"])
    manifest, feats = root / "manifest.csv", root / "features"
    captured = {}
    real = run_mod.Trainer

    class Capturing(real):  # keep a handle on this rank's trainer to dump its weights
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            captured["t"] = self

    run_mod.Trainer = Capturing
    run_mod.train_runs(cfg, manifest, feats, root / "run")
    t = captured["t"]
    torch.save({"world": t.dist.world_size, "step": t.step,
                "params": {k: v.detach().clone() for k, v in t.generator.state_dict().items()}},
               root / f"rank{rank}.pt")


def test_torchrun_gloo_two_processes_agree(tmp_path):
    from tests.helpers.training import make_dataset, tiny_cfg

    make_dataset(tmp_path, tiny_cfg(), n=12)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", __file__, str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 3
    for k, v in r0["params"].items():
        assert torch.equal(v, r1["params"][k]), k
    # It trained: weights moved from the seeded init, and rank 0 wrote the one checkpoint.
    from regnet.config import preset  # noqa: F401  (import check: the package is importable here)
    from regnet.train.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["step"] == 3
    assert not torch.equal(ck["generator"]["decoder.model.0.weight"], _init_weight())
    assert torch.equal(ck["generator"]["decoder.model.0.weight"], r0["params"]["decoder.model.0.weight"])


def _init_weight() -> torch.Tensor:
    from tests.helpers.training import tiny_cfg

    from regnet.models import RegNet

    cfg = tiny_cfg()
    torch.manual_seed(cfg.train.seed)
    return RegNet(cfg).state_dict()["decoder.model.0.weight"]


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
