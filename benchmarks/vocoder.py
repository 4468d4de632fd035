"""WaveNet sampling speed (naive vs cached) and the seconds per 10 s clip of each `generate` stage.

    python benchmarks/vocoder.py [--device cpu|cuda] [--size tiny|small|paper] [--batches 1 8]
                                 [--steps 2000] [--dtype float32|bfloat16|float16] [--no-generate]

* naive: one full forward over the receptive field per sample (its steady-state cost; what
  sampling without cached queues does);
* reference: plain PyTorch cached queues (`ReferenceSampler`, the CPU path);
* fast: static ring buffers, chunked conditioning, CUDA graph on CUDA (`FastSampler`).
Weights are random (speed does not depend on them). The generate stages run on one synthetic
10 s video with the paper's data geometry, a paper-size RegNet (random weights) and Griffin-Lim;
the WaveNet line extrapolates the measured samples/s to 220,500 samples. The last line is
``cached speedup: N.Nx`` (best cached sampler over naive, samples/s at batch 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from regnet.config import VocoderConfig, preset  # noqa: E402
from regnet.vocoder.sampler import FastSampler, ReferenceSampler, UniformStream  # noqa: E402
from regnet.vocoder.wavenet import WaveNet  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def vocoder_cfg(size: str) -> VocoderConfig:
    return VocoderConfig() if size == "paper" else preset(size).vocoder


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@torch.no_grad()
def naive_rate(m: WaveNet, B: int, reps: int, dev: torch.device) -> float:
    rf = m.receptive_field
    x = torch.zeros(B, 1, rf, device=dev)
    c = torch.rand(B, m.cfg.cin_channels, rf, device=dev)
    m.forward_upsampled(x, c)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        m.forward_upsampled(x, c)[:, :, -1]
    _sync(dev)
    return B * reps / (time.perf_counter() - t0)


@torch.no_grad()
def cached_rate(sampler, m: WaveNet, B: int, steps: int, dev: torch.device) -> float:
    frames = -(-steps // m.hop)
    mel = torch.rand(B, m.cfg.cin_channels, frames, device=dev)
    sampler.run(mel, min(steps, 2 * m.hop), UniformStream(B, m.cfg.n_mix, 0, dev))  # warm-up / capture
    _sync(dev)
    t0 = time.perf_counter()
    sampler.run(mel, steps, UniformStream(B, m.cfg.n_mix, 1, dev))
    _sync(dev)
    return B * steps / (time.perf_counter() - t0)


def generate_stages(dev: torch.device) -> dict[str, float]:
    """Seconds for one 10 s clip per stage (paper geometry, simple backbone, Griffin-Lim)."""
    from regnet.cli import main
    from regnet.data.manifest import read_manifest
    from regnet.generation import generate_clips
    from regnet.models import RegNet
    from regnet.train.checkpoint import save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="bench_vocoder_"))
    main(["-q", "synth", "--out", str(tmp / "synth"), "--classes", "strike", "--n-per-class", "1",
          "--seconds", "10"])
    cfg = preset("paper")
    torch.manual_seed(0)
    save_checkpoint(tmp / "regnet.pt", cfg, RegNet(cfg), None, class_name="strike")
    rows = read_manifest(tmp / "synth" / "manifest.csv")
    report = generate_clips(tmp / "regnet.pt", tmp / "synth" / "manifest.csv", tmp / "out", device=dev,
                            batch_size=1)
    assert report.generated, report.failed
    n = len(rows)
    return {k: v / n for k, v in report.stage_seconds.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", choices=["tiny", "small", "paper"], help="WaveNet size (default small on CPU, paper on CUDA)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, help="samples per clip to time (default 1024 CPU, 4096 CUDA)")
    ap.add_argument("--naive-reps", type=int, default=20)
    ap.add_argument("--dtype", choices=list(DTYPES), default="float32", help="fast sampler weights (CUDA)")
    ap.add_argument("--no-generate", action="store_true", help="skip the generate-stage timing")
    args = ap.parse_args()
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    size = args.size or ("paper" if dev.type == "cuda" else "small")
    steps = args.steps or (4096 if dev.type == "cuda" else 1024)
    cfg = vocoder_cfg(size)
    torch.manual_seed(0)
    m = WaveNet(cfg).to(dev).eval()
    n_params = sum(p.numel() for p in m.parameters())
    print(f"device {dev} ({torch.get_num_threads()} CPU threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}); "
          f"WaveNet '{size}': {cfg.layers} layers, {cfg.residual_channels} residual ch, {n_params / 1e6:.2f} M params, "
          f"receptive field {m.receptive_field}")
    print("note: taken on a shared machine; figures under contention are lower bounds")
    best_b1, naive_b1 = 0.0, 0.0
    for B in args.batches:
        naive = naive_rate(m, B, args.naive_reps, dev)
        ref = cached_rate(ReferenceSampler(m), m, B, steps, dev)
        fast = cached_rate(FastSampler(m, DTYPES[args.dtype]), m, B, steps, dev)
        best = max(ref, fast)
        print(f"batch {B:3d}: naive {naive:9.0f} samples/s | reference (cached) {ref:9.0f} | "
              f"fast (cached{', graph' if dev.type == 'cuda' else ''}, {args.dtype}) {fast:9.0f} | "
              f"best cached: {220500 * B / best:.1f} s per batch of 10 s clips = {220500 / best:.2f} s per clip")
        if B == args.batches[0]:
            best_b1, naive_b1 = best, naive
    if not args.no_generate:
        stages = generate_stages(dev)
        for k, v in stages.items():
            print(f"generate stage {k:9s}: {v:7.2f} s per 10 s clip")
        print(f"generate stage wavenet  : {220500 / best_b1:7.1f} s per 10 s clip at batch "
              f"{args.batches[0]} (extrapolated, '{size}' WaveNet)")
    print(f"cached speedup: {best_b1 / naive_b1:.1f}x")


if __name__ == "__main__":
    main()
