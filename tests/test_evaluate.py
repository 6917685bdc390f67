"""Evaluation maths on known answers (FID, KID against a direct sum, midpoints against
latent.slerp, class figures against a stub classifier), and `python -m vaegan.evaluate --quick`
end to end with a small TorchScript feature extractor and a tiny classifier recipe."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vaegan.data import load_fashion_mnist
from vaegan.evaluate import (evaluate, frechet_distance, gaussian_stats, kernel_inception_distance,
                             laplacian_variance, main, polynomial_mmd2, ssim_batch)
from vaegan.model import PRESETS, VAEGAN, VAEGANConfig

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
    """A 'model' whose samples and reconstructions are the real test images; its posterior
    mean is the picture itself (flattened), so midpoints are blends of two pictures."""

    def __init__(self, images):
        super().__init__()
        self.images, self.i = images, 0
        self.shape = images.shape[1:]

    @property
    def device(self):
        return torch.device("cpu")

    def sample(self, n, generator=None, temperature=1.0):
        out = self.images[self.i:self.i + n]
        self.i += n
        return out

    def reconstruct(self, x):
        return x

    def encode(self, x):
        from vaegan.model import DiagonalGaussian
        return DiagonalGaussian(x.flatten(1), torch.zeros_like(x.flatten(1)))

    def decode(self, z):
        return z.view(-1, *self.shape)


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
    # the same features on both sides: KID (independent random halves) about 0
    assert r["kid_subset_size"] == 100 and abs(r["kid"]) < r["kid_std"]
    # blends of two garments are not garments (this extractor's features are small: FIDs too)
    assert r["fid_midpoint"] > 1e-3 and r["midpoint_path"] == "slerp"


def slow_polynomial_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, one kernel value at a time."""
    d = x.shape[1]

    def k(a, b):
        return (sum(float(p) * float(q) for p, q in zip(a, b)) / d + 1) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_sum_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    y = rng.normal(0.5, 1.2, size=(9, 5))
    assert polynomial_mmd2(x, y) == pytest.approx(slow_polynomial_mmd2(x, y), rel=1e-9)
    assert polynomial_mmd2(x, x[::-1]) == pytest.approx(slow_polynomial_mmd2(x, x[::-1]), rel=1e-9)
    # each subset is one polynomial_mmd2 of the subsets the seeded generator draws
    kid, std, m = kernel_inception_distance(x, y, subsets=3, subset_size=4, seed=5)
    g = np.random.default_rng(5)
    want = [slow_polynomial_mmd2(x[g.choice(12, 4, replace=False)], y[g.choice(9, 4, replace=False)])
            for _ in range(3)]
    assert m == 4 and kid == pytest.approx(np.mean(want)) and std == pytest.approx(np.std(want))
    # independent draws of one distribution: about 0 (unbiased); the very same features: about
    # 0 too (a little below: subsets of one set share points, which lifts the cross term);
    # shifted ones: clearly more, growing with the shift
    real, other = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    indep, indep_std, size = kernel_inception_distance(other, real, subsets=50)
    same = kernel_inception_distance(real, real.copy(), subsets=50)[0]
    shifted = [kernel_inception_distance(other + s, real, subsets=50)[0] for s in (0.3, 0.6)]
    assert size == 300 and abs(indep) < indep_std and abs(same) < 0.1 * shifted[0]
    assert shifted[0] > 10 * indep_std and shifted[1] > 4 * shifted[0]
    assert kernel_inception_distance(other, real, subsets=50) == (indep, indep_std, size)  # seeded
    with pytest.raises(ValueError, match="need that many features"):
        kernel_inception_distance(x, y, subset_size=10)


def test_midpoints_decode_slerp_half_way_between_posterior_means():
    from vaegan import latent
    from vaegan.evaluate import midpoint_pairs, midpoints
    x, _ = load_fashion_mnist("test", SAMPLE)
    x = x[:30]
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()
    a, b = midpoint_pairs(30, 30, seed=3)
    assert sorted(a.tolist()) == list(range(30)) and (a != b).all()  # each picture once, never with itself
    got = midpoints(model, x, 30, batch_size=7, seed=3)  # all pairs at once (latent.slerp_rows)
    slerp = latent.slerp  # the app's own slerp, at t = 0.5, pair by pair
    with torch.no_grad():
        z = model.encode(x.float() / 255).mean  # posterior means, not samples
        want = model.decode(torch.stack([slerp(z[i], z[j], 0.5) for i, j in zip(a.tolist(), b.tolist())]))
    assert got.shape == (30, 1, 28, 28) and torch.allclose(got, want, atol=1e-5)
    lerped = midpoints(model, x, 30, batch_size=7, seed=3, path="lerp")
    with torch.no_grad():
        want_lerp = model.decode((z[a] + z[b]) / 2)
    assert torch.allclose(lerped, want_lerp, atol=1e-5) and not torch.allclose(lerped, got, atol=1e-4)
    assert torch.equal(midpoints(model, x, 30, 7, seed=3), got)  # seeded
    with pytest.raises(ValueError, match="path must be one of"):
        midpoints(model, x, 30, 7, seed=3, path="cubic")


