"""RegNet losses (paper eq. 4-7; DESIGN §8 for the authors' weighting).

D: L_D = 1/2 [BCE(D(V, S), 1) + BCE(D(V, S_hat), 0)]  (eq. 4, one D step per G step).
G, ``train.loss_form``:

- 'code' (default, the authors' ``lambda_Oriloss``):
  ``L_G = BCE(D(V, S_hat), 1) + beta * [alpha * MSE(I_hat, S) + MSE(S_hat, S)]`` with beta = 10,000,
  i.e. the reconstruction dominates and the adversarial term weighs 1e-4 relative to it.
- 'paper': eq. 7 read as ``L_G = MSE(S_hat, S) + alpha * MSE(I_hat, S) + L_adv / beta`` — the same
  relative weights, the whole loss 1/beta smaller. Under Adam the two give nearly the same updates
  (Adam is invariant to a constant loss scale up to its epsilon); the option exists so a result can
  say which form it used.

The discriminator's sigmoid is folded into BCE-with-logits: the same value, fp32-safe under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regnet.config import TrainConfig
from regnet.errors import UserError

LOSS_FORMS = ("code", "paper")


def bce_logits(logits: torch.Tensor, real: bool) -> torch.Tensor:
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (bce_logits(logits_real, True) + bce_logits(logits_fake, False))


def generator_loss(logits_fake: torch.Tensor, mel_init: torch.Tensor, mel_post: torch.Tensor,
                   target: torch.Tensor, t: TrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total G loss and its parts (``g_adv``, ``l2_init``, ``l2_post``) for logging."""
    target = target.float()
    adv = bce_logits(logits_fake, True)
    l2_init = F.mse_loss(mel_init.float(), target)
    l2_post = F.mse_loss(mel_post.float(), target)
    recon = t.alpha * l2_init + l2_post
    if t.loss_form == "code":
        total = adv + t.beta * recon
    elif t.loss_form == "paper":
        total = recon + adv / t.beta
    else:
        raise UserError(f"train.loss_form: '{t.loss_form}' is not one of {', '.join(LOSS_FORMS)}")
    return total, {"g_adv": adv.detach(), "l2_init": l2_init.detach(), "l2_post": l2_post.detach()}
