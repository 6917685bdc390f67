"""Fitting a picture's code past the encoder's one-pass guess (iterative inference).

The encoder amortises inference: one forward pass gives the posterior mean of q(z|x), shared
machinery for every picture, so for any one picture it is not the code whose decoding comes
closest (the amortisation gap, Cremer et al. 2018, "Inference Suboptimality in Variational
Autoencoders"). `refine_codes` starts at that mean and takes Adam steps on the code alone (the
networks do not change) towards the code whose decoding the model finds closest to the picture:

    minimise over z:   L_llike(x, D(z)) + prior_weight * |z|^2 / 2

with the reconstruction loss the model was trained with: the discriminator-feature distance of
VAE/GAN (Larsen et al. 2016's L_llike, half the squared error of Dis_l), or the pixels'
Bernoulli likelihood of a plain VAE. prior_weight = 1 would be the mode of the posterior
under the training prior N(0, I); measured on 1,000 test pictures it keeps much less of the
gain than the plain fit (prior_weight 0, the default), and the fitted sampling mixture as the
prior term keeps even less (docs/training-notes.md, "Refined codes"). This is the semi-amortised inference of Kim et al. 2018 at test time only, and the
encoder-initialised inversion GAN editors use (Zhu et al. 2016, "Generative Visual Manipulation
on the Natural Image Manifold"). Gradients are taken with torch.autograd.grad for the code only,
so the model's parameters never hold a .grad and concurrent calls on one model are safe.
"""
from __future__ import annotations

import torch

from .losses import feature_llike, pixel_llike

STEPS = 50  # Reconstruct's default: most of the gain (docs/training-notes.md, "Refined codes")
STEPS_RANGE = (0, 200)
LR = 0.1


def flat_figures(metrics: dict) -> dict:
    """metrics.json with evaluate --refine's nested "refined" figures also as refined_* keys."""
    return metrics | {f"refined_{k}": v for k, v in metrics.get("refined", {}).items()}


def _target(model, x: torch.Tensor) -> torch.Tensor | None:
    """What a reconstruction of x is held to: Dis_l(x) (VAE/GAN); None for a plain VAE, whose
    loss compares the pixels themselves."""
    return model.discriminator(x)[1] if model.discriminator is not None else None


def _loss(model, x: torch.Tensor, target: torch.Tensor | None, z: torch.Tensor,
          prior_weight: float) -> torch.Tensor:
    """Per picture (B,): L_llike(x, D(z)) + prior_weight * |z|^2 / 2, with the model's own
    reconstruction loss (vaegan.losses)."""
    rec = model.decode(z)
    llike = (feature_llike(target, model.discriminator(rec)[1]) if target is not None
             else pixel_llike(x, rec))
    return llike + 0.5 * prior_weight * z.pow(2).sum(1)


def objective(model, x: torch.Tensor, z: torch.Tensor, prior_weight: float = 0.0) -> torch.Tensor:
    """What refine_codes lowers, per picture (B,): L_llike(x, D(z)) + prior_weight * |z|^2 / 2."""
    with torch.no_grad():
        return _loss(model, x, _target(model, x), z, prior_weight)


def refine_codes(model, x: torch.Tensor, steps: int = STEPS, lr: float = LR,
                 z0: torch.Tensor | None = None, prior_weight: float = 0.0) -> torch.Tensor:
    """Pictures x (B, C, H, W) in [0, 1] -> codes (B, Z) after `steps` Adam steps on
    L_llike(x, D(z)) + prior_weight * |z|^2 / 2 from z0 (default: the encoder's posterior means). Each
    picture's code moves by its own loss only (the batch's losses are summed), so a batch gives
    the codes one call per picture would. The model should be in eval mode (BatchNorm
    statistics fixed). steps = 0 returns the start."""
    try:
        whole = float(steps).is_integer() and STEPS_RANGE[0] <= float(steps) <= STEPS_RANGE[1]
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"steps must be a whole number from {STEPS_RANGE[0]} to {STEPS_RANGE[1]}, "
                         f"got {steps!r}")
    steps = int(steps)
    with torch.inference_mode(False), torch.no_grad():
        x = x.to(model.device).float().clone()  # a normal tensor, even if made under inference_mode
        start = model.encode(x).mean if z0 is None else z0.to(model.device).float()
        z = start.clone()
        target = _target(model, x)
    if steps == 0:
        return z
    with torch.inference_mode(False), torch.enable_grad():
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            z.grad, = torch.autograd.grad(_loss(model, x, target, z, prior_weight).sum(), z)
            opt.step()
    return z.detach()

