"""The RegNet trainer: one D update then one G update per step (authors' order), Adam, linear LR
decay after ``train.lr_decay_start_epoch``, checkpoints with resume, CSV/TensorBoard logs, torchrun DDP.

Speed options (``train.amp``, ``train.compile``, ``train.fused_adam``, ``train.cudnn_benchmark``)
change how the step runs, never what it computes: bf16 autocast covers convolutions, LSTMs and
linears while every loss is taken in fp32 (BCE on logits, MSE on fp32 copies), so no loss scaler
is needed.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from regnet.config import Config
from regnet.errors import UserError
from regnet.log import progress_bar
from regnet.models import Discriminator, RegNet
from regnet.train import checkpoint as ckpt
from regnet.train.distributed import DistInfo
from regnet.train.losses import LOSS_FORMS, discriminator_loss, generator_loss

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "epoch", "lr", "d", "g", "g_adv", "l2_init", "l2_post", "sec_per_step"]
LAST = "last.pt"


class DiscriminatorPair(nn.Module):
    """Scores real and fake in one forward, so DDP sees one forward per backward (two separate D
    calls keep BatchNorm statistics per batch as the authors have them)."""

    def __init__(self, d: Discriminator):
        super().__init__()
        self.d = d

    def forward(self, visual, real, fake):
        return self.d.logits(visual, real), self.d.logits(visual, fake)


def cpu_bf16_supported() -> bool:
    """Whether oneDNN can run bf16 kernels (the LSTM's included) on this CPU."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass
class SpeedOptions:
    amp: bool
    compile: bool
    fused_adam: bool

    @classmethod
    def resolve(cls, cfg: Config, device: torch.device) -> "SpeedOptions":
        t = cfg.train
        amp = (device.type == "cuda") if t.amp is None else bool(t.amp)
        # oneDNN's bf16 LSTM needs AVX-512 bf16; without it the first step dies deep in the LSTM.
        if amp and device.type == "cpu" and not cpu_bf16_supported():
            raise UserError("train.amp: this CPU has no bf16 support for the LSTM (oneDNN reports none); "
                            "set train.amp to false")
        return cls(amp=amp,
                   compile=bool(t.compile), fused_adam=bool(t.fused_adam) and device.type == "cuda")


def lr_factor(epoch: int, cfg: Config) -> float:
    """Authors' schedule: constant, then linear decay to ~0 over the remaining epochs."""
    t = cfg.train
    span = max(1, t.epochs - t.lr_decay_start_epoch + 1)
    return max(0.0, 1.0 - max(0, epoch - t.lr_decay_start_epoch) / span)


def check_train_config(cfg: Config) -> None:
    t = cfg.train
    if t.loss_form not in LOSS_FORMS:
        raise UserError(f"train.loss_form: '{t.loss_form}' is not one of {', '.join(LOSS_FORMS)}")
    for name in ("batch_size", "d_interval", "log_every", "checkpoint_every", "epochs"):
        if getattr(t, name) < 1:
            raise UserError(f"train.{name}: must be at least 1, got {getattr(t, name)}")
    if t.max_steps is not None and t.max_steps < 0:
        raise UserError(f"train.max_steps: must be >= 0, got {t.max_steps}")


class Trainer:
    def __init__(self, cfg: Config, device: torch.device | str = "cpu", class_name: str = "all",
                 out_dir: str | Path | None = None, dist_info: DistInfo | None = None,
                 data_hash: str | None = None):
        check_train_config(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self.class_name = class_name
        self.out_dir = Path(out_dir) if out_dir else None
        self.dist = dist_info or DistInfo()
        self.data_hash = data_hash or cfg.data.cache_hash()
        self.speed = SpeedOptions.resolve(cfg, self.device)
        t = cfg.train
        if self.device.type == "cuda":
            torch.backends.cudnn.enabled = True
            torch.backends.cudnn.benchmark = bool(t.cudnn_benchmark)
        # Same seed on every rank for the weights (DDP also broadcasts rank 0's), then a per-rank
        # stream for z, dropout and anything else random.
        torch.manual_seed(t.seed)
        self.generator = RegNet(cfg).to(self.device)
        self.discriminator = Discriminator(cfg).to(self.device)
        torch.manual_seed(t.seed + 1000003 * self.dist.rank)
        self.g_run: nn.Module = self.generator
        self.d_run: nn.Module = DiscriminatorPair(self.discriminator)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_run = DDP(self.g_run, device_ids=ids)
            self.d_run = DDP(self.d_run, device_ids=ids)
        if self.speed.compile:
            self.g_run = torch.compile(self.g_run)
            self.d_run = torch.compile(self.d_run)
        adam = dict(lr=t.lr, betas=tuple(t.betas))
        if self.speed.fused_adam:
            adam["fused"] = True
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **adam)
        self.step = 0
        self.epoch = 0

    # -- one step ------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.speed.amp)

    def _clip(self, module: nn.Module) -> None:
        if self.cfg.train.grad_clip and self.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.train.grad_clip)

    def train_step(self, visual: torch.Tensor, mel: torch.Tensor) -> dict[str, float]:
        """One D update (every ``d_interval`` steps) then one G update; returns the losses."""
        t = self.cfg.train
        visual = visual.to(self.device, non_blocking=True)
        mel = mel.to(self.device, non_blocking=True)
        self.generator.train()
        self.discriminator.train()
        with self._autocast():
            mel_init, mel_post = self.g_run(visual, mel)
        out: dict[str, float] = {}
        if t.adversarial and self.step % t.d_interval == 0:  # woGAN: no D at all
            self.discriminator.requires_grad_(True)
            with self._autocast():
                logit_real, logit_fake = self.d_run(visual, mel, mel_post.detach())
            loss_d = discriminator_loss(logit_real, logit_fake, t)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self._clip(self.discriminator)
            self.opt_d.step()
            out["d"] = loss_d.item()
        # G's adversarial term goes through the bare D: its gradients are not wanted, so DDP has
        # nothing to synchronise there.
        self.discriminator.requires_grad_(False)
        logit_fake = None
        if t.adversarial:
            with self._autocast():
                logit_fake = self.discriminator.logits(visual, mel_post)
        loss_g, parts = generator_loss(logit_fake, mel_init, mel_post, mel, t)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._clip(self.generator)
        self.opt_g.step()
        self.discriminator.requires_grad_(True)
        out["g"] = loss_g.item()
        out.update({k: v.item() for k, v in parts.items()})
        self.step += 1
        return out

    def set_lr(self, epoch: int) -> float:
        lr = self.cfg.train.lr * lr_factor(epoch, self.cfg)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        rng = {"rng_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return ckpt.save_checkpoint(path, self.cfg, self.generator, self.discriminator, self.opt_g,
                                    self.opt_d, step=self.step, epoch=self.epoch,
                                    class_name=self.class_name, data_hash=self.data_hash, extra=rng)

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same config and class (step count, optimisers, RNG)."""
        path = Path(path)
        ck = ckpt.load_checkpoint(path, self.device)
        ckpt.check_resumable(ck, path, self.cfg, self.class_name)
        self.generator.load_state_dict(ck["generator"])
        self.discriminator.load_state_dict(ck["discriminator"])
        if ck.get("opt_g"):
            self.opt_g.load_state_dict(ck["opt_g"])
        if ck.get("opt_d"):
            self.opt_d.load_state_dict(ck["opt_d"])
        self.step, self.epoch = int(ck["step"]), int(ck["epoch"])
        # Rank 0's stream is what was saved; other ranks offset it so they stay distinct.
        if "rng_cpu" in ck and not self.dist.enabled:
            torch.set_rng_state(ck["rng_cpu"].cpu())
            if self.device.type == "cuda" and "rng_cuda" in ck:
                torch.cuda.set_rng_state(ck["rng_cuda"].cpu(), self.device)
        log.info("resumed %s at step %d (epoch %d)", path, self.step, self.epoch)

    # -- the loop ------------------------------------------------------------------------------
    def _epoch_batches(self, n: int, epoch: int) -> list[list[int]]:
        """This rank's batches for an epoch: a seeded shuffle, dealt round-robin over ranks, padded
        so every rank takes the same number of steps."""
        g = torch.Generator().manual_seed(self.cfg.train.seed * 100003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
        world = self.dist.world_size
        per_rank = math.ceil(n / world)
        order = (order * (per_rank * world // n + 1))[: per_rank * world]
        mine = order[self.dist.rank::world]
        bs = self.cfg.train.batch_size
        return [mine[i:i + bs] for i in range(0, len(mine), bs)]

    def steps_per_epoch(self, n: int) -> int:
        return math.ceil(math.ceil(n / self.dist.world_size) / self.cfg.train.batch_size)

    def total_steps(self, n: int) -> int:
        t = self.cfg.train
        return t.max_steps if t.max_steps is not None else t.epochs * self.steps_per_epoch(n)

    def fit(self, dataset: Dataset) -> dict[str, float]:
        """Train until ``train.max_steps`` (or ``train.epochs``); returns the last logged losses."""
        t = self.cfg.train
        n = len(dataset)
        if n == 0:
            raise UserError("training split: no clips")
        need = t.batch_size * self.dist.world_size
        if n < need:
            # Not an error (a smoke run may want it), but every step then sees the same few clips.
            log.warning("training split: %d clip(s), fewer than one batch; train.batch_size %d%s needs at "
                        "least %d (or set train.batch_size=%d)", n, t.batch_size,
                        f" x {self.dist.world_size} processes" if self.dist.world_size > 1 else "", need,
                        max(1, n // self.dist.world_size))
        per_epoch = self.steps_per_epoch(n)
        total = self.total_steps(n)
        main = self.dist.is_main
        logger = _RunLogger(self.out_dir) if (main and self.out_dir) else None
        bar = progress_bar(total, min(self.step, total), f"train {self.class_name}", enabled=main)
        window: dict[str, list[float]] = {}
        last: dict[str, float] = {}
        tick = time.perf_counter()
        try:
            while self.step < total:
                self.epoch = self.step // per_epoch
                lr = self.set_lr(self.epoch)
                batches = self._epoch_batches(n, self.epoch)[self.step % per_epoch:]
                # Own generator: a DataLoader otherwise draws its worker seed from the global RNG,
                # and a resumed run would then drift from an uninterrupted one.
                loader = DataLoader(dataset, batch_sampler=batches, num_workers=t.num_workers,
                                    pin_memory=self.device.type == "cuda",
                                    generator=torch.Generator().manual_seed(t.seed + self.epoch))
                for visual, mel, _ids in loader:
                    losses = self.train_step(visual, mel)
                    for k, v in losses.items():
                        window.setdefault(k, []).append(v)
                    # This step's losses on the bar (drawn at the bar's own pace); the CSV log keeps means.
                    bar.set_postfix({k: f"{losses[k]:.4g}" for k in ("d", "g", "l2_post") if k in losses},
                                    refresh=False)
                    bar.update(1)
                    if self.step % t.log_every == 0 or self.step == total:
                        now = time.perf_counter()
                        last = {k: sum(v) / len(v) for k, v in window.items()}
                        count = len(window.get("g", [1]))
                        bar.set_postfix({k: f"{last[k]:.4g}" for k in ("d", "g", "l2_post") if k in last})
                        if logger:
                            logger.write(step=self.step, epoch=self.epoch, lr=lr,
                                         sec_per_step=(now - tick) / max(1, count), **last)
                        window, tick = {}, now
                    if main and self.out_dir and (self.step % t.checkpoint_every == 0 or self.step == total):
                        self.save(self.out_dir / LAST)
                    if self.step >= total:
                        break
        finally:
            bar.close()
            if logger:
                logger.close()
        if self.dist.enabled:
            self._sync_buffers()
            self._check_ranks_agree()
        return last

    def _sync_buffers(self) -> None:
        """BatchNorm running statistics are per rank between DDP's forward-time broadcasts; end
        with rank 0's everywhere (they are what rank 0's checkpoint holds)."""
        import torch.distributed as dist

        for module in (self.generator, self.discriminator):
            for b in module.buffers():
                dist.broadcast(b.data, src=0)

    def _check_ranks_agree(self) -> None:
        """DDP keeps replicas equal by construction; a cheap checksum all-reduce proves it held."""
        import torch.distributed as dist

        with torch.no_grad():
            tensors = list(self.generator.parameters()) + list(self.generator.buffers())
            s = torch.stack([p.double().sum() for p in tensors]).sum().reshape(1)
            s = s.cpu()
            lo, hi = s.clone(), s.clone()
            dist.all_reduce(lo, op=dist.ReduceOp.MIN)
            dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise RuntimeError(f"DDP ranks disagree on generator parameters ({lo.item()} vs {hi.item()})")


class _RunLogger:
    """CSV log (always) and TensorBoard (when the ``tensorboard`` package is installed)."""

    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "log.csv"
        new = not path.exists()
        self.fh = open(path, "a", newline="")
        self.csv = csv.DictWriter(self.fh, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        if new:
            self.csv.writeheader()
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:
            log.debug("tensorboard not installed; CSV log only")

    def write(self, **row) -> None:
        self.csv.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.fh.flush()
        if self.tb:
            for k, v in row.items():
                if k not in ("step", "epoch"):
                    self.tb.add_scalar(f"train/{k}", v, row["step"])

    def close(self) -> None:
        self.fh.close()
        if self.tb:
            self.tb.close()
