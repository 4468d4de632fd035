"""Seconds per RegNet training step (one D update + one G update) and peak memory.

Paper-size model by default (10 s clips: 215 visual steps -> 860 mel frames, ~94 M + ~11 M
parameters), random inputs of the right shape. The authors' code on one H100 (fp32):
65.5 ms per step at batch 8, 95.5 ms at batch 64 (issue 12).

    python benchmarks/train_step.py                    # CPU, batch 8
    python benchmarks/train_step.py --device cuda --batch 64 --amp --compile

Last line: ``train_step_s: <seconds per step>``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from regnet.config import preset
from regnet.models import count_parameters
from regnet.train.trainer import Trainer

AUTHORS_H100_MS = {8: 65.5, 64: 95.5}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--preset", default="paper", choices=["paper", "small", "tiny"])
    p.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    p.add_argument("--no-fused-adam", action="store_true")
    args = p.parse_args(argv)

    cfg = preset(args.preset)
    cfg.train.batch_size = args.batch
    cfg.train.amp = args.amp
    cfg.train.compile = args.compile
    cfg.train.fused_adam = not args.no_fused_adam
    device = torch.device(args.device)
    tr = Trainer(cfg, device)
    d = cfg.data
    visual = torch.randn(args.batch, d.n_steps, cfg.model.visual_dim, device=device)
    mel = torch.rand(args.batch, d.n_mels, d.mel_frames, device=device)
    print(f"device {device}, preset {args.preset}, batch {args.batch}, threads {torch.get_num_threads()}, "
          f"amp {tr.speed.amp}, compile {tr.speed.compile}, fused adam {tr.speed.fused_adam}")
    print(f"parameters: generator {count_parameters(tr.generator) / 1e6:.1f} M, "
          f"discriminator {count_parameters(tr.discriminator) / 1e6:.1f} M")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        tr.train_step(visual, mel)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        tr.train_step(visual, mel)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(f"step times (s): {', '.join(f'{t:.3f}' for t in times)}")
    print(f"median {med:.3f} s/step = {args.batch / med:.1f} clips/s")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
        ref = AUTHORS_H100_MS.get(args.batch)
        if ref and args.preset == "paper":
            print(f"authors' code on H100 at batch {args.batch}: {ref} ms/step; "
                  f"ratio (theirs / ours) {ref / 1000 / med:.2f}x")
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        print(f"peak process memory (max RSS): {rss:.2f} GiB")
    print(f"train_step_s: {med:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
