"""The quickstart as a demo (issue 16, point 12): the simulated raters leave an assignment per HIT
for a person, and training shows a progress bar (step, loss, ETA) even when stderr is not a
terminal (a run logged to a file)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from regnet.config import preset
from regnet.pipelines.quickstart import Quickstart, QuickstartOptions
from regnet.train.trainer import Trainer


class _Srv:
    url, admin_token = "http://127.0.0.1:8000", "tok"


def _recorded(tmp_path, simulate: int) -> tuple[Quickstart, list[list[str]]]:
    q = Quickstart(QuickstartOptions(workdir=tmp_path, simulate=simulate))
    calls: list[list[str]] = []
    q._verb = lambda *argv, ok=(0,): calls.append([str(a) for a in argv]) or 0
    return q, calls


def test_simulated_raters_leave_one_assignment_per_hit_for_a_person(tmp_path):
    q, calls = _recorded(tmp_path, simulate=3)
    q.build_study()
    argv = calls[0]
    assert argv[0] == "build-study" and argv[argv.index("--assignments") + 1] == "4"
    q.simulate(_Srv())
    sim = calls[1]
    assert sim[sim.index("--n") + 1] == "3"  # 3 of the 4 assignments go to bots
    assert "--loudspeaker-raters" in sim  # one more bot that the headphone check screens out
    text = q.next_steps(_Srv())
    assert "one per HIT is left for a person" in text and "screening test" in text
    q0, calls0 = _recorded(tmp_path / "people", simulate=0)
    q0.build_study()
    assert calls0[0][calls0[0].index("--assignments") + 1] == "3"
    assert "all left for people" in q0.next_steps(_Srv())


class _Random(Dataset):
    def __init__(self, cfg, n=4):
        g = torch.Generator().manual_seed(0)
        self.v = torch.randn(n, cfg.data.n_steps, cfg.model.visual_dim, generator=g)
        self.m = torch.rand(n, cfg.data.n_mels, cfg.data.mel_frames, generator=g)

    def __len__(self):
        return len(self.v)

    def __getitem__(self, i):
        return self.v[i], self.m[i], f"v{i}"


def test_training_progress_bar_reports_step_loss_and_eta_off_a_terminal(capsys):
    cfg = preset("tiny")
    cfg.model.visual_dim = 32
    cfg.train.max_steps, cfg.train.batch_size, cfg.train.num_workers, cfg.train.log_every = 3, 2, 0, 1000
    Trainer(cfg).fit(_Random(cfg))
    err = capsys.readouterr().err  # captured: not a TTY, where tqdm(disable=None) printed nothing
    assert "train all" in err and "3/3" in err
    assert "g=" in err and "l2_post=" in err  # the loss, although log_every is past the run
    assert "<" in err and "step/s" in err or "s/step" in err  # elapsed<remaining and the rate


def test_vocoder_progress_bar_reports_the_loss(capsys, tmp_path):
    from regnet.data.mel import log_mel
    from regnet.vocoder.train import TrainingClips, VocoderTrainer

    cfg = preset("tiny")
    cfg.vocoder.max_time_steps, cfg.vocoder.batch_size, cfg.vocoder.checkpoint_every = 512, 2, 100
    t = np.arange(int(cfg.data.clip_seconds * cfg.data.sample_rate)) / cfg.data.sample_rate
    wavs = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in (220.0, 440.0)]).astype(np.float32)
    clips = TrainingClips("hum", ["a", "b"], wavs, np.stack([log_mel(w, cfg.data) for w in wavs]))
    VocoderTrainer(cfg, torch.device("cpu"), "hum").fit(clips, tmp_path / "v.pt", 2)
    err = capsys.readouterr().err
    assert "wavenet hum" in err and "2/2" in err and "nll=" in err
