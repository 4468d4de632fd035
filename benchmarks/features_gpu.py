"""Feature extraction on a device: batched torch TV-L1 and BN-Inception per 10 s clip.

Paper geometry: 215 steps at 340x256, so 214 flow pairs and 215 RGB + 215 flow crops through
BN-Inception (random weights: the time does not depend on them). TV-L1 runs all pairs of a clip
in batches of ``--batch`` pairs (`regnet.data.tvl1_torch`); OpenCV's CPU solver is timed on
``--cpu-pairs`` pairs and scaled to 214, and its flow is compared with the torch flow on those
pairs (mean endpoint error). On a CPU this runs at any ``--size`` for a smoke check.

    python benchmarks/features_gpu.py --device cuda            # paper size
    python benchmarks/features_gpu.py --size 64x48 --pairs 3   # CPU smoke run

Last line: ``features_gpu_s_per_10s_clip: <TV-L1 + BN-Inception seconds>``.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import torch

from regnet.data.tvl1_torch import endpoint_error, tvl1_frames


def _frames(n: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.random((2 * h, 2 * w)).astype(np.float32), (0, 0), 4)
    bg = (bg - bg.min()) / (bg.max() - bg.min()) * 220
    out = []
    for k in range(n):
        f = cv2.warpAffine(bg, np.float32([[1, 0, -0.6 * k], [0, 1, -0.2 * k]]), (2 * w, 2 * h))[:h, :w].copy()
        cv2.circle(f, (int(w / 2 + w / 4 * np.sin(k / 8)), h // 2), max(3, h // 8), 255, -1)
        out.append(f)
    return np.stack(out).clip(0, 255).astype(np.uint8)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="340x256", help="WxH of the flow frames (paper: 340x256)")
    ap.add_argument("--pairs", type=int, default=214, help="flow pairs per clip (paper: 214)")
    ap.add_argument("--batch", type=int, default=64, help="pairs per TV-L1 solve")
    ap.add_argument("--cpu-pairs", type=int, default=2, help="pairs timed with OpenCV on the CPU")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    gray = _frames(args.pairs + 1, w, h)
    fig: dict[str, float | str] = {"device": str(device), "size": args.size, "pairs": args.pairs}

    tvl1_frames(gray[:3], device)  # warm-up (CUDA context, kernels)
    _sync(device)
    t0 = time.perf_counter()
    flow = tvl1_frames(gray, device, batch=args.batch)
    _sync(device)
    fig["tvl1_torch_s"] = time.perf_counter() - t0
    print(f"TV-L1 torch on {device}, {args.pairs} pairs at {args.size}, batch {args.batch}: "
          f"{fig['tvl1_torch_s']:.2f} s")

    if hasattr(cv2, "optflow") and args.cpu_pairs > 0:
        tv = cv2.optflow.DualTVL1OpticalFlow_create()
        k = min(args.cpu_pairs, args.pairs)
        t0 = time.perf_counter()
        ref = np.stack([tv.calc(gray[i], gray[i + 1], None) for i in range(k)])
        per = (time.perf_counter() - t0) / k
        fig["tvl1_opencv_cpu_s"] = per * args.pairs
        mean, worst = endpoint_error(flow[:k], ref)
        fig["tvl1_epe_mean_px"], fig["tvl1_epe_max_px"] = mean, worst
        print(f"TV-L1 OpenCV CPU ({cv2.getNumThreads()} threads): {per:.2f} s per pair -> "
              f"{fig['tvl1_opencv_cpu_s']:.1f} s per clip; ratio {fig['tvl1_opencv_cpu_s'] / fig['tvl1_torch_s']:.1f}x; "
              f"torch vs OpenCV endpoint error mean {mean:.4f} px, max {worst:.3f} px")
    else:
        print("TV-L1 OpenCV: cv2.optflow (opencv-contrib) not installed here; no CPU comparison")

    from regnet.data.backbones import BNInception

    rgb_net = BNInception(3).to(device).eval()
    flow_net = BNInception(10).to(device).eval()
    steps = args.pairs + 1
    crops = torch.rand(steps, 3, 224, 224, device=device)
    stacks = torch.rand(steps, 10, 224, 224, device=device)
    with torch.no_grad():
        rgb_net(crops[:2]), flow_net(stacks[:2])
        _sync(device)
        t0 = time.perf_counter()
        for lo in range(0, steps, 64):
            rgb_net(crops[lo:lo + 64])
            flow_net(stacks[lo:lo + 64])
        _sync(device)
    fig["bninception_s"] = time.perf_counter() - t0
    print(f"BN-Inception RGB + flow (10-channel stacks), {steps} steps on {device}: {fig['bninception_s']:.2f} s")
    total = float(fig["tvl1_torch_s"]) + float(fig["bninception_s"])
    fig["features_gpu_s_per_10s_clip"] = total
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(fig, fh, indent=1)
    print(f"features_gpu_s_per_10s_clip: {total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
