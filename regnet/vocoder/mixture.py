"""Discretised mixture of logistics (PixelCNN++ / r9y9 wavenet_vocoder output, 16-bit audio).

The network emits ``3 * n_mix`` channels per sample, laid out as r9y9 does: ``[logits | means |
log_scales]``, each ``n_mix`` wide. Audio lives in [-1, 1] quantised to ``num_classes`` levels; a
level is the interval ``y ± 1/(num_classes - 1)``, the two end levels take the tails.

Sampling takes its uniforms as arguments, so the reference sampler, the fast sampler and a CUDA
graph replay can all be fed the same random stream and compared sample for sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NUM_CLASSES_16BIT = 2 ** 16
# Uniforms are kept away from 0 and 1 so the Gumbel and logistic transforms stay finite.
U_EPS = 1e-5


def split_params(y: torch.Tensor, log_scale_min: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``y [..., 3 * n_mix]`` -> (logits, means, clamped log_scales), each ``[..., n_mix]``."""
    n_mix = y.shape[-1] // 3
    logits = y[..., :n_mix]
    means = y[..., n_mix:2 * n_mix]
    log_scales = torch.clamp(y[..., 2 * n_mix:3 * n_mix], min=log_scale_min)
    return logits, means, log_scales


def mol_log_prob(y_hat: torch.Tensor, target: torch.Tensor, log_scale_min: float,
                 num_classes: int = NUM_CLASSES_16BIT) -> torch.Tensor:
    """Log-probability of each target level under the mixture.

    ``y_hat [B, 3 * n_mix, T]`` (network output), ``target [B, T]`` in [-1, 1] -> ``[B, T]``.
    """
    logits, means, log_scales = split_params(y_hat.transpose(1, 2).float(), log_scale_min)
    y = target.float().unsqueeze(-1)
    half_bin = 1.0 / (num_classes - 1)
    centered = y - means
    inv_s = torch.exp(-log_scales)
    plus_in = inv_s * (centered + half_bin)
    min_in = inv_s * (centered - half_bin)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid(plus_in): lowest level takes the left tail
    log_one_minus_cdf_min = -F.softplus(min_in)  # log(1 - sigmoid(min_in)): highest level, right tail
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centered
    # When the bin mass underflows float32, fall back to density * bin width (as PixelCNN++ does).
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in) - math.log((num_classes - 1) / 2)
    inner = torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)), log_pdf_mid)
    inner = torch.where(y > 0.999, log_one_minus_cdf_min, inner)
    log_probs = torch.where(y < -0.999, log_cdf_plus, inner)
    return torch.logsumexp(log_probs + F.log_softmax(logits, dim=-1), dim=-1)


def mol_loss(y_hat: torch.Tensor, target: torch.Tensor, log_scale_min: float,
             num_classes: int = NUM_CLASSES_16BIT) -> torch.Tensor:
    """Mean negative log-likelihood per sample (r9y9 sums; a mean keeps lr independent of T)."""
    return -mol_log_prob(y_hat, target, log_scale_min, num_classes).mean()


def draw_uniforms(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniforms in [U_EPS, 1 - U_EPS]: the random stream every sampler consumes."""
    u = torch.rand(shape, generator=generator, device=device)
    return u * (1.0 - 2.0 * U_EPS) + U_EPS


def sample_mol(y: torch.Tensor, u: torch.Tensor, log_scale_min: float) -> torch.Tensor:
    """One sample per row from mixture params ``y [B, 3 * n_mix]`` given uniforms ``u [B, n_mix + 1]``.

    The first ``n_mix`` uniforms pick the component by the Gumbel-max trick, the last one draws the
    logistic. Returns ``[B]`` in [-1, 1].
    """
    logits, means, log_scales = split_params(y.float(), log_scale_min)
    n_mix = logits.shape[-1]
    gumbel = logits - torch.log(-torch.log(u[:, :n_mix]))
    k = gumbel.argmax(dim=-1, keepdim=True)
    mean = means.gather(-1, k).squeeze(-1)
    log_scale = log_scales.gather(-1, k).squeeze(-1)
    v = u[:, n_mix]
    x = mean + torch.exp(log_scale) * (torch.log(v) - torch.log1p(-v))
    return torch.clamp(x, -1.0, 1.0)
