"""Evaluation maths on known answers, and `python -m vaegan.evaluate --quick` end to end
with a small TorchScript feature extractor."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vaegan.data import load_fashion_mnist
from vaegan.evaluate import (evaluate, frechet_distance, gaussian_stats, laplacian_variance, main,
                             ssim_batch)
from vaegan.model import PRESETS, VAEGAN

SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


def test_frechet_distance_of_isotropic_gaussians():
    d = 5
    m = np.arange(d, dtype=float)
    s = 2.0
    fd = frechet_distance(np.zeros(d), np.eye(d), m, s**2 * np.eye(d))
    assert fd == pytest.approx(m.dot(m) + d * (1 - s) ** 2)


def test_frechet_distance_of_diagonal_gaussians_and_identity():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    fd = frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b))
    assert fd == pytest.approx(3 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    mu, sig = gaussian_stats(x)
    assert frechet_distance(mu, sig, mu, sig) == pytest.approx(0, abs=1e-6)


def test_gaussian_stats_recover_known_moments():
    rng = np.random.default_rng(1)
    x = rng.normal(loc=3.0, scale=2.0, size=(20000, 2))
    mu, sig = gaussian_stats(x)
    assert np.allclose(mu, 3.0, atol=0.05) and np.allclose(np.diag(sig), 4.0, atol=0.15)


def test_sharpness_and_ssim_respond_to_blur():
    x, _ = load_fashion_mnist("test", SAMPLE)
    x = x[:50].float() / 255
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1)
    assert laplacian_variance(blurred).mean() < 0.5 * laplacian_variance(x).mean()
    assert ssim_batch(x, x).mean() == pytest.approx(1.0)
    assert ssim_batch(x, blurred).mean() < 0.95


class Oracle(nn.Module):
    """A 'model' whose samples and reconstructions are the real test images."""

    def __init__(self, images):
        super().__init__()
        self.images, self.i = images, 0

    def sample(self, n, generator=None, temperature=1.0):
        out = self.images[self.i:self.i + n]
        self.i += n
        return out

    def reconstruct(self, x):
        return x


def tiny_extractor(path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.Conv2d(8, 16, 3, 2), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    torch.jit.script(net.eval()).save(str(path))


def test_metrics_of_a_perfect_model(tmp_path):
    from vaegan.evaluate import FeatureExtractor
    tiny_extractor(tmp_path / "fx.pt")
    x, _ = load_fashion_mnist("test", SAMPLE)
    real = x[:200].float() / 255
    r = evaluate(Oracle(real), x, FeatureExtractor(tmp_path / "fx.pt", size=32), n=200, batch_size=50)
    assert r["fid"] == pytest.approx(0, abs=1e-6)
    assert r["recon_mse"] == 0 and r["recon_ssim"] == pytest.approx(1.0)
    assert r["sharpness_ratio"] == pytest.approx(1.0)


def test_quick_evaluation_end_to_end(tmp_path, capsys):
    tiny_extractor(tmp_path / "fx.pt")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(PRESETS["tiny"]).save_pretrained(model_dir)
    args = [str(model_dir), "--quick", "-n", "120", "--batch-size", "40", "--data-dir", str(SAMPLE),
            "--extractor", str(tmp_path / "fx.pt"), "--extractor-size", "32",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| model | fid |" in table and str(model_dir) in table
    m = json.loads((model_dir / "metrics_quick.json").read_text())
    assert m["n"] == 120 and m["fid"] > 0 and 0 <= m["recon_ssim"] <= 1 and m["recon_mse"] > 0
    assert len(list((tmp_path / "cache").glob("test_stats_*_n120.npz"))) == 1
    assert main(args) == 0  # second run reads the cached test statistics
    assert json.loads((model_dir / "metrics_quick.json").read_text())["fid"] == pytest.approx(m["fid"])


class KnownPosterior(nn.Module):
    """Encoder stub: q(z|x) = N((10 v, 1 - 10 v), s^2 I) where v is the mean pixel of x, so
    the aggregate posterior has strongly anti-correlated dimensions; decode(z) is z itself."""

    def __init__(self, s):
        super().__init__()
        self.s = s
        self.dummy = nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.dummy.device

    def encode(self, x):
        from vaegan.model import DiagonalGaussian
        v = x.flatten(1).mean(1, keepdim=True)
        mean = torch.cat([10 * v, 1 - 10 * v], 1)
        return DiagonalGaussian(mean, torch.full_like(mean, 2 * np.log(self.s)))

    def decode(self, z):
        return z


def test_fitted_prior_matches_the_aggregate_posterior_with_full_covariance():
    from vaegan.evaluate import latent_codes
    x, _ = load_fashion_mnist("test", SAMPLE)
    v = x.float().div(255).flatten(1).mean(1).double()
    means = torch.stack([10 * v, 1 - 10 * v], 1)
    want_cov = torch.cov(means.T) + 0.25 * torch.eye(2)  # law of total covariance
    z = latent_codes(KnownPosterior(0.5), "fitted", 20000, x, 250, seed=0)
    assert z.shape == (20000, 2)
    assert torch.allclose(z.mean(0), means.mean(0), atol=0.05)
    got = torch.cov(z.T)
    assert torch.allclose(got, want_cov, rtol=0.1, atol=0.02), (got, want_cov)
    assert got[0, 1] < -0.5 * got[0, 0]  # the correlation is kept, not a diagonal fit
    assert torch.equal(z, latent_codes(KnownPosterior(0.5), "fitted", 20000, x, 250, seed=0))


def test_posterior_codes_come_from_training_images():
    from vaegan.evaluate import latent_codes
    x, _ = load_fashion_mnist("test", SAMPLE)
    v = x.float().div(255).flatten(1).mean(1).double()
    z = latent_codes(KnownPosterior(1e-6), "posterior", 300, x, 64, seed=1)
    # each code is (up to the tiny posterior std) the mean of one training image
    nearest = (z[:, :1] - 10 * v[None, :]).abs().min(1).values
    assert nearest.max() < 1e-4
    assert torch.allclose(z[:, 1], 1 - z[:, 0], atol=1e-4)
    assert len({round(float(c), 6) for c in z[:, 0]}) > 250  # distinct images, not one repeated
    with pytest.raises(ValueError, match="prior must be one of"):
        latent_codes(KnownPosterior(1.0), "standard", 3, x, 64, seed=1)


def test_evaluate_with_a_fitted_prior_end_to_end(tmp_path, capsys):
    tiny_extractor(tmp_path / "fx.pt")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(PRESETS["tiny"]).save_pretrained(model_dir)
    data = tmp_path / "data"  # the shipped test-set sample, also as the training split
    data.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        for split in ("t10k", "train"):
            (data / f"{split}-{kind}-ubyte.gz").symlink_to(SAMPLE / f"t10k-{kind}-ubyte.gz")
    args = [str(model_dir), "-n", "100", "--batch-size", "50", "--data-dir", str(data),
            "--extractor", str(tmp_path / "fx.pt"), "--extractor-size", "32",
            "--cache-dir", str(tmp_path / "cache"), "--prior", "fitted"]
    assert main(args) == 0
    assert "fitted" in capsys.readouterr().out
    m = json.loads((model_dir / "metrics_prior-fitted.json").read_text())
    assert m["prior"] == "fitted" and m["n"] == 100 and m["fid"] > 0
    assert (model_dir / "samples_prior-fitted.png").exists()
    assert not (model_dir / "metrics.json").exists()  # the protocol's figures are not replaced


def test_model_prior_is_the_default_and_standard_ignores_a_fitted_mixture():
    from vaegan.prior import fit_mixture, with_prior
    x, _ = load_fashion_mnist("test", SAMPLE)
    torch.manual_seed(0)
    plain = VAEGAN(PRESETS["tiny"]).eval()
    a = evaluate(plain, x, None, 64, batch_size=32)
    b = evaluate(plain, x, None, 64, batch_size=32, prior="standard")
    # N(0, I) drawn the same way whether asked for as the model's prior or as "standard"
    assert torch.equal(a["samples"], b["samples"]) and a["prior"] == "N(0, I)"
    codes = np.random.default_rng(0).normal(size=(500, 8)) * 0.1 + 2.0  # far from N(0, I)
    mixed = with_prior(plain, fit_mixture(codes, 2))
    c = evaluate(mixed, x, None, 64, batch_size=32)
    d = evaluate(mixed, x, None, 64, batch_size=32, prior="standard")
    assert c["prior"] == "fitted Gaussian mixture, 2 components" and d["prior"] == "standard"
    assert torch.equal(d["samples"], a["samples"])  # same decoder, same N(0, I) codes
    assert not torch.equal(c["samples"], a["samples"])
    z = mixed.prior(64, torch.Generator().manual_seed(0))
    assert torch.allclose(c["samples"], mixed.decode(z), atol=1e-6)  # decoded mixture codes
