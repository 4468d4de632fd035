"""TV-L1 optical flow in torch, batched over frame pairs: OpenCV's ``DualTVL1OpticalFlow`` on a GPU.

The RegNet authors extract flow with OpenCV's TV-L1 (Zach, Pock and Bischof 2007, in Sánchez Pérez
et al.'s formulation), which runs about 0.6 s per 340x256 frame pair on a 2-core CPU: most of the
time of a paper-settings feature extraction. This module computes the same energy with the same
numerical scheme and parameters, step for step, as opencv_contrib's ``optflow/src/tvl1flow.cpp``
(CPU path), so a whole clip's pairs go through one batched solve on the GPU:

- images as float 0..255; a pyramid of ``nscales`` levels, each ``scale_step`` times the one
  above (bilinear, OpenCV's half-pixel convention, output size rounded), stopping before a level
  under 16 pixels; the flow starts at zero at the coarsest level and is upsampled (bilinear) and
  divided by ``scale_step`` on the way down;
- per level: centred gradients of I1 (one-sided halves at the borders, as OpenCV), then ``warps``
  times: I1 and its gradients warped by bicubic remapping (zero outside the image; OpenCV 4.x
  rounds the coordinates to 1/32 pixel, OpenCV 5 does not: ``remap_tab``), then up to ``outer_iterations`` rounds of
  [5x5 median filter of the flow, up to ``inner_iterations`` of: thresholding step (v), divergence
  of the dual field, primal update (u) with its squared change summed as the stopping error,
  forward differences, dual update (p)], stopping when the error falls to ``epsilon² x pixels``.

Each pair of the batch keeps its own stopping state, so a batch gives each pair exactly what a
separate solve would; remaining differences from OpenCV are float rounding (order of summation,
fused operations), which can move a stopping decision by one iteration. Tested against OpenCV on
CPU in tests/test_data_tvl1_torch.py (``gamma`` = 0 only, OpenCV's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TVL1Params:
    """OpenCV's defaults (``cv2.optflow.DualTVL1OpticalFlow_create()``)."""
    tau: float = 0.25
    lam: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5
    # OpenCV 4.x quantises remap coordinates to 1/32 pixel; OpenCV 5 does not (None).
    remap_tab: int | None = None


def _resize_linear(x: torch.Tensor, out_hw: tuple[int, int], inv_scale: tuple[float, float]) -> torch.Tensor:
    """cv::resize INTER_LINEAR on float images [B, 1, H, W]: source = (dst + 0.5) / inv_scale - 0.5,
    clamped at the borders (replicate)."""
    _, _, h, w = x.shape
    oh, ow = out_hw

    def axis(n_out: int, n_in: int, inv: float):
        d = torch.arange(n_out, dtype=torch.float64, device=x.device)
        f = (d + 0.5) / inv - 0.5
        s = torch.floor(f)
        f = f - s
        s = s.long()
        lo_out = s < 0
        f = torch.where(lo_out, torch.zeros_like(f), f)
        s = torch.where(lo_out, torch.zeros_like(s), s)
        hi_out = s >= n_in - 1
        f = torch.where(hi_out, torch.zeros_like(f), f)
        s = torch.where(hi_out, torch.full_like(s, n_in - 1), s)
        s1 = torch.clamp(s + 1, max=n_in - 1)
        return s, s1, f.to(x.dtype)

    y0, y1, fy = axis(oh, h, inv_scale[0])
    x0, x1, fx = axis(ow, w, inv_scale[1])
    rows = x[:, :, y0, :] * (1 - fy)[None, None, :, None] + x[:, :, y1, :] * fy[None, None, :, None]
    return rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx


