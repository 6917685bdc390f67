"""Latent-space maths, pure functions on tensors (no model, no UI).

Interpolation (lerp; slerp as in White 2016, "Sampling Generative Networks"), orthonormal
bases, and the three kinds of direction the explorer offers:

- KL-ranked dimensions: the latent dimensions whose posterior departs most from the
  prior on the data (mean KL per dimension) carry the most information;
- principal directions of the encoded data (GANSpace, Haerkonen et al. 2020), with the
  share of variance each explains;
- class attribute vectors (Larsen et al. 2016, section 5): mean z of a class minus mean
  z of the rest.

Shapes: a latent vector is (Z,), a batch (N, Z); a basis is (Z, K), one direction per
column, so that z = origin + basis @ values.
"""
from __future__ import annotations

import math

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation; a, b (Z,), t scalar or (T,) -> (Z,) or (T, Z)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == 0:
        return a + t * (b - a)
    return a[None] + t[:, None] * (b - a)[None]  # (T, Z)


def _perpendicular(u: torch.Tensor) -> torch.Tensor:
    """A unit vector orthogonal to the unit vector u (deterministic)."""
    e = torch.zeros_like(u)
    e[int(torch.argmin(u.abs()))] = 1.0  # the axis least aligned with u
    v = e - (e @ u) * u
    return v / v.norm()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation along the great circle from a to b, norms interpolated linearly.

    a, b (Z,), t scalar or (T,) -> (Z,) or (T, Z); exact at t = 0 and t = 1. Nearly parallel
    vectors (or a zero vector) fall back to lerp; antiparallel vectors, where the great circle
    is not unique, turn through a fixed perpendicular direction.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    scalar = t.dim() == 0
    t = t.reshape(-1, 1)  # (T, 1)
    na, nb = a.norm(), b.norm()
    if na < eps or nb < eps:
        out = lerp(a, b, t[:, 0])
        return out[0] if scalar else out
    ua, ub = a / na, b / nb
    cos = torch.clamp(ua @ ub, -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega < 1e-4:  # parallel: the arc is a line
        out = lerp(a, b, t[:, 0])
    else:
        if math.pi - float(omega) < 1e-4:  # antiparallel: pick a perpendicular to turn through
            ub_perp = _perpendicular(ua)
            omega = torch.tensor(math.pi, dtype=a.dtype, device=a.device)
        else:
            ub_perp = (ub - cos * ua) / torch.sin(omega)
        angle = t * omega  # (T, 1)
        direction = torch.cos(angle) * ua + torch.sin(angle) * ub_perp  # unit vectors (T, Z)
        out = ((1 - t) * na + t * nb) * direction
        out[t[:, 0] == 0] = a  # exact endpoints despite rounding
        out[t[:, 0] == 1] = b
    return out[0] if scalar else out


def slerp_rows(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """slerp row by row, batched: a, b (N, Z), t (N,) -> (N, Z), row i as slerp(a[i], b[i], t[i])
    (to rounding); for many pairs at once, as training's mixed codes and evaluate's midpoints."""
    t = t.to(a.dtype).reshape(-1, 1)  # (N, 1)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)  # (N, 1)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    ub_perp = (ub - cos * ua) / torch.sin(omega).clamp_min(1e-12)
    angle = t * omega
    out = ((1 - t) * na + t * nb) * (torch.cos(angle) * ua + torch.sin(angle) * ub_perp)
    straight = ((na < eps) | (nb < eps) | (omega < 1e-4))[:, 0]
    out = torch.where(straight[:, None], a + t * (b - a), out)
    out = torch.where((t == 0), a, torch.where(t == 1, b, out))
    for i in torch.nonzero((math.pi - omega[:, 0] < 1e-4) & ~straight).flatten().tolist():
        out[i] = slerp(a[i], b[i], t[i, 0])  # antiparallel: slerp's fixed perpendicular
    return out


def orthonormalize(vectors: torch.Tensor) -> torch.Tensor:
    """Columns of (Z, K) -> orthonormal columns spanning the same space (Gram-Schmidt via QR).

    Each output column keeps a positive dot product with its input column.
    """
    q, r = torch.linalg.qr(vectors)
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    return q * signs[None, :]


def compose(origin: torch.Tensor, basis: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """z = origin + basis @ values; origin (Z,), basis (Z, K), values (K,) -> (Z,), or a batch
    of values (N, K) -> (N, Z)."""
    return origin + values @ basis.T if values.dim() == 2 else origin + basis @ values


def coordinates(z: torch.Tensor, origin: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares slider values v with origin + basis @ v closest to z: (Z,) -> (K,), or a
    batch (N, Z) -> (N, K)."""
    d = z - origin
    solution = torch.linalg.lstsq(basis, d.T if d.dim() == 2 else d[:, None]).solution
    return solution.T if d.dim() == 2 else solution[:, 0]


def slice_grid(extent: float, n: int) -> torch.Tensor:
    """The n x n values (n*n, 2) of a square slice [-extent, extent]^2, row by row as a
    picture reads: the first value grows left to right, the second bottom to top."""
    t = torch.linspace(-extent, extent, n)
    a, b = torch.meshgrid(t, t.flip(0), indexing="xy")  # (n, n): rows top to bottom
    return torch.stack([a.flatten(), b.flatten()], 1)


def nearest_code(points: torch.Tensor, codes: torch.Tensor, at: torch.Tensor, k: int = 8) -> torch.Tensor:
    """The code behind a place `at` (2,) of a nonlinear map: the inverse-distance-weighted mean
    of the codes (M, Z) of its k nearest map points (M, 2) -> (Z,)."""
    d = (points - at).norm(dim=1)
    near = d.topk(min(k, len(d)), largest=False)
    w = 1.0 / (near.values + 1e-6)
    return (w[:, None] * codes[near.indices]).sum(0) / w.sum()


def pca(z: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Principal directions of z (N, Z) -> (mean (Z,), directions (Z, K) orthonormal columns,
    explained-variance ratio (K,), largest first).

    Signs are fixed so that the largest-magnitude entry of each direction is positive,
    which makes the result independent of the SVD implementation.
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"pca needs at least two vectors as (N, Z), got shape {tuple(z.shape)}")
    z = z.double()
    mean = z.mean(0)
    _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)
    var = s.pow(2)
    ratio = var / var.sum().clamp_min(1e-30)
    directions = vh.T  # (Z, min(N, Z))
    idx = directions.abs().argmax(0)
    signs = torch.sign(directions[idx, torch.arange(directions.shape[1])])
    signs[signs == 0] = 1.0
    directions = directions * signs[None, :]
    k = directions.shape[1] if k is None else min(k, directions.shape[1])
    return mean.float(), directions[:, :k].float(), ratio[:k].float()


def kl_ranking(mean_kl: torch.Tensor) -> torch.Tensor:
    """Per-dimension mean KL (Z,) -> dimension indices, most informative first (ties by index)."""
    return torch.sort(mean_kl, descending=True, stable=True).indices


def one_hot_basis(dims: torch.Tensor, latent_dim: int, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Dimension indices (K,) -> basis (Z, K) of one-hot columns, column j scaled by scale[dims[j]]."""
    basis = torch.zeros(latent_dim, len(dims))
    basis[dims, torch.arange(len(dims))] = 1.0 if scale is None else scale[dims].float()
    return basis


def class_vectors(z: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Attribute vector per class: mean z of the class minus mean z of all other examples.

    z (N, Z), labels (N,) in [0, num_classes) -> (C, Z). A class without examples (or with
    every example) gets a zero vector.
    """
    z = z.double()
    out = torch.zeros(num_classes, z.shape[1], dtype=torch.float64)
    for c in range(num_classes):
        inside = labels == c
        if 0 < int(inside.sum()) < len(labels):
            out[c] = z[inside].mean(0) - z[~inside].mean(0)
    return out.float()
