"""The batched torch TV-L1 against OpenCV's DualTVL1 on the CPU (the CUDA path is the same code)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from regnet.data.flow import FlowComputer, tvl1_available
from regnet.data.tvl1_torch import TVL1Params, _remap_cubic, _resize_linear, tvl1_frames

pytestmark = pytest.mark.skipif(not tvl1_available(), reason="opencv-contrib's cv2.optflow is not installed")


def _scene(h: int = 48, w: int = 64, n: int = 3) -> np.ndarray:
    """A smooth background drifting by subpixel steps and a textured square moving over it."""
    rng = np.random.default_rng(0)

    def norm(a):
        return (a - a.min()) / (a.max() - a.min())
    bg = norm(cv2.GaussianBlur(rng.random((2 * h, 2 * w)).astype(np.float32), (0, 0), 4)) * 200
    fg = norm(cv2.GaussianBlur(rng.random((16, 16)).astype(np.float32), (0, 0), 1.5)) * 255
    frames = []
    for k in range(n):
        f = cv2.warpAffine(bg, np.float32([[1, 0, -0.5 * k], [0, 1, -0.3 * k]]), (2 * w, 2 * h))[:h, :w].copy()
        f[12 + k: 28 + k, 16 + 2 * k: 32 + 2 * k] = fg
        frames.append(f)
    return np.stack(frames).clip(0, 255).astype(np.uint8)


def test_building_blocks_equal_opencv():
    rng = np.random.default_rng(1)
    img = (rng.random((20, 24)) * 255).astype(np.float32)
    t = torch.from_numpy(img)[None, None]
    small = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    ours = _resize_linear(t, small.shape, (0.8, 0.8))[0, 0].numpy()
    np.testing.assert_allclose(ours, small, atol=1e-3)
    ys, xs = np.mgrid[0:20, 0:24].astype(np.float32)
    mx = (xs + rng.uniform(-1.5, 1.5, xs.shape)).astype(np.float32)
    my = (ys + rng.uniform(-1.5, 1.5, ys.shape)).astype(np.float32)
    ref = cv2.remap(img, mx, my, cv2.INTER_CUBIC)
    ours = _remap_cubic(t, torch.from_numpy(mx)[None, None], torch.from_numpy(my)[None, None], None)[0, 0].numpy()
    if cv2.__version__.startswith("4."):
        ours = _remap_cubic(t, torch.from_numpy(mx)[None, None], torch.from_numpy(my)[None, None], 32)[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_flow_equals_opencv_dual_tvl1_to_a_stated_tolerance():
    gray = _scene()
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    ref = np.stack([tv.calc(gray[i], gray[i + 1], None) for i in range(len(gray) - 1)])
    params = TVL1Params(remap_tab=32 if cv2.__version__.startswith("4.") else None)
    ours = tvl1_frames(gray, params=params)
    epe = np.sqrt(((ours.astype(np.float64) - ref) ** 2).sum(-1))
    # Stated tolerance: mean endpoint error 0.01 px, 99th percentile 0.05 px (the flow itself is
    # about a pixel): float rounding only, which can flip a median or a stopping test somewhere.
    assert epe.mean() < 0.01 and np.percentile(epe, 99) < 0.05, (epe.mean(), np.percentile(epe, 99))
    # and it is a real flow: the square moves 2 px right, 1 px down
    assert abs(float(np.median(ours[0, 16:24, 22:30, 0])) - 2.0) < 0.3


def test_batched_solve_gives_each_pair_what_a_single_solve_gives():
    gray = _scene(n=4)
    together = tvl1_frames(gray, batch=8)
    apart = np.concatenate([tvl1_frames(gray[i:i + 2], batch=1) for i in range(3)])
    np.testing.assert_allclose(together, apart, atol=1e-4)


def test_flow_computer_uses_the_torch_solver_only_on_cuda():
    assert FlowComputer("tvl1", 20.0, "cpu").torch_device is None
    fc = FlowComputer("tvl1", 20.0, "cuda:0")
    assert fc.torch_device == "cuda:0" and fc._tvl1 is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_flow_equals_cpu_flow():
    gray = _scene()
    np.testing.assert_allclose(tvl1_frames(gray, "cuda"), tvl1_frames(gray, "cpu"), atol=5e-3)
