"""Latent maths: interpolation endpoints and norms, bases, PCA, KL ranking, class vectors."""
import math

import pytest
import torch

from vaegan import latent


def _pair(dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(dim, generator=g), torch.randn(dim, generator=g)


def test_lerp_endpoints_and_midpoint():
    a, b = _pair()
    path = latent.lerp(a, b, torch.linspace(0, 1, 5))
    assert path.shape == (5, 16)
    assert torch.equal(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path[2], (a + b) / 2)
    assert torch.allclose(latent.lerp(a, b, 0.25), a + 0.25 * (b - a))


def test_slerp_endpoints_and_norm_on_the_sphere():
    a, b = _pair()
    b = b / b.norm() * a.norm()  # same norm: the whole arc stays on the sphere
    path = latent.slerp(a, b, torch.linspace(0, 1, 9))
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(9), rtol=1e-5)
    # lerp cuts through the inside of the sphere
    assert latent.lerp(a, b, 0.5).norm() < a.norm() - 1e-3
    # equal angular steps
    cos = torch.nn.functional.cosine_similarity(path[:-1], path[1:])
    assert torch.allclose(cos, cos[0].expand_as(cos), atol=1e-5)


def test_slerp_interpolates_norms_linearly():
    a, b = _pair(seed=3)
    b = 3 * b / b.norm()
    a = a / a.norm()
    mid = latent.slerp(a, b, 0.5)
    assert mid.shape == (16,)
    assert mid.norm().item() == pytest.approx(2.0, rel=1e-5)


def test_slerp_parallel_and_antiparallel():
    a = torch.tensor([1.0, 2.0, 2.0])
    par = latent.slerp(a, 2 * a, torch.linspace(0, 1, 5))
    assert torch.isfinite(par).all()
    assert torch.allclose(par, latent.lerp(a, 2 * a, torch.linspace(0, 1, 5)))
    anti = latent.slerp(a, -a, torch.linspace(0, 1, 5))
    assert torch.isfinite(anti).all()
    assert torch.allclose(anti[0], a) and torch.allclose(anti[-1], -a)
    assert torch.allclose(anti.norm(dim=1), torch.full((5,), 3.0))  # never through the origin
    assert abs(float(anti[2] @ a)) < 1e-5  # halfway is perpendicular
    zero = latent.slerp(torch.zeros(3), a, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(zero[1], a / 2)


def test_orthonormalize():
    v = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    q = latent.orthonormalize(v)
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-5)
    assert ((q * v).sum(0) > 0).all()  # same orientation as the inputs
    assert torch.allclose(q[:, 0], v[:, 0] / v[:, 0].norm(), atol=1e-6)


def test_compose_and_coordinates():
    origin = torch.arange(5.0)
    basis = latent.orthonormalize(torch.randn(5, 3, generator=torch.Generator().manual_seed(2)))
    values = torch.tensor([0.5, -1.0, 2.0])
    z = latent.compose(origin, basis, values)
    assert torch.allclose(z, origin + values[0] * basis[:, 0] + values[1] * basis[:, 1] + values[2] * basis[:, 2])
    assert torch.allclose(latent.coordinates(z, origin, basis), values, atol=1e-5)
    assert torch.equal(latent.compose(origin, basis, torch.zeros(3)), origin)


def test_pca_recovers_the_dominant_axis():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 4, generator=g) * torch.tensor([5.0, 1.0, 0.5, 0.1]) + 7.0
    mean, directions, ratio = latent.pca(z, k=3)
    assert directions.shape == (4, 3) and ratio.shape == (3,)
    assert torch.allclose(mean, torch.full((4,), 7.0), atol=0.3)
    assert torch.allclose(directions.T @ directions, torch.eye(3), atol=1e-5)
    assert abs(float(directions[0, 0])) > 0.99 and float(directions[0, 0]) > 0  # sign fixed
    assert (ratio[:-1] >= ratio[1:]).all()
    expected = 25 / (25 + 1 + 0.25 + 0.01)
    assert float(ratio[0]) == pytest.approx(expected, abs=0.01)
    with pytest.raises(ValueError, match="at least two"):
        latent.pca(torch.zeros(1, 4))


def test_kl_ranking_and_one_hot_basis():
    kl = torch.tensor([0.1, 2.0, 0.0, 1.0])
    order = latent.kl_ranking(kl)
    assert order.tolist() == [1, 3, 0, 2]
    basis = latent.one_hot_basis(order[:2], 4, scale=torch.tensor([1.0, 0.5, 1.0, 2.0]))
    assert basis.tolist() == [[0, 0], [0.5, 0], [0, 0], [0, 2.0]]


def test_class_vectors_are_class_mean_minus_rest():
    z = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    v = latent.class_vectors(z, labels, 3)
    assert v.shape == (3, 2)
    assert torch.allclose(v[0], torch.tensor([2.0, 0.0]) - torch.tensor([0.0, 3.0]))
    assert torch.allclose(v[1], -v[0])
    assert torch.equal(v[2], torch.zeros(2))  # no examples of class 2
    assert math.isclose(float(v[0] @ v[1]), -13.0)
