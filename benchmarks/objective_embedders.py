"""Seconds for the released-embedder metrics on CPU, with random weights (the speed does not
depend on them): a 10 s clip through PANNs CNN14 (16 kHz), VGGish and PaSST, and the Fréchet
distance of 2048-d embeddings (exact sqrt-trace; scipy ``sqrtm`` compared at 256 dims) with its
200-replicate bootstrap. Usage: ``python benchmarks/objective_embedders.py [--clips N] [--threads N]``.
Last line: ``objective_fd_bootstrap200_s: <seconds>`` (N clips x 2048 dims).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import linalg

from regnet.metrics.embedders import panns, passt, vggish
from regnet.metrics.fad import bootstrap_frechet, frechet_distance


def timed(fn, repeat=1):
    t = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t) / repeat, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-models", action="store_true", help="only the FD timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    for name, model, fn, sr in ([] if args.skip_models else (
            ("panns-cnn14 16k", panns.build(panns.VARIANTS[512]).eval(), panns.embed, 16000),
            ("vggish", vggish.build().eval(), vggish.embed, 16000),
            ("passt", passt.build().eval(), passt.embed, 32000))):
        wav = (0.1 * rng.normal(size=10 * sr)).astype(np.float32)
        fn(model, [wav[: sr]])  # warm-up
        s, _ = timed(lambda: fn(model, [wav]))
        print(f"{name}: {s:.2f} s per 10 s clip ({args.threads} thread(s))")

    n, d = args.clips, 2048
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.1
    s_exact, fd = timed(lambda: frechet_distance(x, y))

    def scipy_fd(a, b):
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        diff = a.mean(0) - b.mean(0)
        return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)

    # scipy's sqrtm on 2048 x 2048 takes minutes on a loaded 2-core machine: compared at 256 dims
    xs, ys = x[:, :256], y[:, :256]
    s_small, fd_small = timed(lambda: frechet_distance(xs, ys))
    s_scipy, fd_scipy = timed(lambda: scipy_fd(xs, ys))
    print(f"FD {n} clips x {d} dims: exact {s_exact:.3f} s ({fd:.4f})")
    print(f"FD {n} clips x 256 dims: exact {s_small:.3f} s ({fd_small:.6f}); scipy sqrtm {s_scipy:.2f} s "
          f"({fd_scipy:.6f})")
    s_boot, ci = timed(lambda: bootstrap_frechet(list(x), list(y), n_boot=200, seed=0))
    print(f"bootstrap 200 replicates: {s_boot:.1f} s, FD {ci.value:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
    print(f"objective_fd_bootstrap200_s: {s_boot:.2f}")


if __name__ == "__main__":
    main()
