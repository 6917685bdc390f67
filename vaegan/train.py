"""`python -m vaegan.train`: the VAE/GAN (or plain VAE) training loop and its CLI.

    python -m vaegan.train --preset fashion-mnist --epochs 10 --out runs/fmnist
    python -m vaegan.train --out runs/fmnist --resume      # continue from runs/fmnist/checkpoint.pt
    torchrun --nproc-per-node 2 -m vaegan.train --out runs/fmnist    # 2 processes (vaegan/distributed.py)

Writes into --out: checkpoint.pt (atomic: temp file + os.replace; model, the three
optimizers, step, epoch, RNG states), metrics.jsonl (one line per logged step and per
epoch), samples_eNNN.png and recon_eNNN.png each epoch, and model/ (config.json +
model.safetensors) at the end. Under torchrun only rank 0 writes; --batch-size is the global
batch, split evenly over the processes, and a run resumes on any number of them.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
import torch.nn.utils.parametrize as parametrize
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image
from tqdm import tqdm

from . import latent, losses
from .data import load_dataset
from .distributed import World, close_world, global_batchnorm, init_world
from .model import PRESETS, VAEGAN, DiagonalGaussian, VAEGANConfig


MEMORY_FORMAT = torch.channels_last  # of the model and batches during training
# the arithmetic of the networks' forward and backward passes: "bf16" runs them under
# torch.autocast in bfloat16 (matrix units such as Intel AMX or tensor cores; about 1.5-1.8x
# a step on this project's CPU, benchmarks/train_step.py); weights, optimiser state and the
# losses stay float32 either way
PRECISIONS = ("fp32", "bf16")


AUGMENTS = ("none", "flip")


def augment(x: torch.Tensor, kind: str, generator: torch.Generator,
            world: World | None = None) -> torch.Tensor:
    """A batch (B, C, H, W) -> the batch augmented as --augment says: with "flip", each picture
    is mirrored left-right when its draw from generator says so (half of them). With world,
    x is this rank's share of the global batch: the draws are the global batch's, its rows kept.

    Shifts were tried and left out: emoji fill their square, so a shift cuts one off and the
    repeated border smears its edge, and the samples learn both."""
    if kind == "none":
        return x
    n, rows = (world or World()).rows(len(x))
    flip = torch.rand(n, generator=generator)[rows] < 0.5
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x)


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class StepLosses:
    prior: float
    llike: float
    gan_gen: float = 0.0
    gan_dis: float = 0.0

    @property
    def total(self) -> float:  # what a VAE/GAN minimises overall, for logging
        return self.prior + self.llike + self.gan_gen + self.gan_dis


def make_optimizers(model: VAEGAN, lr: float, disc_lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
    """Adam per network; disc_lr (default: lr) lets the discriminator learn faster (TTUR,
    Heusel et al. 2017)."""
    betas = (0.5, 0.999)
    opts = {"encoder": torch.optim.Adam(model.encoder.parameters(), lr=lr, betas=betas),
            "decoder": torch.optim.Adam(model.decoder.parameters(), lr=lr, betas=betas)}
    if model.discriminator is not None:
        opts["discriminator"] = torch.optim.Adam(model.discriminator.parameters(),
                                                 lr=disc_lr or lr, betas=betas)
    return opts


def discriminate(disc, x: torch.Tensor, fakes: torch.Tensor):
    """(logits (B,), features Dis_l (B, C_l, h, w)) of the real images x (B, ...) and of the
    two halves of fakes (2B, ...): reconstructions, then prior samples.

    Three calls, not one on the (3B) concatenation: the encoder's gradient then flows back
    through the B reconstructions only, not through zeros for the real and prior images
    (about 10% of a step on the CPU; benchmarks/train_step.py). The discriminator has no
    batch statistics, so the outputs are the same; cached() computes each spectral-normalised
    weight (one power iteration) once for the three calls, as one call did.
    """
    b = len(x)
    with parametrize.cached():
        return disc(x), disc(fakes[:b]), disc(fakes[b:])


def discriminate_at_once(disc, x: torch.Tensor, fakes: torch.Tensor):
    """What discriminate returns, from one call on the (3B) concatenation, as the training
    step ran before: the reference that tests/test_model.py and benchmarks/train_step.py
    compare discriminate with."""
    b = len(x)
    logits, feats = disc(torch.cat([x, fakes]))
    return ((logits[:b], feats[:b]), (logits[b:2 * b], feats[b:2 * b]),
            (logits[2 * b:], feats[2 * b:]))


GAN_CODES = ("standard", "prior")  # --gan-codes: where the decoded "prior samples" come from


@dataclass(frozen=True)
class Fakes:
    """What the decoder paints from codes that belong to no picture, beside reconstructions.

    codes: "standard" draws them from N(0, I), as Larsen et al.; "prior" from the model's
    fitted mixture (vaegan.prior), the codes the app samples, for fine-tuning a model that
    has one. mix: the share of them replaced by slerp mixes of two pictures' posterior codes,
    at t ~ U(0, 1), the path the app's Interpolate takes by default: a fake for the
    discriminator, and the decoder's GAN term asks that it looks real (the adversarial
    regulariser of Berthelot et al. 2018, "Understanding and Improving Interpolation in
    Autoencoders via an Adversarial Regularizer", with the discriminator as critic).
    """
    codes: str = "standard"
    mix: float = 0.0

    def __post_init__(self) -> None:
        if self.codes not in GAN_CODES:
            raise ValueError(f"codes must be one of {GAN_CODES}, got {self.codes!r}")
        if not 0.0 <= self.mix <= 1.0:
            raise ValueError(f"mix must be a share from 0 to 1, got {self.mix!r}")


def fake_codes(model: VAEGAN, z: torch.Tensor, n: int, rows: slice, generator: torch.Generator,
               fakes: Fakes = Fakes()) -> torch.Tensor:
    """This rank's rows of the global batch's fake codes (B, Z), as `fakes` says. z: this rank's
    posterior samples (B, Z). Mixes pair rows 2i and 2i + 1 of the global batch (so B is even)
    and take its first round(mix * n) rows; all noise is drawn for the global batch."""
    dim = z.shape[1]
    if fakes.codes == "prior":
        if model.latent_prior is None:
            raise ValueError("codes 'prior' needs a model with a fitted mixture prior (vaegan.prior)")
        e = torch.randn((n, dim + 1), generator=generator, device=z.device)
        z_p = model.latent_prior.transform(e)[rows].to(z.dtype)
    else:
        z_p = torch.randn((n, dim), generator=generator, device=z.device)[rows]  # (B, Z) ~ N(0, I)
    if fakes.mix > 0:
        t = torch.rand(n, generator=generator, device=z.device)[rows]
        z = z.detach()
        partner = z.view(-1, 2, dim).flip(1).reshape(-1, dim)  # rows 2i <-> 2i + 1
        mixes = latent.slerp_rows(z, partner, t)
        first = torch.arange(n, device=z.device)[rows] < round(fakes.mix * n)
        z_p = torch.where(first[:, None], mixes, z_p)
    return z_p


def vaegan_losses(model: VAEGAN, x: torch.Tensor, generator: torch.Generator,
                  world: World | None = None, fakes: Fakes = Fakes()):
    """Forward pass of Algorithm 1 -> (losses per network, logged values).

    x: (B, C, H, W) in [0, 1]. Returns dict network -> scalar loss for that network. With
    world, x is this rank's share of a global batch: the noise is drawn for the global batch
    on every rank alike (the generator stays the same everywhere) and this rank's rows kept.
    fakes says where the codes of the decoded fakes beside reconstructions come from.
    """
    n, rows = (world or World()).rows(len(x))
    post = model.encode(x)  # under bf16 autocast the networks' outputs are bfloat16: the
    post = DiagonalGaussian(post.mean.float(), post.logvar.float())  # losses take float32
    eps = torch.randn((n, post.mean.shape[1]), generator=generator, device=post.mean.device,
                      dtype=post.mean.dtype)[rows]
    z = post.mean + post.std * eps  # (B, Z); alone, the same numbers as post.sample(generator)
    z_p = fake_codes(model, z, n, rows, generator, fakes)
    l_prior = losses.kl_loss(post)
    beta = model.config.beta
    if model.discriminator is None:  # plain VAE: prior samples play no part in its loss
        x_rec = model.decode(z).float()
        l_llike = losses.pixel_llike_loss(x, x_rec)
        return ({"encoder": beta * l_prior + l_llike, "decoder": l_llike},
                StepLosses(l_prior.item(), l_llike.item()))
    fakes = model.decode(torch.cat([z, z_p]))  # (2B, C, H, W): reconstructions, then samples
    (d_real, f_real), (d_rec, f_rec), (d_prior, _) = [
        (d.float(), f.float()) for d, f in discriminate(model.discriminator, x, fakes)]
    l_llike = losses.feature_llike_loss(f_real, f_rec)
    l_gen = losses.gan_generator_loss(d_rec, d_prior)
    l_dis = losses.gan_discriminator_loss(d_real, d_rec, d_prior)
    gamma = model.config.gamma
    per_net = {"encoder": beta * l_prior + l_llike,
               "decoder": gamma * l_llike + l_gen,
               "discriminator": l_dis}
    return per_net, StepLosses(l_prior.item(), l_llike.item(), l_gen.item(), l_dis.item())


def check_finite(logged: StepLosses) -> None:
    if not all(math.isfinite(v) for v in dataclasses.astuple(logged)):
        raise NonFiniteLoss(f"non-finite loss {logged}")


def routed_grads(model: VAEGAN, x: torch.Tensor, generator: torch.Generator,
                 world: World | None = None, fakes: Fakes = Fakes()):
    """Each network's gradient of its own loss only -> ({network: [grad per parameter]}, losses).

    torch.autograd.grad with inputs= restricts each loss to its network's parameters, so
    L_GAN never reaches the encoder and the discriminator's loss never moves enc/dec. With a
    world of several ranks, the gradients and the logged losses are averaged over the ranks
    (one all_reduce; see vaegan/distributed.py), and the finite check reads the averages, so
    that every rank stops at the same step.
    """
    alone = world is None or world.size == 1
    per_net, logged = vaegan_losses(model, x, generator, world, fakes)
    if alone:
        check_finite(logged)
    nets = {"encoder": model.encoder, "decoder": model.decoder,
            "discriminator": model.discriminator}
    grads = {}
    for i, name in enumerate(per_net):
        params = list(nets[name].parameters())
        grads[name] = torch.autograd.grad(per_net[name], params,
                                          retain_graph=i < len(per_net) - 1, allow_unused=True)
    if not alone:
        losses = torch.tensor(dataclasses.astuple(logged), device=world.device)
        world.average_([g for gs in grads.values() for g in gs if g is not None] + [losses])
        logged = StepLosses(*losses.tolist())
        check_finite(logged)
    return grads, logged


def arithmetic(precision: str, device_type: str):
    """The context the networks' passes of a step run in: bfloat16 autocast for "bf16", none
    (float32) for "fp32"."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(model: VAEGAN, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor,
               generator: torch.Generator, world: World | None = None,
               fakes: Fakes = Fakes(), precision: str = "fp32") -> StepLosses:
    """One step of Algorithm 1: all networks get their routed gradients (averaged over the
    ranks of world), then step. precision (PRECISIONS) is the arithmetic of the passes through
    the networks; the float32 weights take float32 gradients either way."""
    with arithmetic(precision, x.device.type):
        grads, logged = routed_grads(model, x, generator, world, fakes)
    nets = {"encoder": model.encoder, "decoder": model.decoder,
            "discriminator": model.discriminator}
    for name, gs in grads.items():
        for p, g in zip(nets[name].parameters(), gs):
            p.grad = g
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)
    return logged


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write: a half-written file never replaces the last good checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vaegan.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist",
                   help="'fashion-mnist' or a folder of images (default: fashion-mnist)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the Fashion-MNIST IDX .gz files "
                        "(default: /usr/share/datasets/fashion-mnist)")
    p.add_argument("--preset", default="fashion-mnist", choices=sorted(PRESETS))
    p.add_argument("--mode", default="vaegan", choices=["vaegan", "vae"])
    p.add_argument("--gamma", type=float, default=None, help="override the preset's gamma")
    p.add_argument("--disc-norm", default=None, choices=["none", "spectral"],
                   help="override the preset's discriminator normalisation")
    p.add_argument("--beta", type=float, default=None,
                   help="the KL term's weight in the encoder's loss (default 1, as Larsen et al.; "
                        "below 1 the codes keep more of each picture)")
    p.add_argument("--latent-dim", type=int, default=None, help="override the preset's latent size")
    p.add_argument("--disc-widths", default=None, metavar="W1,W2",
                   help="override the preset's discriminator widths, e.g. 64,128")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop when the run's wall time (resumed parts included) reaches this, "
                        "checkpoint and export as at the end")
    p.add_argument("--batch-size", type=int, default=128,
                   help="the global batch: under torchrun each of the N processes takes 1/N of it "
                        "(N must divide it)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--disc-lr", type=float, default=None,
                   help="discriminator learning rate (default: --lr)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the decoder's weights and "
                        "buffers (e.g. 0.999) and export it; the live weights go to "
                        "OUT/model_live/ for comparison")
    p.add_argument("--mix", type=float, default=0.0, metavar="SHARE",
                   help="replace this share (0-1) of the decoded prior samples with slerp mixes of "
                        "two training pictures' codes, which the discriminator learns to call fake "
                        "and the decoder to paint real (ACAI, Berthelot et al. 2018; default 0)")
    p.add_argument("--gan-codes", default="standard", choices=GAN_CODES,
                   help="where the decoded prior samples' codes come from: 'standard' N(0, I) "
                        "(default), or 'prior', the --init-from model's fitted mixture, which it "
                        "keeps (fine-tuning on the codes the app samples; refit it afterwards)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="arithmetic of the networks' passes: 'bf16' runs them under torch.autocast "
                        "in bfloat16, about 1.5-1.8x faster a step on a CPU with AMX "
                        "(benchmarks/train_step.py); weights and losses stay float32 (default fp32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init-from", default=None, metavar="SPEC",
                   help="fine-tune: start from a weights folder or Hub repo id (org/name[@rev]); "
                        "the architecture comes from it (--gamma and --beta may still be set)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--ckpt-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between metrics lines")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--augment", default="none", choices=sorted(AUGMENTS),
                   help="training-time augmentation of each batch: 'flip' mirrors half of the "
                        "pictures left-right; for small sets such as emoji (default: none)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that decode a folder of pictures at the start (a DataLoader's "
                        "num_workers; default 0: this process); the decoded pictures then stay in "
                        "memory, so no worker runs during training")
    p.add_argument("--nan-at-step", type=int, default=None, help=argparse.SUPPRESS)  # fault test
    # tests/test_distributed.py: every rank saves its final state to OUT/rankR.pt
    p.add_argument("--save-rank-states", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        p.error(f"--time-limit takes a number of minutes > 0, got {args.time_limit}")
    return args


def check_output_dir(out: Path) -> None:
    """Fail before training when the run folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as e:
        raise SystemExit(f"error: cannot write to the output folder {out}: {e.strerror or e}")
    free = shutil.disk_usage(out).free
    if free < 50 * 2**20:
        raise SystemExit(f"error: only {free // 2**20} MiB free in {out}; need at least 50 MiB "
                         "for checkpoints and sample grids")


def platform_summary() -> str:
    import platform
    cpu = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU"
    return f"{os.cpu_count()}-core {cpu} CPU ({platform.system()})"


@dataclass
class Run:
    """A training run: what build() sets up and the loop advances, with the files it writes."""
    args: argparse.Namespace
    out: Path  # the run folder
    ckpt_path: Path  # OUT/checkpoint.pt
    device: torch.device
    config: VAEGANConfig
    hp: dict  # the hyperparameters kept in the checkpoint ("args"); --resume reuses them
    model: VAEGAN
    opts: dict[str, torch.optim.Optimizer]
    gen: torch.Generator  # reparameterisation + prior noise
    ema: AveragedModel | None  # the decoder's moving average (--ema)
    images: torch.Tensor  # (N, C, H, W) uint8 training images
    fixed_z: torch.Tensor  # (64, Z): the codes of the sample grids
    fixed_x: torch.Tensor  # (32, C, H, W) in [0, 1]: the images of the reconstruction grids
    command: str  # the command that started the run
    world: World = dataclasses.field(default_factory=World)  # this process among the ranks
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    saved_step: int | None = None  # the step of the last good checkpoint
    elapsed0: float = 0.0  # wall seconds of the run's earlier parts (before --resume)
    t0: float = 0.0  # time.time() when this part's loop started

    @property
    def per_epoch(self) -> int:
        return len(self.images) // self.hp["batch_size"]

    @property
    def per_rank(self) -> int:
        """This rank's share of the global batch (hp["batch_size"])."""
        return self.hp["batch_size"] // self.world.size

    @property
    def max_steps(self) -> int:
        a = self.args
        return a.max_steps if a.max_steps is not None else a.epochs * self.per_epoch

    def elapsed(self) -> float:
        """Wall seconds of the whole run so far, resumed parts included."""
        return self.elapsed0 + time.time() - self.t0

    def out_of_time(self) -> bool:
        """--time-limit reached, by rank 0's clock: every rank stops at the same step."""
        if self.args.time_limit is None:
            return False
        return self.world.agree(self.elapsed() >= 60 * self.args.time_limit)

    def state(self) -> dict:
        """What checkpoint.pt holds, but for elapsed_s."""
        return {"config": self.config.to_dict(), "args": self.hp, "model": self.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
                "generator": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "command": self.command, "world_size": self.world.size,
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def checkpoint(self) -> None:
        """Rank 0 writes OUT/checkpoint.pt (the other ranks hold the same numbers)."""
        if self.world.main:
            save_checkpoint(self.ckpt_path, {**self.state(), "elapsed_s": self.elapsed()})
        self.saved_step = self.step

    def exported_model(self) -> VAEGAN:
        """The model as shipped: with --ema, the averaged decoder in place of the live one."""
        if self.ema is None:
            return self.model
        shipped = copy.deepcopy(self.model)
        shipped.decoder.load_state_dict(self.ema.module.state_dict())
        return shipped.eval()

    def export(self, seconds: float, shipped: VAEGAN | None = None) -> None:
        """OUT/model/: config.json + model.safetensors (+ the mixin's card) and training.json;
        with --ema also the live weights in OUT/model_live/."""
        folder, hp = self.out / "model", self.hp
        (shipped or self.exported_model()).save_pretrained(folder)
        if self.ema is not None:
            self.model.save_pretrained(folder.with_name(folder.name + "_live"))
        info = {"command": self.command, "epochs": self.epoch, "steps": self.step,
                "train_seconds": round(seconds, 1), "batch_size": hp["batch_size"], "lr": hp["lr"],
                "disc_lr": hp.get("disc_lr") or hp["lr"], "ema": hp.get("ema"), "seed": hp["seed"],
                "augment": hp.get("augment", "none"), "mix": hp.get("mix", 0.0),
                "gan_codes": hp.get("gan_codes", "standard"),
                "precision": hp.get("precision", "fp32"),
                "dataset": hp["dataset"], "device": str(self.device),
                "world_size": self.world.size, "backend": self.world.backend,
                "batch_per_process": self.per_rank,
                "threads": torch.get_num_threads(), "torch": torch.__version__,
                "machine": platform_summary()}
        (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")


# ---- build: from the flags (or a checkpoint) to a Run ------------------------------------------
def load_checkpoint(ckpt_path: Path) -> dict:
    """The checkpoint that --resume continues from, on the CPU."""
    if not ckpt_path.exists():
        raise SystemExit(f"error: --resume given but {ckpt_path} does not exist")
    return torch.load(ckpt_path, map_location="cpu", weights_only=True)


def config_overrides(args: argparse.Namespace) -> dict:
    """The preset fields the flags set: --mode, and --gamma, --beta, --disc-norm, --latent-dim
    and --disc-widths where given."""
    overrides = {"mode": args.mode}
    for key in ("gamma", "beta", "disc_norm", "latent_dim"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.disc_widths is not None:
        try:
            overrides["disc_widths"] = tuple(int(w) for w in args.disc_widths.split(","))
        except ValueError:
            raise SystemExit(f"error: --disc-widths takes comma-separated integers such as "
                             f"64,128, got {args.disc_widths!r}") from None
    return overrides


def new_config(args: argparse.Namespace) -> tuple[VAEGANConfig, VAEGAN | None]:
    """A new run's architecture -> (config, the --init-from model or None): the preset with
    the flags' overrides or, with --init-from, the source model's (--gamma and --beta may still be set)."""
    overrides = config_overrides(args)
    try:
        config = dataclasses.replace(PRESETS[args.preset], **overrides)
    except ValueError as e:  # e.g. --beta 0 or --gamma -1: the flag and what it accepts
        raise SystemExit(f"error: {e}") from None
    if not args.init_from:
        return config, None
    from .hub import ModelLoadError, load_model
    try:
        init = load_model(args.init_from).model
    except ModelLoadError as e:
        raise SystemExit(f"error: --init-from: {e}") from None
    keep = {k: v for k, v in overrides.items() if k in ("gamma", "beta")}
    if args.gan_codes == "prior":  # the fakes' codes come from the fitted mixture: keep it
        if init.latent_prior is None:
            raise SystemExit(f"error: --gan-codes prior needs a model with a fitted mixture prior; "
                             f"{args.init_from} samples from N(0, I) (fit one with python -m vaegan.prior)")
        return dataclasses.replace(init.config, **keep), init
    # training samples z_p from N(0, I) (Larsen et al.); a fitted prior would go stale
    # as the encoder moves, so fine-tuning starts without it (refit with vaegan.prior)
    from .prior import with_prior
    init = with_prior(init)
    return dataclasses.replace(init.config, **keep), init


def new_hparams(args: argparse.Namespace) -> dict:
    """A new run's hyperparameters, as its checkpoint keeps them ("args")."""
    if args.ema is not None and not 0.0 < args.ema < 1.0:
        raise SystemExit(f"error: --ema takes a decay between 0 and 1 such as 0.999, got {args.ema}")
    if not 0.0 <= args.mix <= 1.0:
        raise SystemExit(f"error: --mix takes a share from 0 to 1 such as 0.5, got {args.mix}")
    if args.gan_codes == "prior" and not args.init_from:
        raise SystemExit("error: --gan-codes prior fine-tunes a model with a fitted mixture prior: "
                         "give it with --init-from")
    return {k: getattr(args, k) for k in ("dataset", "data_dir", "batch_size", "lr", "disc_lr",
                                          "ema", "seed", "limit", "augment", "workers", "mix",
                                          "gan_codes", "precision")}


def build_networks(config: VAEGANConfig, hp: dict, device: torch.device, init: VAEGAN | None
                   ) -> tuple[VAEGAN, dict[str, torch.optim.Optimizer], torch.Generator,
                              AveragedModel | None]:
    """Seeded from hp -> (model on device, its optimizers, the noise generator, the decoder's
    moving average or None); with init, the model starts from init's weights."""
    torch.manual_seed(hp["seed"])
    # channels-last activations and conv weights: oneDNN's fast layout, about 10% of a
    # step on the CPU; the saved weights are the same numbers (the Hub mixin saves them
    # contiguous)
    model = VAEGAN(config).to(device, memory_format=MEMORY_FORMAT)
    opts = make_optimizers(model, hp["lr"], hp.get("disc_lr"))
    gen = torch.Generator(device=device).manual_seed(hp["seed"] + 1)  # reparam + prior noise
    if init is not None:
        model.load_state_dict(init.state_dict(), strict=True)
    ema = None
    if hp.get("ema"):  # the decoder's moving average, buffers (BatchNorm statistics) included
        ema = AveragedModel(model.decoder, multi_avg_fn=get_ema_multi_avg_fn(hp["ema"]),
                            use_buffers=True)
    return model, opts, gen, ema


def restore(ckpt: dict, model: VAEGAN, ema: AveragedModel | None,
            opts: dict[str, torch.optim.Optimizer], gen: torch.Generator) -> tuple[int, int, int]:
    """Load a checkpoint's weights, optimizer and RNG states -> (step, epoch, batch_in_epoch)."""
    model.load_state_dict(ckpt["model"], strict=True)
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    for name, opt in opts.items():
        opt.load_state_dict(ckpt["optimizers"][name])
    gen.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    return ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]


def load_images(hp: dict, config: VAEGANConfig, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (training images (N, C, H, W) uint8, after --limit; the fixed codes (64, Z) and
    images (32, C, H, W) in [0, 1] of the grids drawn each epoch)."""
    images, _ = load_dataset(hp["dataset"], "train", hp["data_dir"], config.image_size, config.channels,
                             workers=hp.get("workers") or 0)
    if hp["limit"]:
        images = images[: hp["limit"]]
    n, bs = len(images), hp["batch_size"]
    if n // bs == 0:
        raise SystemExit(f"error: {n} training images is fewer than one batch of {bs}")
    fixed_gen = torch.Generator().manual_seed(1234)
    fixed_z = torch.randn(64, config.latent_dim, generator=fixed_gen).to(device)
    fixed_x = images[torch.randperm(n, generator=fixed_gen)[:32]].float().div(255).to(device)
    return images, fixed_z, fixed_x


def prepare_folder(out: Path, ckpt_path: Path, resume: bool) -> dict | None:
    """Check that the run folder can be written, remove temp files of a killed write -> the
    checkpoint that --resume continues from, or None."""
    check_output_dir(out)
    for stale in out.glob(".ckpt-*.tmp"):  # left by a process killed while writing a checkpoint
        stale.unlink(missing_ok=True)
    return load_checkpoint(ckpt_path) if resume else None


def torchrun_command(world: World, argv: list[str]) -> str:
    """The command that started a run on world: python -m vaegan.train, or torchrun."""
    if world.size == 1:
        return "python -m vaegan.train " + " ".join(argv)
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
    nodes = f"--nnodes {world.size // per_node} " if per_node != world.size else ""
    return f"torchrun {nodes}--nproc-per-node {per_node} -m vaegan.train " + " ".join(argv)


def build(args: argparse.Namespace, argv: list[str] | None = None, world: World | None = None) -> Run:
    """The run folder, model, optimizers, noise generator and data of a new run, or with
    --resume of the one in OUT/checkpoint.pt at its saved position. With a world of several
    ranks, rank 0 alone touches the folder and reads the checkpoint, which it hands to the
    others (no shared file system needed but for the data)."""
    world = world or World(device=torch.device(args.device))
    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    ckpt = failure = None
    if world.main:
        try:
            ckpt = prepare_folder(out, ckpt_path, args.resume)
        except SystemExit as e:
            if world.size == 1:
                raise
            failure = e.code
    failure, ckpt = world.share((failure, ckpt))
    if failure is not None:  # every rank stops with rank 0's sentence
        raise SystemExit(failure)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = world.device
    init = None
    if ckpt is not None:
        config, hp = VAEGANConfig.from_dict(ckpt["config"], source=str(ckpt_path)), ckpt["args"]
    else:
        config, init = new_config(args)
        hp = new_hparams(args)
    if hp["batch_size"] % world.size:
        given = "the checkpoint's global batch" if ckpt is not None else "--batch-size (the global batch)"
        raise SystemExit(f"error: {given} is {hp['batch_size']}, which {world.size} processes cannot "
                         f"share evenly; use a multiple of {world.size}, or another number of processes")
    if hp.get("mix") and hp["batch_size"] % (2 * world.size):
        raise SystemExit(f"error: --mix pairs the pictures of each process's share of the batch, so "
                         f"--batch-size must be a multiple of {2 * world.size}, got {hp['batch_size']}")
    if hp.get("mix") and config.mode != "vaegan":
        raise SystemExit("error: --mix feeds the discriminator; a plain VAE (--mode vae) has none")
    model, opts, gen, ema = build_networks(config, hp, device, init)
    if world.size > 1:  # BatchNorm statistics of the global batch, as in one process
        global_batchnorm(model)
    if init is not None and world.main:
        print(f"initialised from {args.init_from}")
    step, epoch, batch_in_epoch = 0, 0, 0
    if ckpt is not None:
        step, epoch, batch_in_epoch = restore(ckpt, model, ema, opts, gen)
        if world.main:
            was = ckpt.get("world_size", 1)
            print(f"resumed from {ckpt_path} at step {step} (epoch {epoch}, batch {batch_in_epoch})"
                  + (f"; written by {was} process(es), continued by {world.size}"
                     if was != world.size else ""))
    world.broadcast_state(model)  # equal already (same seed or checkpoint); rank 0's, to be sure
    images, fixed_z, fixed_x = load_images(hp, config, device)
    resumed = ckpt or {}
    command = torchrun_command(world, argv if argv is not None else sys.argv[1:])
    return Run(args=args, out=out, ckpt_path=ckpt_path, device=device, config=config, hp=hp,
               model=model, opts=opts, gen=gen, ema=ema, images=images, fixed_z=fixed_z,
               fixed_x=fixed_x, command=resumed.get("command", command),  # the one that started it
               world=world, step=step, epoch=epoch, batch_in_epoch=batch_in_epoch,
               saved_step=resumed.get("step"), elapsed0=resumed.get("elapsed_s", 0.0))


# ---- loop: epochs of steps, with checkpoints, metrics and grids on the way -------------------
def write_row(log: TextIO, row: dict) -> None:
    """One line of metrics.jsonl, flushed."""
    log.write(json.dumps(row) + "\n")
    log.flush()


def train_epoch(run: Run, log: TextIO) -> dict[str, float]:
    """The batches of run.epoch from run.batch_in_epoch on, until the epoch ends or
    --max-steps or --time-limit stops it -> the sums of the logged losses (means over the
    global batch). Each rank takes its own rows of each global batch (World.rows)."""
    args, bs, world = run.args, run.hp["batch_size"], run.world
    # the data order of an epoch depends only on (seed, epoch): resumable mid-epoch
    perm = torch.randperm(len(run.images),
                          generator=torch.Generator().manual_seed(run.hp["seed"] * 1000 + run.epoch))
    run.model.train()
    sums: dict[str, float] = {}
    bar = tqdm(range(run.batch_in_epoch, run.per_epoch), desc=f"epoch {run.epoch + 1}/{args.epochs}",
               initial=run.batch_in_epoch, total=run.per_epoch, dynamic_ncols=True,
               file=sys.stderr, mininterval=2.0, disable=not world.main)
    for b in bar:
        if run.step >= run.max_steps or run.out_of_time():
            break
        _, rows = world.rows(run.per_rank)  # this rank's rows of global batch b
        idx = perm[b * bs:(b + 1) * bs][rows]
        x = run.images[idx].to(run.device).float().div_(255)  # (B / world size, C, H, W)
        # the augmentation of a batch depends only on (seed, epoch, batch): resumable too
        x = augment(x, run.hp.get("augment", "none"), torch.Generator().manual_seed(
            (run.hp["seed"] * 100_003 + run.epoch) * 100_003 + b), world)
        x = x.contiguous(memory_format=MEMORY_FORMAT)
        if args.nan_at_step is not None and run.step == args.nan_at_step:
            x = x * float("nan")
        logged = train_step(run.model, run.opts, x, run.gen, world,  # NonFiniteLoss: the loop stops
                            Fakes(run.hp.get("gan_codes", "standard"), run.hp.get("mix", 0.0)),
                            run.hp.get("precision", "fp32"))
        if run.ema is not None:
            run.ema.update_parameters(run.model.decoder)
        run.step += 1
        run.batch_in_epoch = b + 1
        row = dataclasses.asdict(logged)
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
        if run.step % args.log_every == 0:
            write_row(log, {"step": run.step, "epoch": run.epoch, **row})
        if run.step % args.ckpt_every == 0:
            run.checkpoint()
    bar.close()
    return sums


def end_epoch(run: Run, log: TextIO, sums: dict[str, float]) -> None:
    """Close a finished epoch: its mean losses to metrics.jsonl, samples_eNNN.png and
    recon_eNNN.png from the shipped model, which is exported (by rank 0)."""
    run.epoch += 1
    run.batch_in_epoch = 0
    if not run.world.main:
        return
    count = max(1, run.per_epoch)
    write_row(log, {"epoch_end": run.epoch, "step": run.step, "elapsed_s": round(run.elapsed(), 1),
                    **{k: v / count for k, v in sums.items()}})
    run.model.eval()
    shown = run.exported_model()
    with torch.inference_mode():
        save_image(shown.decode(run.fixed_z), run.out / f"samples_e{run.epoch:03d}.png", nrow=8)
        rec = shown.reconstruct(run.fixed_x)
        save_image(torch.cat([run.fixed_x, rec]), run.out / f"recon_e{run.epoch:03d}.png", nrow=8)
    run.export(run.elapsed(), shown)


def train_loop(run: Run) -> int:
    """Epochs until --epochs, --max-steps or --time-limit, then the export -> exit status:
    0 done, 2 a non-finite loss, 3 a run file could not be written, 4 another rank was lost
    (each with a sentence). Rank 0 writes; every rank stops at the same step."""
    args, world = run.args, run.world
    log = open(run.out / "metrics.jsonl", "a") if world.main else open(os.devnull, "w")
    say = print if world.main else (lambda *a, **k: None)
    run.t0 = time.time()
    try:
        while run.epoch < args.epochs and run.step < run.max_steps and not run.out_of_time():
            sums = train_epoch(run, log)
            if run.batch_in_epoch >= run.per_epoch:
                end_epoch(run, log, sums)
            run.checkpoint()
        run.model.eval()
        total = run.elapsed()
        if world.main:
            run.export(total)
        if args.save_rank_states:
            torch.save(run.state(), run.out / f"rank{world.rank}.pt")
        if run.out_of_time() and run.epoch < args.epochs and run.step < run.max_steps:
            say(f"stopped at the time limit of {args.time_limit:g} min (step {run.step}, epoch "
                f"{run.epoch + 1}); --resume with a later --time-limit continues", file=sys.stderr)
    except NonFiniteLoss as e:
        say(f"\nerror: {e} at step {run.step} (epoch {run.epoch + 1}); training stopped. "
            f"The last good checkpoint, {run.ckpt_path}, is untouched; try a lower "
            "--lr or resume from it.", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, folder removed, quota ...: a sentence, not a traceback
        where = f" ({e.filename})" if e.filename else ""
        last = (f"The last good checkpoint, {run.ckpt_path} (step {run.saved_step}), is untouched; "
                "free some space and continue with --resume." if run.saved_step is not None
                else "No checkpoint had been written yet.")
        print(f"\nerror: could not write the run's files at step {run.step}: {e.strerror or e}{where}; "
              f"training stopped. {last}", file=sys.stderr)
        return 3
    except torch.distributed.DistError as e:  # a rank died or hung: its peers' collectives fail
        print(f"\nerror: rank {world.rank} lost the other training processes at step {run.step} "
              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else '?'}); training stopped. "
              + (f"Continue from the last checkpoint, {run.ckpt_path} (step {run.saved_step}), "
                 "with --resume." if run.saved_step is not None
                 else "No checkpoint had been written yet."), file=sys.stderr)
        return 4
    finally:
        log.close()
    say(f"done: {run.step} steps, {run.epoch} epochs, {total / 60:.1f} min; "
        f"weights in {run.out / 'model'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The CLI: parse the flags, join the other processes under torchrun, build the run,
    train -> exit status."""
    args = parse_args(argv)
    world = init_world(args.device)
    try:
        return train_loop(build(args, argv, world))
    finally:
        close_world(world)


if __name__ == "__main__":
    raise SystemExit(main())