def _centered_gradient(src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dx = torch.empty_like(src)
    dy = torch.empty_like(src)
    dx[..., 1:-1] = 0.5 * (src[..., 2:] - src[..., :-2])
    dx[..., 0] = 0.5 * (src[..., 1] - src[..., 0])
    dx[..., -1] = 0.5 * (src[..., -1] - src[..., -2])
    dy[..., 1:-1, :] = 0.5 * (src[..., 2:, :] - src[..., :-2, :])
    dy[..., 0, :] = 0.5 * (src[..., 1, :] - src[..., 0, :])
    dy[..., -1, :] = 0.5 * (src[..., -1, :] - src[..., -2, :])
    return dx, dy


def _forward_gradient(src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dx = torch.zeros_like(src)
    dy = torch.zeros_like(src)
    dx[..., :-1] = src[..., 1:] - src[..., :-1]
    dy[..., :-1, :] = src[..., 1:, :] - src[..., :-1, :]
    return dx, dy


def _divergence(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    div = torch.empty_like(v1)
    div[..., :, 1:] = v1[..., :, 1:] - v1[..., :, :-1]
    div[..., :, 0] = v1[..., :, 0]
    div[..., 1:, :] += v2[..., 1:, :] - v2[..., :-1, :]
    div[..., 0, :] += v2[..., 0, :]
    return div


def _median(x: torch.Tensor, k: int) -> torch.Tensor:
    """cv::medianBlur on float images (replicated border)."""
    r = k // 2
    p = F.pad(x, (r, r, r, r), mode="replicate")
    b, c, h, w = x.shape
    patches = p.unfold(2, k, 1).unfold(3, k, 1).reshape(b, c, h, w, k * k)
    return patches.median(dim=-1).values


def _remap_cubic(img: torch.Tensor, mx: torch.Tensor, my: torch.Tensor, tab: int | None) -> torch.Tensor:
    """cv::remap INTER_CUBIC, BORDER_CONSTANT 0: Keys cubic with a = -0.75 (as grid_sample), zero
    outside the image. OpenCV 5 samples at the exact float coordinates (checked against the
    installed build); OpenCV 4.x rounds them to 1/32 pixel first (its INTER_TAB_SIZE): ``tab=32``."""
    _, _, h, w = img.shape
    if tab:
        mx = torch.round(mx * tab) / tab
        my = torch.round(my * tab) / tab
    gx = mx * (2.0 / (w - 1)) - 1.0
    gy = my * (2.0 / (h - 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[:, 0]
    return F.grid_sample(img, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def _one_scale(i0: torch.Tensor, i1: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor,
               p: TVL1Params) -> tuple[torch.Tensor, torch.Tensor]:
    b, _, h, w = i0.shape
    scaled_eps = p.epsilon * p.epsilon * h * w
    i1x, i1y = _centered_gradient(i1)
    zeros = torch.zeros_like(i0)
    p11, p12, p21, p22 = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
    l_t = p.lam * p.theta
    taut = p.tau / p.theta
    feps = float(np.finfo(np.float32).eps)
    ys = torch.arange(h, dtype=i0.dtype, device=i0.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=i0.dtype, device=i0.device).view(1, 1, 1, w)
    for _ in range(p.warps):
        mx, my = xs + u1, ys + u2
        i1w = _remap_cubic(i1, mx, my, p.remap_tab)
        i1wx = _remap_cubic(i1x, mx, my, p.remap_tab)
        i1wy = _remap_cubic(i1y, mx, my, p.remap_tab)
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
        # Per pair: still iterating in this warp (OpenCV's `error > scaledEpsilon`).
        active = torch.ones(b, dtype=torch.bool, device=i0.device)
        for _ in range(p.outer_iterations):
            if not bool(active.any()):
                break
            a = active.view(b, 1, 1, 1)
            if p.median_filtering > 1:
                u1 = torch.where(a, _median(u1, p.median_filtering), u1)
                u2 = torch.where(a, _median(u2, p.median_filtering), u2)
            for _ in range(p.inner_iterations):
                if not bool(active.any()):
                    break
                a = active.view(b, 1, 1, 1)
                rho = rho_c + (i1wx * u1 + i1wy * u2)
                lo = rho < -l_t * grad
                hi = rho > l_t * grad
                mid = ~lo & ~hi & (grad > feps)
                fi = torch.where(mid, -rho / torch.where(mid, grad, torch.ones_like(grad)), zeros)
                d1 = torch.where(lo, l_t * i1wx, torch.where(hi, -l_t * i1wx, fi * i1wx))
                d2 = torch.where(lo, l_t * i1wy, torch.where(hi, -l_t * i1wy, fi * i1wy))
                v1, v2 = u1 + d1, u2 + d2
                n1 = v1 + p.theta * _divergence(p11, p12)
                n2 = v2 + p.theta * _divergence(p21, p22)
                err = ((n1 - u1) ** 2 + (n2 - u2) ** 2).sum(dim=(1, 2, 3))
                u1 = torch.where(a, n1, u1)
                u2 = torch.where(a, n2, u2)
                u1x, u1y = _forward_gradient(u1)
                u2x, u2y = _forward_gradient(u2)
                ng1 = 1.0 + taut * torch.hypot(u1x, u1y)
                ng2 = 1.0 + taut * torch.hypot(u2x, u2y)
                p11 = torch.where(a, (p11 + taut * u1x) / ng1, p11)
                p12 = torch.where(a, (p12 + taut * u1y) / ng1, p12)
                p21 = torch.where(a, (p21 + taut * u2x) / ng2, p21)
                p22 = torch.where(a, (p22 + taut * u2y) / ng2, p22)
                active = active & (err > scaled_eps)
    return u1, u2


def tvl1_flow(frames0: torch.Tensor, frames1: torch.Tensor, params: TVL1Params = TVL1Params()) -> torch.Tensor:
    """Flow [B, H, W, 2] (x, y) from gray frames ``frames0`` to ``frames1`` [B, H, W] (uint8 or
    float 0..255), on their device."""
    if frames0.shape != frames1.shape or frames0.dim() != 3:
        raise ValueError(f"frames must be two [B, H, W] batches of one shape, got {tuple(frames0.shape)} "
                         f"and {tuple(frames1.shape)}")
    i0s = [frames0.float()[:, None]]
    i1s = [frames1.float()[:, None]]
    for _ in range(1, params.nscales):
        h, w = i0s[-1].shape[-2:]
        oh, ow = int(round(h * params.scale_step)), int(round(w * params.scale_step))
        nxt0 = _resize_linear(i0s[-1], (oh, ow), (params.scale_step, params.scale_step))
        if ow < 16 or oh < 16:
            break
        i0s.append(nxt0)
        i1s.append(_resize_linear(i1s[-1], (oh, ow), (params.scale_step, params.scale_step)))
    u1 = torch.zeros_like(i0s[-1])
    u2 = torch.zeros_like(i0s[-1])
    for s in range(len(i0s) - 1, -1, -1):
        u1, u2 = _one_scale(i0s[s], i1s[s], u1, u2, params)
        if s == 0:
            break
        h, w = i0s[s - 1].shape[-2:]
        hs, ws = u1.shape[-2:]
        inv = (h / hs, w / ws)
        u1 = _resize_linear(u1, (h, w), inv) * (1.0 / params.scale_step)
        u2 = _resize_linear(u2, (h, w), inv) * (1.0 / params.scale_step)
    return torch.stack([u1[:, 0], u2[:, 0]], dim=-1)


def tvl1_frames(gray: np.ndarray, device: str | torch.device = "cpu", batch: int = 64,
                params: TVL1Params = TVL1Params()) -> np.ndarray:
    """Flow for consecutive gray frames [N, H, W] uint8 -> [N - 1, H, W, 2] float32, ``batch`` pairs
    per solve."""
    t = torch.from_numpy(np.ascontiguousarray(gray)).to(device)
    out = []
    for lo in range(0, len(gray) - 1, batch):
        hi = min(len(gray) - 1, lo + batch)
        with torch.no_grad():
            out.append(tvl1_flow(t[lo:hi], t[lo + 1:hi + 1], params).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + gray.shape[1:] + (2,), np.float32)


def endpoint_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and max Euclidean distance between two flow fields [..., 2]."""
    d = np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(-1))
    return float(d.mean()), float(d.max()) if d.size else math.nan