class PixelClassifier:
    """Classifier stub: the label of a picture is round(10 * its mean pixel) (mod 3)."""

    class_names = ("zero", "one", "two")
    test_accuracy = 0.75
    dataset, key = "stub", "0123"

    def predict(self, x):
        return (x.float().flatten(1).mean(1) * 10).round().long() % 3


def pictures(codes):
    """Grey 4x4 pictures that PixelClassifier labels `codes`."""
    return (torch.tensor(codes, dtype=torch.float32) / 10)[:, None, None, None].expand(-1, 1, 4, 4)


def test_class_figures_on_known_predictions():
    from vaegan.evaluate import class_figures
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    real = pictures([0, 0, 1, 1, 2, 2, 0, 1])  # 6 of 8 right
    rec = pictures([0, 1, 1, 1, 2, 0, 0, 2])  # 4 of 8 keep the true label
    samples = pictures([0, 0, 0, 0, 0, 1, 2, 2])  # shares 5/8, 1/8, 2/8
    r = class_figures(PixelClassifier(), real, labels, rec, samples)
    assert r["classifier_test_accuracy"] == 0.75 and r["classifier_accuracy_n"] == pytest.approx(6 / 8)
    assert r["recon_class_kept"] == pytest.approx(4 / 8)
    assert r["recon_class_kept_ratio"] == pytest.approx((4 / 8) / (6 / 8))
    # real pictures as classified: 0 0 1 1 2 2 0 1 -> 3/8, 3/8, 2/8
    assert r["class_shares_real"] == pytest.approx({"zero": 3 / 8, "one": 3 / 8, "two": 2 / 8})
    assert r["class_shares_samples"] == pytest.approx({"zero": 5 / 8, "one": 1 / 8, "two": 2 / 8})
    assert r["min_class_share_class"] == "one" and r["min_class_share_ratio"] == pytest.approx(1 / 3)
    json.dumps(r)  # goes into the metrics JSON as it is


def test_class_figures_of_a_tiny_model_through_evaluate(tmp_path):
    from vaegan.evaluate import FeatureExtractor, class_figures, reconstruct_all
    tiny_extractor(tmp_path / "fx.pt")
    x, y = load_fashion_mnist("test", SAMPLE)
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()
    clf = PixelClassifier()
    r = evaluate(model, x, FeatureExtractor(tmp_path / "fx.pt", size=32), n=60, batch_size=30,
                 test_labels=y, classifier=clf, dataset="fashion-mnist")
    real = x[:60].float() / 255
    assert len(set(clf.predict(real).tolist())) == 3  # the stub tells these pictures apart
    want = class_figures(clf, real, y[:60], reconstruct_all(model, real, 30), r["samples"])
    assert {k: r[k] for k in want} == want
    assert r["n"] == 60 and r["fid_midpoint"] > 0 and r["kid_subset_size"] == 30
    # the oracle draws and reconstructs the test pictures themselves: nothing lost, nothing missing
    o = evaluate(Oracle(real), x, None, n=60, batch_size=30, test_labels=y, classifier=clf)
    assert o["recon_class_kept_ratio"] == 1 and o["min_class_share_ratio"] == pytest.approx(1)
    assert "fid" not in o and "kid" not in o and "fid_midpoint" not in o


def test_ssim_of_rgb_pictures():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g)
    assert ssim_batch(x, x) == pytest.approx(np.ones(4))
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    one_channel_off = x.clone()
    one_channel_off[:, 2] = noisy[:, 2]  # each channel counts: a third of the noise, a third of the loss
    s_all, s_one = ssim_batch(x, noisy).mean(), ssim_batch(x, one_channel_off).mean()
    assert s_all < 0.9 and s_one == pytest.approx(1 - (1 - s_all) / 3, abs=0.02)


