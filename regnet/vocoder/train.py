"""Training a WaveNet vocoder for one sound class on (audio, log-mel) pairs from a manifest.

Each step takes ``vocoder.batch_size`` random windows of ``vocoder.max_time_steps`` samples (whole
mel frames), conditions on the same frames of the clip's log-mel (the exact mel RegNet predicts:
`regnet.data.mel.log_mel`, clip padded/cut to ``data.clip_seconds``) and minimises the
mixture-of-logistics negative log-likelihood with teacher forcing. The latest state goes to
``OUT/wavenet_<class>.pt`` every ``vocoder.checkpoint_every`` steps and at the end; ``resume``
continues from that file with its optimiser and window sampler state.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from regnet.config import Config
from regnet.data.audio import load_audio
from regnet.data.manifest import read_manifest
from regnet.data.mel import fit_length, log_mel
from regnet.errors import UserError
from regnet.vocoder.checkpoint import check_mel_compatible, load_wavenet, read_vocoder_file, save_vocoder
from regnet.vocoder.mixture import mol_loss
from regnet.vocoder.wavenet import WaveNet

log = logging.getLogger(__name__)


@dataclass
class TrainingClips:
    """Audio ``[N, num_samples]`` and its log-mel ``[N, n_mels, mel_frames]`` for one class."""

    class_name: str
    video_ids: list[str]
    audio: np.ndarray
    mel: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)


def vocoder_path(out_dir: str | Path, class_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", class_name)
    return Path(out_dir) / f"wavenet_{safe}.pt"


def load_training_clips(manifest: str | Path, class_name: str, cfg: Config, split: str | None = "train") -> TrainingClips:
    """Every clip of ``class_name`` (in ``split``; None = all splits). A clip whose audio cannot be
    read is skipped and listed; no readable clip at all is a `UserError`."""
    d = cfg.data
    rows = [r for r in read_manifest(manifest) if r.class_name == class_name and (split is None or r.split == split)]
    if not rows:
        raise UserError(f"{manifest}: no clips of class '{class_name}'" + (f" in split '{split}'" if split else ""))
    ids, wavs, mels, skipped = [], [], [], []
    for r in tqdm(rows, desc=f"audio {class_name}", unit="clip", disable=None):
        src = r.audio_path or r.video_path
        try:
            wav = load_audio(src, d.sample_rate, max_seconds=d.clip_seconds)
        except UserError as e:
            skipped.append((r.video_id, str(e)))
            continue
        if not np.any(wav):
            skipped.append((r.video_id, f"{src}: silent"))
            continue
        ids.append(r.video_id)
        mels.append(log_mel(wav, d))
        wavs.append(fit_length(wav, d.num_samples))
    for vid, why in skipped:
        log.warning("skipped %s: %s", vid, why)
    if not ids:
        raise UserError(f"{manifest}: no readable audio for class '{class_name}' ({len(skipped)} skipped)")
    return TrainingClips(class_name, ids, np.stack(wavs), np.stack(mels), skipped)


class VocoderTrainer:
    def __init__(self, cfg: Config, device: torch.device, class_name: str):
        self.cfg = cfg
        self.device = device
        self.class_name = class_name
        v = cfg.vocoder
        hop = cfg.data.hop_length
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(v.seed)
            self.model = WaveNet(v).to(device)
        if self.model.hop != hop:
            raise UserError(f"vocoder.upsample_scales: product {self.model.hop} != data.hop_length {hop}")
        self.opt = torch.optim.Adam(self.model.parameters(), lr=v.lr)
        self.step = 0
        self.rng = np.random.default_rng(v.seed)

    def resume(self, path: Path) -> None:
        ck = read_vocoder_file(path)
        if ck.get("class_name") != self.class_name:
            raise UserError(f"{path}: trained on class '{ck.get('class_name')}', this run is for '{self.class_name}'")
        model, data_cfg, _ = load_wavenet(path, self.device)
        check_mel_compatible(path, data_cfg, self.cfg.data)
        if _net_sizes(model.cfg) != _net_sizes(self.cfg.vocoder):
            raise UserError(f"{path}: network sizes differ from this config ({_net_sizes(model.cfg)} vs "
                            f"{_net_sizes(self.cfg.vocoder)})")
        self.model.load_state_dict(model.state_dict())
        if ck.get("optimizer"):
            self.opt.load_state_dict(ck["optimizer"])
        self.step = int(ck.get("step", 0))
        if ck.get("rng_state"):
            self.rng.bit_generator.state = ck["rng_state"]
        log.info("resumed %s at step %d", path, self.step)

    def save(self, path: Path) -> None:
        save_vocoder(path, self.model, self.cfg.data, self.class_name, self.step, self.opt,
                     extra={"rng_state": self.rng.bit_generator.state})

    def batch(self, clips: TrainingClips) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random windows: (previous samples [B, 1, T], mel [B, n_mels, W], targets [B, T])."""
        v, hop = self.cfg.vocoder, self.cfg.data.hop_length
        n_frames = clips.mel.shape[2]
        w = max(1, min(n_frames, v.max_time_steps // hop))
        idx = self.rng.integers(0, len(clips.video_ids), size=v.batch_size)
        f0 = self.rng.integers(0, n_frames - w + 1, size=v.batch_size)
        x_prev, mel, target = [], [], []
        for i, f in zip(idx, f0):
            a, b = f * hop, (f + w) * hop
            wav = clips.audio[i]
            target.append(wav[a:b])
            # The sample before the window is real context, not a zero.
            x_prev.append(np.concatenate([wav[a - 1:a] if a > 0 else np.zeros(1, np.float32), wav[a:b - 1]]))
            mel.append(clips.mel[i, :, f:f + w])
        to = lambda xs: torch.from_numpy(np.stack(xs)).to(self.device)  # noqa: E731
        return to(x_prev).unsqueeze(1), to(mel), to(target)

    def train_step(self, x_prev: torch.Tensor, mel: torch.Tensor, target: torch.Tensor) -> float:
        self.model.train()
        # Dropout masks come from torch's global generator: seeding it from the step makes a
        # resumed run take exactly the steps an uninterrupted one would.
        torch.manual_seed(self.cfg.vocoder.seed * 1_000_003 + self.step)
        y = self.model(x_prev, mel)
        loss = mol_loss(y, target, self.cfg.vocoder.log_scale_min)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def fit(self, clips: TrainingClips, out_path: Path, steps: int) -> float:
        """Train until ``steps`` total steps (counting resumed ones). Returns the last loss."""
        every = max(1, self.cfg.vocoder.checkpoint_every)
        loss = float("nan")
        from regnet.log import progress_bar

        with progress_bar(steps, self.step, f"wavenet {self.class_name}") as bar:
            while self.step < steps:
                loss = self.train_step(*self.batch(clips))
                bar.set_postfix(nll=f"{loss:.3f}", refresh=False)
                bar.update(1)
                if self.step % every == 0 or self.step == steps:
                    self.save(out_path)
        return loss


def _net_sizes(v) -> tuple:
    return (v.layers, v.stacks, v.residual_channels, v.gate_channels, v.skip_channels, v.kernel_size,
            v.n_mix, v.cin_channels, tuple(v.upsample_scales), v.upsample_net)


def train_vocoder(cfg: Config, manifest: str | Path, class_name: str, out_dir: str | Path,
                  device: torch.device, resume: bool = False, steps: int | None = None,
                  split: str | None = "train") -> tuple[Path, float, TrainingClips]:
    path = vocoder_path(out_dir, class_name)
    if path.exists() and not resume:
        raise UserError(f"{path}: exists; pass --resume to continue it or choose another --out")
    trainer = VocoderTrainer(cfg, device, class_name)
    if resume and path.exists():
        trainer.resume(path)
    clips = load_training_clips(manifest, class_name, cfg, split)
    total = steps if steps is not None else cfg.vocoder.steps
    if trainer.step >= total:
        log.info("%s: already at step %d of %d", path, trainer.step, total)
        return path, float("nan"), clips
    loss = trainer.fit(clips, path, total)
    return path, loss, clips
