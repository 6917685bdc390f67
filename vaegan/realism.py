"""The realism meter: two numbers a person can read for any decoded picture.

- How real the discriminator finds it: sigmoid(D(x)), the probability it gives that x is a
  real picture (VAE/GAN only; a plain VAE has no discriminator).
- How typical its code is: log p(z) under the model's sampling prior (the fitted mixture, or
  N(0, I)).

Each comes with a percentile against the test pictures, computed once by the explorer-assets
build (vaegan/assets.py): the discriminator's logits for their reconstructions, and their
codes' log-densities. "At the 40th percentile" then means: 40% of real test garments, passed
through the model, score lower.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Realism:
    real_probability: float | None  # D's probability that the picture is real; None: no D
    real_percentile: float | None  # among the test pictures' reconstructions; None: no reference
    log_density: float  # log p(z) under the sampling prior (nats)
    density_percentile: float | None  # among the test pictures' codes; None: no reference

    def text(self) -> str:
        """One Markdown line for the UI."""
        pct = lambda p: "" if p is None else f" ({ordinal(p)} percentile of test pictures)"  # noqa: E731
        parts = []
        if self.real_probability is None:
            parts.append("**Real?** no discriminator in this model (a plain VAE)")
        else:
            parts.append(f"**Real?** {100 * self.real_probability:.0f}% by the discriminator"
                         + pct(self.real_percentile))
        parts.append(f"**Typical?** log p(z) {self.log_density:.1f}" + pct(self.density_percentile))
        return " · ".join(parts)


def ordinal(p: float) -> str:
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def percentile(reference: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """100 x the share of `reference` (sorted, (N,)) below each value (ties count half) -> (B,)."""
    ref = reference.double()
    v = values.double()
    below = torch.searchsorted(ref, v, right=False)
    at_or_below = torch.searchsorted(ref, v, right=True)
    return 100.0 * (below + at_or_below).double() / (2 * len(ref))


@torch.inference_mode()
def real_logits(model, x: torch.Tensor) -> torch.Tensor | None:
    """The discriminator's logits for pictures (B, C, H, W) in [0, 1] -> (B,); None without one."""
    if model.discriminator is None:
        return None
    return model.discriminator(x.to(model.device))[0].float().cpu()


@torch.inference_mode()
def measure(model, z: torch.Tensor, x: torch.Tensor, logit_ref: torch.Tensor | None = None,
            density_ref: torch.Tensor | None = None) -> list[Realism]:
    """Realism of codes z (B, Z) decoded as x (B, C, H, W); the references are sorted (N,)."""
    logits, log_p = real_logits(model, x), model.prior_log_prob(z)
    has = lambda ref: ref is not None and len(ref) > 0  # noqa: E731
    prob = None if logits is None else torch.sigmoid(logits)
    real_pct = percentile(logit_ref, logits) if logits is not None and has(logit_ref) else None
    density_pct = percentile(density_ref, log_p) if has(density_ref) else None
    at = lambda t, i: None if t is None else float(t[i])  # noqa: E731
    return [Realism(at(prob, i), at(real_pct, i), float(log_p[i]), at(density_pct, i))
            for i in range(len(z))]
