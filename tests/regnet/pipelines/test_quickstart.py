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


def test_simulated_raters_leave_one_assignment_per_hit_for_a_person(tmp_path):
    q = Quickstart(QuickstartOptions(workdir=tmp_path, simulate=3))
    assert q.study_options().max_assignments == 4
    n, speakers = q.simulated_raters()
    assert n == 3  # 3 of the 4 assignments go to bots
    assert speakers == 1  # one more bot that the headphone check screens out
    text = q.next_steps(_Srv())
    assert "one per HIT is left for a person" in text and "screening test" in text
    q0 = Quickstart(QuickstartOptions(workdir=tmp_path / "people", simulate=0))
    assert q0.study_options().max_assignments == 3
    assert "all left for people" in q0.next_steps(_Srv())


def test_stages_log_the_verb_a_user_would_type_with_workdir_relative_paths(tmp_path):
    """The quickstart calls the library, not the CLI; what it logs (and what results cite) is the verb
    with the same options, runnable from the workdir."""
    q = Quickstart(QuickstartOptions(workdir=tmp_path, preset="tiny", overrides=["model.aux_dim=8"]))
    cmd = q._as_typed("extract", "--manifest", q.manifest, "--out", q.features, *q._model_args())
    assert cmd == "regnet-bench extract --manifest synth/manifest.csv --out features --preset tiny --set model.aux_dim=8"
    assert str(tmp_path) not in cmd
    assert q._config().model.aux_dim == 8 and q._config("train.lr=0.5").train.lr == 0.5


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
