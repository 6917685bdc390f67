"""`python -m vaegan.prior weights/fashion-mnist --components 10`: fit the model's sampling
prior to the codes it was trained on, after training.

A VAE is trained with p(z) = N(0, I), but its aggregate posterior q(z) = E_x q(z|x) does
not fill N(0, I): prior samples that land where no training code lies decode to garbage.
Ex-post density estimation (Ghosh et al. 2020, "From variational to deterministic
autoencoders", ICLR; the two-stage VAE of Dai & Wipf 2019 is the same idea) fits a density
to posterior samples of the training images and samples from it instead. Here that density
is a full-covariance Gaussian mixture (scikit-learn's GaussianMixture, EM). The encoder,
decoder and discriminator are not touched: the folder gets a config.json with
prior_components = K and the mixture's buffers (latent_prior.*) in model.safetensors, and
prior.json records how the fit was made.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .data import unit_float
from .model import VAEGAN, MixturePrior


@torch.inference_mode()
def posterior_codes(model: VAEGAN, images: torch.Tensor, batch_size: int,
                    generator: torch.Generator) -> torch.Tensor:
    """One z ~ q(z|x) per image (uint8, or float in [0, 1]) -> (N, Z) float64 on the CPU."""
    return torch.cat([model.encode(unit_float(images[i:i + batch_size]).to(model.device))
                      .sample(generator).double().cpu() for i in range(0, len(images), batch_size)])


def fit_mixture(codes: np.ndarray, components: int, seed: int = 0):
    """EM fit of a full-covariance Gaussian mixture to codes (N, Z) -> sklearn GaussianMixture."""
    from sklearn.mixture import GaussianMixture
    if len(codes) < 2 * components:
        raise ValueError(f"{len(codes)} codes are too few to fit {components} components")
    return GaussianMixture(components, covariance_type="full", random_state=seed,
                           max_iter=300).fit(codes)


def with_prior(model: VAEGAN, mixture=None) -> VAEGAN:
    """A copy of model, networks unchanged, whose prior is `mixture` (a fitted sklearn
    GaussianMixture), or N(0, I) when mixture is None."""
    k = 0 if mixture is None else len(mixture.weights_)
    copy = VAEGAN(dataclasses.replace(model.config, prior_components=k))
    state = {n: t for n, t in model.state_dict().items() if not n.startswith("latent_prior.")}
    if mixture is not None:  # the fitted parameters, loaded with the networks in one strict load
        state["latent_prior.weights"] = torch.as_tensor(mixture.weights_ / mixture.weights_.sum())
        state["latent_prior.means"] = torch.as_tensor(mixture.means_)
        state["latent_prior.scale_tril"] = torch.linalg.cholesky(torch.as_tensor(mixture.covariances_))
    copy.load_state_dict(state, strict=True)
    if copy.latent_prior is not None:
        copy.latent_prior.check()
    return copy.to(model.device).eval()


def main(argv: list[str] | None = None) -> int:
    from .data import load_dataset
    from .hub import ModelLoadError, load_model

    p = argparse.ArgumentParser(prog="python -m vaegan.prior", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="weights folder (or Hub repo id) whose prior to fit")
    p.add_argument("--components", type=int, default=10,
                   help="mixture components K (default 10, as Ghosh et al.); 0 restores N(0, I)")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="the training data: 'fashion-mnist' or a folder of images")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--out", default=None, help="folder to write (default: the model's folder)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.components < 0:
        raise SystemExit(f"error: --components takes an integer >= 0, got {args.components}")
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"error: --limit takes a number of images >= 1, got {args.limit}")
    out = Path(args.out or args.model)
    if args.out is None and not Path(args.model).is_dir():
        raise SystemExit("error: --out is needed when the model is not a local folder")
    try:
        model = load_model(args.model).model.eval()
    except ModelLoadError as e:
        raise SystemExit(f"error: {e}") from None
    t0 = time.time()
    info = {"command": "python -m vaegan.prior " + " ".join(argv if argv is not None else sys.argv[1:]),
            "components": args.components, "dataset": args.dataset, "seed": args.seed}
    if args.components == 0:
        fitted = with_prior(model)
    else:
        c = model.config
        images, _ = load_dataset(args.dataset, "train", args.data_dir, c.image_size, c.channels)
        if args.limit:
            images = images[:args.limit]
        codes = posterior_codes(model, images, args.batch_size,
                                torch.Generator().manual_seed(args.seed)).numpy()
        try:
            mixture = fit_mixture(codes, args.components, args.seed)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        fitted = with_prior(model, mixture)
        info.update({"codes": len(codes), "converged": bool(mixture.converged_),
                     "em_iterations": int(mixture.n_iter_),
                     "mean_log_likelihood": round(float(mixture.score(codes)), 3),
                     "standard_normal_log_likelihood": round(float(
                         -0.5 * (codes ** 2).sum(1).mean() - 0.5 * codes.shape[1] * np.log(2 * np.pi)), 3)})
    info["seconds"] = round(time.time() - t0, 1)
    for note in retire_stale_outputs(out, model.config.prior_components):
        print(note)
    fitted.save_pretrained(out)
    if args.components:
        (out / "prior.json").write_text(json.dumps(info, indent=2) + "\n")
    else:
        (out / "prior.json").unlink(missing_ok=True)
    what = (f"a {args.components}-component Gaussian mixture fitted to {info['codes']} posterior codes "
            f"(mean log-likelihood {info['mean_log_likelihood']} vs {info['standard_normal_log_likelihood']} "
            f"under N(0, I))" if args.components else "N(0, I)")
    print(f"wrote {out}: prior = {what}, {info['seconds']} s")
    return 0


def retire_stale_outputs(folder: Path, old_components: int) -> list[str]:
    """Figures and grids drawn from the prior a folder had until now no longer describe its
    samples: metrics[_quick].json and samples.png made with N(0, I) become the
    `--prior standard` files (which they are); those of an earlier fitted mixture are removed.
    Returns one sentence per file moved or removed."""
    notes = []
    for name in ("metrics.json", "metrics_quick.json", "samples.png"):
        path = folder / name
        if not path.exists():
            continue
        stem, ext = name.rsplit(".", 1)
        if old_components == 0:
            target = folder / f"{stem}_prior-standard.{ext}"
            path.replace(target)
            notes.append(f"{path} was drawn from N(0, I): renamed to {target.name}")
        else:
            path.unlink()
            notes.append(f"{path} was drawn from the previous mixture: removed (run vaegan.evaluate again)")
    return notes


if __name__ == "__main__":
    raise SystemExit(main())