def test_test_statistics_are_cached_per_dataset(tmp_path):
    from vaegan.evaluate import FeatureExtractor
    tiny_extractor(tmp_path / "fx.pt")
    x, _ = load_fashion_mnist("test", SAMPLE)
    fx = FeatureExtractor(tmp_path / "fx.pt", size=32)
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()
    evaluate(model, x, fx, n=60, batch_size=30, cache_dir=tmp_path / "c", midpoint_path=None)
    evaluate(model, x, fx, n=60, batch_size=30, cache_dir=tmp_path / "c", midpoint_path=None, dataset="emoji")
    evaluate(model, x.flip(-1), fx, n=60, batch_size=30, cache_dir=tmp_path / "c", midpoint_path=None)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert len(names) == 3 and sum(n.startswith("test_stats_fashion-mnist_") for n in names) == 2
    assert sum(n.startswith("test_stats_emoji_") for n in names) == 1


def test_quick_evaluation_end_to_end(tmp_path, capsys):
    tiny_extractor(tmp_path / "fx.pt")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(PRESETS["tiny"]).save_pretrained(model_dir)
    args = [str(model_dir), "--quick", "-n", "120", "--batch-size", "40", "--data-dir", str(SAMPLE),
            "--extractor", str(tmp_path / "fx.pt"), "--extractor-size", "32",
            "--cache-dir", str(tmp_path / "cache"), "--no-classifier"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| model | fid | fid_midpoint | kid |" in table and str(model_dir) in table
    m = json.loads((model_dir / "metrics_quick.json").read_text())
    assert m["n"] == 120 and m["fid"] > 0 and 0 <= m["recon_ssim"] <= 1 and m["recon_mse"] > 0
    assert m["fid_midpoint"] > 0 and m["midpoint_fid_ratio"] == pytest.approx(m["fid_midpoint"] / m["fid"])
    assert m["kid_subset_size"] == 60 and m["kid_std"] > 0 and m["dataset"] == "fashion-mnist"
    assert "recon_class_kept" not in m  # --no-classifier
    assert len(list((tmp_path / "cache").glob("test_stats_fashion-mnist_*_n120.npz"))) == 1
    assert main(args) == 0  # second run reads the cached test statistics
    assert json.loads((model_dir / "metrics_quick.json").read_text())["fid"] == pytest.approx(m["fid"])
    assert main(args + ["--no-midpoints"]) == 0  # FID and KID without the midpoints' features
    alone = json.loads((model_dir / "metrics_quick.json").read_text())
    assert alone["fid"] == pytest.approx(m["fid"]) and alone["kid"] == pytest.approx(m["kid"])
    assert "fid_midpoint" not in alone and "midpoint_path" not in alone


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
            "--cache-dir", str(tmp_path / "cache"), "--prior", "fitted", "--no-classifier"]
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


