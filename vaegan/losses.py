"""Losses of VAE/GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric"), as pure functions of tensors.

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -log N(Dis_l(x) | Dis_l(x~), I)  (up to a constant: half the squared error)
    L_GAN   = BCE of the discriminator over real x, reconstructions x~ and samples x_p

Which loss trains which network (Algorithm 1 of the paper):
    encoder       <- L_prior + L_llike
    decoder       <- gamma * L_llike + L_GAN_gen  (non-saturating generator form)
    discriminator <- L_GAN_dis
All losses are summed over the elements of one example and averaged over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import DiagonalGaussian


def kl_loss(posterior: DiagonalGaussian) -> torch.Tensor:
    """L_prior: KL(q(z|x) || N(0, I)), summed over latent dims, mean over the batch."""
    return posterior.kl().sum(1).mean()


def feature_llike(feats_real: torch.Tensor, feats_rec: torch.Tensor) -> torch.Tensor:
    """L_llike per example (B,): Gaussian negative log-likelihood (unit variance) of Dis_l(x)
    under Dis_l(x~)."""
    return 0.5 * (feats_rec - feats_real).pow(2).flatten(1).sum(1)


def feature_llike_loss(feats_real: torch.Tensor, feats_rec: torch.Tensor) -> torch.Tensor:
    """L_llike, mean over the batch."""
    return feature_llike(feats_real, feats_rec).mean()


def pixel_llike(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Plain-VAE reconstruction per example (B,): Bernoulli negative log-likelihood of pixels
    in [0, 1]."""
    x_rec = x_rec.clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(x_rec, x, reduction="none").flatten(1).sum(1)


def pixel_llike_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Plain-VAE reconstruction, mean over the batch."""
    return pixel_llike(x, x_rec).mean()


def gan_discriminator_loss(logits_real: torch.Tensor, logits_rec: torch.Tensor,
                           logits_prior: torch.Tensor) -> torch.Tensor:
    """L_GAN for the discriminator: real -> 1, reconstructions and prior samples -> 0."""
    bce = F.binary_cross_entropy_with_logits
    return (bce(logits_real, torch.ones_like(logits_real))
            + bce(logits_rec, torch.zeros_like(logits_rec))
            + bce(logits_prior, torch.zeros_like(logits_prior)))


def gan_generator_loss(logits_rec: torch.Tensor, logits_prior: torch.Tensor) -> torch.Tensor:
    """Non-saturating form of -L_GAN for the decoder: fakes should be classified real."""
    bce = F.binary_cross_entropy_with_logits
    return (bce(logits_rec, torch.ones_like(logits_rec))
            + bce(logits_prior, torch.ones_like(logits_prior)))
