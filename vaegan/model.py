"""VAE/GAN networks (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric", arXiv:1512.09300).

Encoder -> posterior q(z|x) = N(mean, exp(logvar)); Decoder (= generator) z -> image in
[0, 1]; Discriminator whose intermediate layer l gives the features used as the learned
similarity metric. Training code lives in train.py and the losses in losses.py.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download

from .files import read_safetensors

SAFETENSORS_FILE = "model.safetensors"


@dataclass(frozen=True)
class VAEGANConfig:
    """Everything that fixes the shapes of the networks, plus the loss weight gamma.

    widths are the channel counts of the encoder's and discriminator's stride-2 stages
    (the decoder mirrors them); len(widths) stride-2 stages must divide image_size.
    """

    image_size: int = 28
    channels: int = 1
    latent_dim: int = 32
    widths: tuple[int, ...] = (64, 128)
    disc_widths: tuple[int, ...] = (32, 64)
    # decoder loss = gamma * L_llike + L_GAN (Larsen's gamma, weighting content vs style);
    # 0.2 gave cleaner reconstructions than 0.02 and 0.05 in short trials on Fashion-MNIST
    gamma: float = 0.2
    # discriminator normalisation: "spectral" (Miyato et al. 2018) or "none"; spectral
    # keeps the scale of the similarity features Dis_l bounded and removed the checkerboard
    # texture that the unnormalised discriminator let through
    disc_norm: str = "spectral"
    mode: str = "vaegan"  # "vaegan" or "vae" (pixel likelihood, no discriminator)
    # the prior that sample() draws from: 0 = N(0, I), the prior the networks are trained
    # with; K > 0 = a K-component full-covariance Gaussian mixture fitted to the aggregate
    # posterior after training (ex-post density estimation, Ghosh et al. 2020; `python -m
    # vaegan.prior`), kept in the weights as latent_prior.*
    prior_components: int = 0
    # encoder loss = beta * L_prior + L_llike (beta-VAE, Higgins et al. 2017): below 1 the codes
    # carry more of each picture, which a fitted mixture prior (above) can still sample from
    beta: float = 1.0

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable and frozen.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "disc_widths", tuple(int(w) for w in self.disc_widths))
        if self.mode not in ("vaegan", "vae"):
            raise ValueError(f"mode must be 'vaegan' or 'vae', got {self.mode!r}")
        for name, ws in (("widths", self.widths), ("disc_widths", self.disc_widths)):
            if not ws or self.image_size % (2 ** len(ws)):
                raise ValueError(
                    f"image_size {self.image_size} must be divisible by 2**len({name}) "
                    f"= {2 ** len(ws)}"
                )
        if self.disc_norm not in ("none", "spectral"):
            raise ValueError(f"disc_norm must be 'none' or 'spectral', got {self.disc_norm!r}")
        if (isinstance(self.prior_components, bool) or not isinstance(self.prior_components, int)
                or not 0 <= self.prior_components <= MAX_PRIOR_COMPONENTS):
            raise ValueError(f"prior_components must be an integer from 0 (N(0, I)) to "
                             f"{MAX_PRIOR_COMPONENTS}, got {self.prior_components!r}")
        if self.channels not in (1, 3) or self.latent_dim < 1:
            raise ValueError("channels must be 1 or 3 and latent_dim >= 1")
        # config.json is hand-editable: a string or NaN loss weight must fail here, not mid-training
        for name, zero_ok, what in (("gamma", True, "L_llike in the decoder's loss"),
                                    ("beta", False, "the KL term in the encoder's loss")):
            v = getattr(self, name)
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                    or v < 0 or (v == 0 and not zero_ok)):
                raise ValueError(f"{name} must be a finite number {'>=' if zero_ok else '>'} 0 "
                                 f"(the weight of {what}), got {v!r}")
            object.__setattr__(self, name, float(v))

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "VAEGANConfig":
        """Build from a dict, failing with the offending key named (strict)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data) - set(ADDED_LATER))
        if unknown or missing:
            raise ValueError(
                f"{source}: does not match VAEGANConfig: unknown keys {unknown}, "
                f"missing keys {missing}; expected exactly {sorted(names)}"
            )
        return cls(**{**ADDED_LATER, **data})

    def to_dict(self) -> dict:
        """The config.json dict; keys of ADDED_LATER at their old meaning are left out, so
        that older versions of this package still load what newer ones write."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["disc_widths"] = list(self.disc_widths)
        return {k: v for k, v in d.items() if k not in ADDED_LATER or v != ADDED_LATER[k]}


# keys added after weights were first published, with the value that means what files
# written before them meant; only these may be absent from a config.json
ADDED_LATER: dict[str, object] = {"prior_components": 0, "beta": 1.0}
MAX_PRIOR_COMPONENTS = 1000
# a fitted prior must keep its codes (4 standard deviations at temperature 2) within this
# box, the range the app accepts for a starting code (explorer.ORIGIN_LIMIT)
PRIOR_CODE_LIMIT = 100.0

PRESETS: dict[str, VAEGANConfig] = {
    # the shipped Fashion-MNIST model
    "fashion-mnist": VAEGANConfig(),
    # small config for tests and quick experiments
    "tiny": VAEGANConfig(latent_dim=8, widths=(4, 8), disc_widths=(4, 8)),
    # ... and its colour counterpart at another size (tests run the app on both)
    "tiny-rgb": VAEGANConfig(image_size=32, channels=3, latent_dim=8, widths=(4, 8),
                             disc_widths=(4, 8)),
    # 64x64 RGB emoji (issue 21): narrower than rgb64 so that a run fits 90 minutes on 2
    # cores (about 0.9 s a step of 64 on one thread) and the weights 20 MB with the rest
    "emoji64": VAEGANConfig(image_size=64, channels=3, latent_dim=64, widths=(32, 64, 128, 192),
                            disc_widths=(32, 64, 128, 128)),
    # 64x64 RGB (e.g. faces, as in the paper)
    "rgb64": VAEGANConfig(image_size=64, channels=3, latent_dim=128,
                          widths=(64, 128, 256, 256), disc_widths=(32, 128, 256, 256)),
}


@dataclass
class DiagonalGaussian:
    """Posterior q(z|x) = N(mean, diag(exp(logvar)))."""

    mean: torch.Tensor  # (B, Z)
    logvar: torch.Tensor  # (B, Z)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample z = mean + std * eps."""
        eps = torch.randn(self.mean.shape, generator=generator,
                          device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent dimension, shape (B, Z)."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)


class MixturePrior(nn.Module):
    """p(z) = sum_k w_k N(z | means_k, L_k L_k^T): a Gaussian mixture over the latent space.

    Its buffers are filled by `vaegan.prior.with_prior` and travel in model.safetensors.
    """

    def __init__(self, components: int, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.full((components,), 1.0 / components))  # (K,)
        self.register_buffer("means", torch.zeros(components, latent_dim))  # (K, Z)
        tril = torch.zeros(components, latent_dim, latent_dim)  # (K, Z, Z)
        tril.diagonal(dim1=1, dim2=2).fill_(1.0)  # identity; torch.eye on the meta device
        self.register_buffer("scale_tril", tril)  # (hub.check_shapes) would import torch._dynamo

    def check(self) -> None:
        """A sentence naming what is wrong with loaded mixture parameters, else nothing."""
        w, tril = self.weights, self.scale_tril
        if not all(torch.isfinite(t).all() for t in (w, self.means, tril)):
            raise ValueError("latent_prior holds non-finite numbers")
        if (w < 0).any() or abs(float(w.sum()) - 1.0) > 1e-4:
            raise ValueError(f"latent_prior.weights must be >= 0 and sum to 1, sum is {float(w.sum()):.6g}")
        if not torch.equal(tril, tril.tril()) or (tril.diagonal(dim1=1, dim2=2) <= 0).any():
            raise ValueError("latent_prior.scale_tril must be lower-triangular with a positive diagonal")
        reach = self.means.abs().amax() + 8 * tril.pow(2).sum(2).sqrt().amax()  # 4 std at temperature 2
        if reach > PRIOR_CODE_LIMIT:
            raise ValueError(f"latent_prior puts codes up to {float(reach):.3g} from 0 (means plus 4 "
                             f"standard deviations at temperature 2); at most {PRIOR_CODE_LIMIT:g} is accepted")

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) of codes (B, Z) -> (B,), in float64 (torch.distributions)."""
        d = torch.distributions
        mixture = d.MixtureSameFamily(d.Categorical(probs=self.weights.double().cpu()),
                                      d.MultivariateNormal(self.means.double().cpu(),
                                                           scale_tril=self.scale_tril.double().cpu()),
                                      validate_args=False)
        return mixture.log_prob(z.double().cpu())

    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n codes (n, Z), on the CPU. Row i uses only the generator's i-th draw of Z + 1
        normals (one picks the component), so the first code of a seed does not depend on n."""
        z_dim = self.means.shape[1]
        e = torch.stack([torch.randn(z_dim + 1, generator=generator) for _ in range(n)]) if n \
            else torch.zeros(0, z_dim + 1)  # (n, Z + 1)
        return self.transform(e, temperature)

    def transform(self, e: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Standard normals (n, Z + 1) -> codes (n, Z) on e's device: the last column picks the
        component, the others are its standard normal (as sample draws them, row by row)."""
        n, z_dim = len(e), self.means.shape[1]
        u = torch.special.ndtr(e[:, -1].double())  # (n,) uniform in [0, 1]
        cdf = self.weights.detach().to(e.device).double().cumsum(0)
        # right=True: u = 0 never lands on a leading zero-weight component
        k = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp(max=len(cdf) - 1)  # (n,)
        means, tril = self.means.detach().to(e.device), self.scale_tril.detach().to(e.device)
        # a matrix-vector product per row (the same numbers whatever n is), in chunks so that
        # the gathered (chunk, Z, Z) factors stay small
        z = torch.cat([(tril[k[i:i + 256]] @ e[i:i + 256, :-1, None]).squeeze(-1)
                       for i in range(0, n, 256)]) if n else e.new_zeros(0, z_dim)
        return means[k] + temperature * z


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, c: VAEGANConfig) -> None:
        super().__init__()
        ws = (c.channels, *c.widths)
        self.convs = nn.Sequential(*[_down(ws[i], ws[i + 1], norm=i > 0) for i in range(len(c.widths))])
        side = c.image_size // 2 ** len(c.widths)
        self.head = nn.Linear(c.widths[-1] * side * side, 2 * c.latent_dim)

    def forward(self, x: torch.Tensor) -> DiagonalGaussian:  # x: (B, C, H, W) in [0, 1]
        h = self.convs(x * 2 - 1).flatten(1)
        mean, logvar = self.head(h).chunk(2, dim=1)  # (B, Z) each
        return DiagonalGaussian(mean, logvar.clamp(-30.0, 20.0))


class Decoder(nn.Module):
    def __init__(self, c: VAEGANConfig) -> None:
        super().__init__()
        self.side = c.image_size // 2 ** len(c.widths)
        ws = list(reversed(c.widths))  # e.g. (128, 64)
        self.fc = nn.Sequential(
            nn.Linear(c.latent_dim, ws[0] * self.side * self.side, bias=False),
            nn.BatchNorm1d(ws[0] * self.side * self.side), nn.ReLU(inplace=True))
        ups: list[nn.Module] = []
        for cin, cout in zip(ws, ws[1:]):
            ups += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        ups += [nn.ConvTranspose2d(ws[-1], c.channels, 4, 2, 1)]
        self.ups = nn.Sequential(*ups)
        self.width0 = ws[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, Z) -> (B, C, H, W) in [0, 1]
        h = self.fc(z).view(-1, self.width0, self.side, self.side)
        return torch.sigmoid(self.ups(h))


class Discriminator(nn.Module):
    """Conv stages; the output of the last conv stage is Dis_l, the similarity features."""

    def __init__(self, c: VAEGANConfig) -> None:
        super().__init__()
        ws = (c.channels, *c.disc_widths)
        self.convs = nn.Sequential(*[_down(ws[i], ws[i + 1], norm=False) for i in range(len(c.disc_widths))])
        side = c.image_size // 2 ** len(c.disc_widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c.disc_widths[-1] * side * side, 1))
        if c.disc_norm == "spectral":
            sn = nn.utils.parametrizations.spectral_norm
            for block in self.convs:
                block[0] = sn(block[0])
            self.head[1] = sn(self.head[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> (logits (B,), features Dis_l(x) (B, C_l, h, w))."""
        feats = self.convs(x * 2 - 1)
        return self.head(feats).squeeze(1), feats


class VAEGAN(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="vaegan",
    tags=["vae-gan", "fashion-mnist", "unconditional-image-generation"],
    pipeline_tag="unconditional-image-generation",
    license="mit",
):
    """Encoder + decoder (+ discriminator in "vaegan" mode), saved as config.json + model.safetensors."""

    def __init__(self, config: VAEGANConfig | dict | None = None) -> None:
        super().__init__()
        if config is None:
            config = VAEGANConfig()
        elif isinstance(config, dict):
            config = VAEGANConfig.from_dict(config)
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.discriminator = Discriminator(config) if config.mode == "vaegan" else None
        self.latent_prior = (MixturePrior(config.prior_components, config.latent_dim)
                             if config.prior_components else None)

    # ---- Hub mixin: safetensors only, strict keys and shapes -------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """model.safetensors (the mixin's) and config.json from VAEGANConfig.to_dict (the
        mixin would write every field, ADDED_LATER ones at their default included)."""
        super()._save_pretrained(save_directory)
        (Path(save_directory) / "config.json").write_text(
            json.dumps(self.config.to_dict(), sort_keys=True, indent=2))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir, force_download: bool,
                         local_files_only: bool, token, map_location: str = "cpu",
                         strict: bool = True, **model_kwargs) -> "VAEGAN":
        if "config" not in model_kwargs:
            raise FileNotFoundError(f"{model_id}: no config.json found next to the weights")
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, SAFETENSORS_FILE)
            if not os.path.exists(model_file):
                raise FileNotFoundError(f"{model_file}: missing (only safetensors weights are accepted)")
        else:
            model_file = hf_hub_download(model_id, SAFETENSORS_FILE, revision=revision,
                                         cache_dir=cache_dir, force_download=force_download,
                                         token=token, local_files_only=local_files_only)
        model.load_weights(model_file, strict=strict)
        return model.to(map_location).eval()

    def load_weights(self, model_file: str | Path, strict: bool = True) -> None:
        """Load a model.safetensors, naming the file and the keys or shapes that do not fit."""
        state = read_safetensors(model_file).tensors
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
        if strict and (missing or unexpected or shapes):
            parts = []
            if missing:
                parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
            if shapes:
                parts.append("wrong shapes " + "; ".join(shapes[:5]))
            raise ValueError(f"{model_file}: weights do not match config.json: " + ", ".join(parts))
        self.load_state_dict(state, strict=strict)
        if self.latent_prior is not None:
            try:
                self.latent_prior.check()
            except ValueError as e:
                raise ValueError(f"{model_file}: {e}") from None

    # ---- inference helpers ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.inference_mode()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n images from the prior with std scaled by temperature -> (n, C, H, W) in [0, 1]."""
        z = self.prior(n, generator, temperature)
        return self.decoder(z)

    def prior(self, n: int, generator: torch.Generator | None = None,
              temperature: float = 1.0) -> torch.Tensor:
        """n codes (n, Z) from the model's prior: N(0, I), or its fitted mixture (see
        VAEGANConfig.prior_components); temperature scales the standard deviation."""
        # always drawn on the CPU so a seed gives the same z on every device
        if self.latent_prior is not None:
            return self.latent_prior.sample(n, generator, temperature).to(self.device)
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return (z * temperature).to(self.device)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log-density of codes (B, Z) under the model's prior (the fitted mixture, or N(0, I)),
        at temperature 1 -> (B,) float64."""
        if self.latent_prior is not None:
            return self.latent_prior.log_prob(z.cpu())
        z = z.double().cpu()
        return -0.5 * (z.pow(2).sum(1) + z.shape[1] * math.log(2 * math.pi))

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, generator: torch.Generator | None = None,
                    sample_posterior: bool = False) -> torch.Tensor:
        """Decode the posterior mean (or a sample of it) of x: (B, C, H, W) -> same shape."""
        post = self.encoder(x.to(self.device))
        z = post.sample(generator) if sample_posterior else post.mean
        return self.decoder(z)
