"""RegNet losses (paper eq. 4-7; docs/paper.md for the authors' weighting).

D: L_D = 1/2 [BCE(D(V, S), 1) + BCE(D(V, S_hat), 0)]  (eq. 4, one D step per G step).
G, ``train.loss_form``:

- 'code' (default, the authors' ``lambda_Oriloss``):
  ``L_G = BCE(D(V, S_hat), 1) + beta * [alpha * MSE(I_hat, S) + MSE(S_hat, S)]`` with beta = 10,000,
  i.e. the reconstruction dominates and the adversarial term weighs 1e-4 relative to it.
- 'eq7': Eq. 7 as printed, beta on the GAN terms:
  ``L_G = beta * BCE(D(V, S_hat), 1) + alpha * MSE(I_hat, S) + MSE(S_hat, S)`` and
  ``L_D = beta * 1/2 [BCE(D(V, S), 1) + BCE(D(V, S_hat), 0)]``. With the authors' beta = 10,000 the
  adversarial term then dominates the reconstruction 1e4 : 1 (the code form's weighting inverted).
- 'paper' (kept so earlier runs still load and say what they were): the code form divided by beta,
  ``MSE(S_hat, S) + alpha * MSE(I_hat, S) + L_adv / beta``; under Adam nearly the same updates as
  'code' (Adam is invariant to a constant loss scale up to its epsilon). It is not Eq. 7.

Which runs used which: every run in ``results/`` (quickstart, ``ablate``) used 'code', the default;
a run with another form says so in its deviations (`regnet.deviations`) and its config.yaml.

``train.adversarial = False`` is the paper's woGAN (§V-I): no discriminator update and no adversarial
term; the generator loss is the reconstruction alone, weighted as the form says.

The discriminator's sigmoid is folded into BCE-with-logits: the same value, fp32-safe under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regnet.config import TrainConfig
from regnet.errors import UserError

LOSS_FORMS = ("code", "eq7", "paper")


def bce_logits(logits: torch.Tensor, real: bool) -> torch.Tensor:
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor,
                       t: TrainConfig | None = None) -> torch.Tensor:
    loss = 0.5 * (bce_logits(logits_real, True) + bce_logits(logits_fake, False))
    return loss * t.beta if t is not None and t.loss_form == "eq7" else loss


def generator_loss(logits_fake: torch.Tensor | None, mel_init: torch.Tensor, mel_post: torch.Tensor,
                   target: torch.Tensor, t: TrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total G loss and its parts (``g_adv``, ``l2_init``, ``l2_post``) for logging.
    ``logits_fake`` None: no adversarial term (woGAN)."""
    target = target.float()
    adv = bce_logits(logits_fake, True) if logits_fake is not None else mel_post.new_zeros((), dtype=torch.float32)
    l2_init = F.mse_loss(mel_init.float(), target)
    l2_post = F.mse_loss(mel_post.float(), target)
    recon = t.alpha * l2_init + l2_post
    if t.loss_form == "code":
        total = adv + t.beta * recon
    elif t.loss_form == "eq7":
        total = t.beta * adv + recon
    elif t.loss_form == "paper":
        total = recon + adv / t.beta
    else:
        raise UserError(f"train.loss_form: '{t.loss_form}' is not one of {', '.join(LOSS_FORMS)}")
    return total, {"g_adv": adv.detach(), "l2_init": l2_init.detach(), "l2_post": l2_post.detach()}
