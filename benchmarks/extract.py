"""Seconds per 10 s clip for each extraction stage: decode, flow, backbone, mel.

Writes one 10 s 640x360 30 fps clip with 44.1 kHz stereo sound (a moving textured scene), then
times each stage with the paper geometry (215 steps at 340x256, 860 mel frames). Slow stages
(TV-L1, the CNN backbones with random weights) are timed on a few frames and scaled to 215 steps;
those lines say so. Usage: ``python benchmarks/extract.py [--full] [--threads N]``.
Last line: ``extract_paper_default_s_per_10s_clip: <seconds>`` (decode + auto flow + simple + audio/mel).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from regnet.config import Config
from regnet.data.audio import load_audio
from regnet.data.backbones import BNInception, ResNet, SimpleBackbone, TorchBackbone
from regnet.data.flow import FlowComputer, resolve_flow_method
from regnet.data.mel import log_mel
from regnet.data.video import probe, read_video, write_video


def make_clip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w, h, n = 640, 360, 300
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h * 2, w * 2, 3), dtype=np.uint8), (0, 0), 3)
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        x, y = (i * 3) % w, (i * 2) % h  # panning camera
        frames[i] = bg[y:y + h, x:x + w]
        cv2.circle(frames[i], (int(320 + 200 * np.sin(i / 10)), 180), 40, (255, 255, 0), -1)
    sr = 44100
    t = np.arange(10 * sr) / sr
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * rng.standard_normal(len(t))], 1)
    return write_video(path, frames, 30, audio, sr)


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="run slow stages on all 215 steps")
    ap.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    d = Config().data
    steps = d.n_steps
    sample = steps if args.full else 12
    print(f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}; "
          f"shared machine: figures taken under contention vary")
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4")
        info = probe(clip)
        res = {}
        res["decode"], dec = timed(lambda: read_video(clip, d.fps, d.clip_seconds, d.flow_size, info), 2)
        frames = dec.frames
        print(f"decode 640x360@30 -> {len(frames)} x {d.flow_size[0]}x{d.flow_size[1]}: "
              f"{res['decode']:.2f} s")
        res["flow_farneback"], flows = timed(lambda: FlowComputer("farneback", 20).frames(frames))
        print(f"flow farneback, {steps} steps: {res['flow_farneback']:.2f} s")
        small = [cv2.resize(f, (170, 128), interpolation=cv2.INTER_AREA) for f in frames]
        res["flow_farneback_small"], _ = timed(lambda: FlowComputer("farneback", 20).frames(np.stack(small)))
        print(f"flow farneback at 170x128 (small/tiny presets): {res['flow_farneback_small']:.2f} s")
        if resolve_flow_method("auto") == "tvl1":
            t, _ = timed(lambda: FlowComputer("tvl1", 20).frames(frames[:sample + 1]))
            res["flow_tvl1"] = t * (steps / sample)
            print(f"flow tv-l1: {res['flow_tvl1']:.1f} s"
                  + ("" if args.full else f" (timed on {sample} pairs, scaled to {steps})"))
        simple = SimpleBackbone(20)
        res["simple"], _ = timed(lambda: (simple.rgb(frames), simple.flow(flows)), 2)
        print(f"backbone simple (rgb + flow): {res['simple']:.2f} s")
        cpu = torch.device("cpu")
        for name, nets in (("bninception", (BNInception(3), BNInception(10))),
                           ("resnet50", (ResNet(50), ResNet(50, 10)))):
            bb = TorchBackbone("bninception" if name == "bninception" else "resnet", *nets, 224, 20, cpu)
            t, _ = timed(lambda: (bb.rgb(frames[:sample]), bb.flow(flows[:sample])))
            res[name] = t * (steps / sample)
            print(f"backbone {name} (random weights, rgb + flow, 224 crops): {res[name]:.1f} s"
                  + ("" if args.full else f" (timed on {sample} steps, scaled to {steps})"))
        res["audio"], wav = timed(lambda: load_audio(clip, d.sample_rate, d.clip_seconds), 2)
        print(f"audio decode + 44.1k stereo -> 22.05k mono: {res['audio']:.2f} s")
        log_mel(wav, d)  # first call pays librosa's imports
        res["mel"], mel = timed(lambda: log_mel(wav, d), 3)
        print(f"log-mel {mel.shape[0]}x{mel.shape[1]}: {res['mel']:.3f} s")
        auto_flow = res.get("flow_tvl1", res["flow_farneback"])
        total = res["decode"] + auto_flow + res["simple"] + res["audio"] + res["mel"]
        small_total = res["decode"] + res["flow_farneback_small"] + res["simple"] + res["audio"] + res["mel"]
        print(f"small/tiny preset pipeline (farneback 170x128, simple), per 10 s: {small_total:.2f} s")
        print(f"extract_paper_default_s_per_10s_clip: {total:.1f}")


if __name__ == "__main__":
    main()