def test_evaluation_with_the_classifier_end_to_end(tmp_path, capsys, monkeypatch):
    from vaegan import classifier
    from vaegan.data import FASHION_CLASSES
    monkeypatch.setitem(classifier.RECIPES, "fashion-mnist",
                        classifier.Recipe(epochs=1, batch_size=64, widths=(4, 8, 8), limit=300))
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "vc"))
    tiny_extractor(tmp_path / "fx.pt")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(PRESETS["tiny"]).save_pretrained(model_dir)
    data = tmp_path / "data"
    data.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        for split in ("t10k", "train"):
            (data / f"{split}-{kind}-ubyte.gz").symlink_to(SAMPLE / f"t10k-{kind}-ubyte.gz")
    out = tmp_path / "m.json"
    args = [str(model_dir), "-n", "80", "--batch-size", "40", "--data-dir", str(data), "--threads", "1",
            "--extractor", str(tmp_path / "fx.pt"), "--extractor-size", "32",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "fashion-mnist classifier (trained" in captured.err and "test accuracy" in captured.err
    assert "recon_class_kept_ratio | min_class_share_ratio | sharpness_ratio | n | prior |" in captured.out
    m = json.loads(out.read_text())
    assert 0 <= m["classifier_test_accuracy"] <= 1 and 0 <= m["recon_class_kept"] <= 1
    assert m["recon_class_kept_ratio"] == pytest.approx(m["recon_class_kept"] / m["classifier_accuracy_n"])
    assert list(m["class_shares_samples"]) == list(FASHION_CLASSES) == list(m["class_shares_real"])
    assert sum(m["class_shares_real"].values()) == pytest.approx(1)
    assert m["min_class_share_class"] in FASHION_CLASSES and m["min_class_share_ratio"] >= 0
    assert main(args) == 0  # the second run loads the classifier, and says so with its accuracy
    assert f"test accuracy {m['classifier_test_accuracy']:.2%}" in capsys.readouterr().err
    assert json.loads(out.read_text())["recon_class_kept"] == m["recon_class_kept"]


@pytest.mark.skipif(not (Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf").is_file()
                         and Path("/usr/share/unicode/emoji/emoji-test.txt").is_file()),
                    reason="needs apt-get install fonts-noto-color-emoji unicode-data")
def test_emoji_evaluation_caps_n_at_the_test_split(tmp_path, capsys, monkeypatch):
    from vaegan import classifier, emoji
    monkeypatch.setitem(classifier.RECIPES, "emoji",
                        classifier.Recipe(epochs=1, batch_size=64, widths=(4, 8, 8), limit=200, flip=True))
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "vc"))
    tiny_extractor(tmp_path / "fx.pt")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(VAEGANConfig(image_size=64, channels=3, latent_dim=8, widths=(4, 8), disc_widths=(4, 8))
           ).save_pretrained(model_dir)
    out = tmp_path / "m.json"
    assert main([str(model_dir), "--dataset", "emoji", "-n", "1000", "--batch-size", "116", "--threads", "1",
                 "--extractor", str(tmp_path / "fx.pt"), "--extractor-size", "32",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    test_size = len(emoji.load_emoji("test")[1])
    assert f"the test split holds {test_size} pictures, so n = {test_size} (not 1000)" in captured.err
    m = json.loads(out.read_text())
    assert m["n"] == test_size and m["dataset"] == "emoji" and 0 < m["recon_ssim"] < 1
    assert m["kid_subset_size"] == test_size // 2 and m["fid_midpoint"] > 0
    assert list(m["class_shares_real"]) == list(emoji.groups(emoji.emoji_list()))
    assert len(list((tmp_path / "cache").glob("test_stats_emoji_*.npz"))) == 1


def test_a_model_and_dataset_of_different_shapes_are_refused(tmp_path):
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    VAEGAN(VAEGANConfig(image_size=32, channels=3, latent_dim=8, widths=(4, 8), disc_widths=(4, 8))
           ).save_pretrained(model_dir)
    with pytest.raises(SystemExit, match="makes 3x32x32 pictures but fashion-mnist has 1x28x28 ones"):
        main([str(model_dir), "--data-dir", str(SAMPLE), "--no-fid", "--no-classifier"])


def test_resume_reads_finished_parts_and_only_those_of_the_same_model(tmp_path):
    """--resume: a second run of the same model reads its sample and midpoint features back
    (the extractor is not called at all: test features are cached too) and gives the same
    figures; a part whose file is gone is computed again, and a model with other weights or
    BatchNorm statistics is never served another's features."""
    from vaegan.evaluate import FeatureExtractor
    tiny_extractor(tmp_path / "fx.pt")
    x, _ = load_fashion_mnist("test", SAMPLE)
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()

    class Counting(FeatureExtractor):
        calls = 0

        def features(self, images, batch_size, desc):
            Counting.calls += 1
            return super().features(images, batch_size, desc)

    fx = Counting(tmp_path / "fx.pt", size=32)
    run = lambda m, **kw: evaluate(m, x, fx, n=60, batch_size=30, cache_dir=tmp_path / "c",  # noqa: E731
                                   resume=True, **kw)
    first = run(model)
    assert Counting.calls == 3  # test pictures, samples, midpoints
    kept = sorted(p.name.split("_")[0] for p in (tmp_path / "c" / "resume").iterdir())
    assert kept == ["midpoints-slerp", "samples-model"]
    again = run(model)
    assert Counting.calls == 3  # nothing computed anew
    assert again["fid"] == first["fid"] and again["fid_midpoint"] == first["fid_midpoint"]
    next((tmp_path / "c" / "resume").glob("midpoints-*")).unlink()
    assert run(model)["fid_midpoint"] == pytest.approx(first["fid_midpoint"])
    assert Counting.calls == 4  # the midpoints alone
    other = VAEGAN(PRESETS["tiny"]).eval()
    other.load_state_dict(model.state_dict())
    other.decoder.fc[1].running_mean += 0.5  # the same weights, other decoder statistics
    moved = run(other)
    assert Counting.calls == 6 and moved["fid"] != first["fid"]
    assert len(list((tmp_path / "c" / "resume").iterdir())) == 4
    evaluate(model, x, fx, n=60, batch_size=30, cache_dir=tmp_path / "c")  # without resume
    assert Counting.calls == 8 and len(list((tmp_path / "c" / "resume").iterdir())) == 4
