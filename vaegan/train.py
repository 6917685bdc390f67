"""`python -m vaegan.train`: the VAE/GAN (or plain VAE) training loop and its CLI.

    python -m vaegan.train --preset fashion-mnist --epochs 10 --out runs/fmnist
    python -m vaegan.train --out runs/fmnist --resume      # continue from runs/fmnist/checkpoint.pt

Writes into --out: checkpoint.pt (atomic: temp file + os.replace; model, the three
optimizers, step, epoch, RNG states), metrics.jsonl (one line per logged step and per
epoch), samples_eNNN.png and recon_eNNN.png each epoch, and model/ (config.json +
model.safetensors) at the end.
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

import torch
import torch.nn.utils.parametrize as parametrize
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image
from tqdm import tqdm

from . import losses
from .data import load_dataset
from .model import PRESETS, VAEGAN, VAEGANConfig


MEMORY_FORMAT = torch.channels_last  # of the model and batches during training


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


def vaegan_losses(model: VAEGAN, x: torch.Tensor, generator: torch.Generator):
    """Forward pass of Algorithm 1 -> (losses per network, logged values).

    x: (B, C, H, W) in [0, 1]. Returns dict network -> scalar loss for that network.
    """
    post = model.encode(x)
    z = post.sample(generator)  # (B, Z)
    z_p = torch.randn(z.shape, generator=generator, device=z.device)  # (B, Z) ~ N(0, I)
    l_prior = losses.kl_loss(post)
    if model.discriminator is None:  # plain VAE: prior samples play no part in its loss
        x_rec = model.decode(z)
        l_llike = losses.pixel_llike_loss(x, x_rec)
        return {"encoder": l_prior + l_llike, "decoder": l_llike}, StepLosses(l_prior.item(), l_llike.item())
    fakes = model.decode(torch.cat([z, z_p]))  # (2B, C, H, W): reconstructions, then samples
    (d_real, f_real), (d_rec, f_rec), (d_prior, _) = discriminate(model.discriminator, x, fakes)
    l_llike = losses.feature_llike_loss(f_real, f_rec)
    l_gen = losses.gan_generator_loss(d_rec, d_prior)
    l_dis = losses.gan_discriminator_loss(d_real, d_rec, d_prior)
    gamma = model.config.gamma
    per_net = {"encoder": l_prior + l_llike,
               "decoder": gamma * l_llike + l_gen,
               "discriminator": l_dis}
    return per_net, StepLosses(l_prior.item(), l_llike.item(), l_gen.item(), l_dis.item())


def routed_grads(model: VAEGAN, x: torch.Tensor, generator: torch.Generator):
    """Each network's gradient of its own loss only -> ({network: [grad per parameter]}, losses).

    torch.autograd.grad with inputs= restricts each loss to its network's parameters, so
    L_GAN never reaches the encoder and the discriminator's loss never moves enc/dec.
    """
    per_net, logged = vaegan_losses(model, x, generator)
    if not all(math.isfinite(v) for v in dataclasses.astuple(logged)):
        raise NonFiniteLoss(f"non-finite loss {logged}")
    nets = {"encoder": model.encoder, "decoder": model.decoder,
            "discriminator": model.discriminator}
    grads = {}
    for i, name in enumerate(per_net):
        params = list(nets[name].parameters())
        grads[name] = torch.autograd.grad(per_net[name], params,
                                          retain_graph=i < len(per_net) - 1, allow_unused=True)
    return grads, logged


def train_step(model: VAEGAN, opts: dict[str, torch.optim.Optimizer], x: torch.Tensor,
               generator: torch.Generator) -> StepLosses:
    """One step of Algorithm 1: all networks get their routed gradients, then step."""
    grads, logged = routed_grads(model, x, generator)
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
    p.add_argument("--latent-dim", type=int, default=None, help="override the preset's latent size")
    p.add_argument("--disc-widths", default=None, metavar="W1,W2",
                   help="override the preset's discriminator widths, e.g. 64,128")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop when the run's wall time (resumed parts included) reaches this, "
                        "checkpoint and export as at the end")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--disc-lr", type=float, default=None,
                   help="discriminator learning rate (default: --lr)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the decoder's weights and "
                        "buffers (e.g. 0.999) and export it; the live weights go to "
                        "OUT/model_live/ for comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init-from", default=None, metavar="SPEC",
                   help="fine-tune: start from a weights folder or Hub repo id (org/name[@rev]); "
                        "the architecture comes from it (--gamma may still be set)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--ckpt-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between metrics lines")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--nan-at-step", type=int, default=None, help=argparse.SUPPRESS)  # fault test
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    check_output_dir(out)
    for stale in out.glob(".ckpt-*.tmp"):  # left by a process killed while writing a checkpoint
        stale.unlink(missing_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ckpt_path = out / "checkpoint.pt"

    if args.resume:
        if not ckpt_path.exists():
            raise SystemExit(f"error: --resume given but {ckpt_path} does not exist")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        config = VAEGANConfig.from_dict(ckpt["config"], source=str(ckpt_path))
        hp = ckpt["args"]
    else:
        ckpt = None
        overrides = {"mode": args.mode}
        if args.gamma is not None:
            overrides["gamma"] = args.gamma
        if args.disc_norm is not None:
            overrides["disc_norm"] = args.disc_norm
        if args.latent_dim is not None:
            overrides["latent_dim"] = args.latent_dim
        if args.disc_widths is not None:
            try:
                overrides["disc_widths"] = tuple(int(w) for w in args.disc_widths.split(","))
            except ValueError:
                raise SystemExit(f"error: --disc-widths takes comma-separated integers such as "
                                 f"64,128, got {args.disc_widths!r}") from None
        config = dataclasses.replace(PRESETS[args.preset], **overrides)
        if args.init_from:  # fine-tune: the architecture comes from the source model
            from .hub import ModelLoadError, load_model
            try:
                init = load_model(args.init_from).model
            except ModelLoadError as e:
                raise SystemExit(f"error: --init-from: {e}") from None
            keep = {k: v for k, v in overrides.items() if k == "gamma"}
            # training samples z_p from N(0, I) (Larsen et al.); a fitted prior would go stale
            # as the encoder moves, so fine-tuning starts without it (refit with vaegan.prior)
            from .prior import with_prior
            init = with_prior(init)
            config = dataclasses.replace(init.config, **keep)
        hp = {k: getattr(args, k) for k in ("dataset", "data_dir", "batch_size", "lr", "disc_lr",
                                            "ema", "seed", "limit")}
        if args.ema is not None and not 0.0 < args.ema < 1.0:
            raise SystemExit(f"error: --ema takes a decay between 0 and 1 such as 0.999, got {args.ema}")

    torch.manual_seed(hp["seed"])
    # channels-last activations and conv weights: oneDNN's fast layout, about 10% of a
    # step on the CPU; the saved weights are the same numbers (the Hub mixin saves them
    # contiguous)
    model = VAEGAN(config).to(device, memory_format=MEMORY_FORMAT)
    opts = make_optimizers(model, hp["lr"], hp.get("disc_lr"))
    gen = torch.Generator(device=device).manual_seed(hp["seed"] + 1)  # reparam + prior noise
    step, epoch, batch_in_epoch = 0, 0, 0
    if ckpt is None and args.init_from:
        model.load_state_dict(init.state_dict(), strict=True)
        print(f"initialised from {args.init_from}")
    ema = None
    if hp.get("ema"):  # the decoder's moving average, buffers (BatchNorm statistics) included
        ema = AveragedModel(model.decoder, multi_avg_fn=get_ema_multi_avg_fn(hp["ema"]),
                            use_buffers=True)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=True)
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        for name, opt in opts.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        print(f"resumed from {ckpt_path} at step {step} (epoch {epoch}, batch {batch_in_epoch})")

    images, _ = load_dataset(hp["dataset"], "train", hp["data_dir"], config.image_size, config.channels)
    if hp["limit"]:
        images = images[: hp["limit"]]
    n = len(images)
    bs = hp["batch_size"]
    per_epoch = n // bs
    if per_epoch == 0:
        raise SystemExit(f"error: {n} training images is fewer than one batch of {bs}")
    fixed_gen = torch.Generator().manual_seed(1234)
    fixed_z = torch.randn(64, config.latent_dim, generator=fixed_gen).to(device)
    fixed_x = images[torch.randperm(n, generator=fixed_gen)[:32]].float().div(255).to(device)

    def state() -> dict:
        return {"config": config.to_dict(), "args": hp, "model": model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in opts.items()},
                "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "command": command,
                **({"ema": ema.state_dict()} if ema is not None else {})}

    def exported_model() -> VAEGAN:
        """The model as shipped: with --ema, the averaged decoder in place of the live one."""
        if ema is None:
            return model
        shipped = copy.deepcopy(model)
        shipped.decoder.load_state_dict(ema.module.state_dict())
        return shipped.eval()

    command = "python -m vaegan.train " + " ".join(argv if argv is not None else sys.argv[1:])
    if ckpt is not None:
        command = ckpt.get("command", command)  # the command that started the run

    def export(folder: Path, ep: int, st: int, seconds: float, shipped: VAEGAN | None = None) -> None:
        """config.json + model.safetensors (+ the mixin's card) and training.json."""
        (shipped or exported_model()).save_pretrained(folder)
        if ema is not None:
            model.save_pretrained(folder.with_name(folder.name + "_live"))
        info = {"command": command, "epochs": ep, "steps": st, "train_seconds": round(seconds, 1),
                "batch_size": bs, "lr": hp["lr"], "disc_lr": hp.get("disc_lr") or hp["lr"],
                "ema": hp.get("ema"), "seed": hp["seed"], "dataset": hp["dataset"],
                "device": str(device), "threads": torch.get_num_threads(),
                "torch": torch.__version__, "machine": platform_summary()}
        (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")

    saved_step = ckpt["step"] if ckpt else None  # the step of the last good checkpoint

    def checkpoint() -> None:
        nonlocal saved_step
        save_checkpoint(ckpt_path, {**state(), "elapsed_s": elapsed0 + time.time() - t0})
        saved_step = step

    log = open(out / "metrics.jsonl", "a")
    t0 = time.time()
    elapsed0 = ckpt["elapsed_s"] if ckpt and "elapsed_s" in ckpt else 0.0
    max_steps = args.max_steps if args.max_steps is not None else args.epochs * per_epoch

    def out_of_time() -> bool:
        return args.time_limit is not None and elapsed0 + time.time() - t0 >= 60 * args.time_limit

    try:
        while epoch < args.epochs and step < max_steps and not out_of_time():
            # the data order of an epoch depends only on (seed, epoch): resumable mid-epoch
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(hp["seed"] * 1000 + epoch))
            model.train()
            sums: dict[str, float] = {}
            bar = tqdm(range(batch_in_epoch, per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}",
                       initial=batch_in_epoch, total=per_epoch, dynamic_ncols=True,
                       file=sys.stderr, mininterval=2.0)
            for b in bar:
                if step >= max_steps or out_of_time():
                    break
                x = images[perm[b * bs:(b + 1) * bs]].to(device).float().div_(255)
                x = x.contiguous(memory_format=MEMORY_FORMAT)
                if args.nan_at_step is not None and step == args.nan_at_step:
                    x = x * float("nan")
                try:
                    logged = train_step(model, opts, x, gen)
                    if ema is not None:
                        ema.update_parameters(model.decoder)
                except NonFiniteLoss as e:
                    print(f"\nerror: {e} at step {step} (epoch {epoch + 1}); training stopped. "
                          f"The last good checkpoint, {ckpt_path}, is untouched; try a lower "
                          "--lr or resume from it.", file=sys.stderr)
                    return 2
                step += 1
                batch_in_epoch = b + 1
                row = dataclasses.asdict(logged)
                for k, v in row.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
                if step % args.log_every == 0:
                    log.write(json.dumps({"step": step, "epoch": epoch, **row}) + "\n")
                    log.flush()
                if step % args.ckpt_every == 0:
                    checkpoint()
            bar.close()
            if batch_in_epoch >= per_epoch:
                epoch += 1
                batch_in_epoch = 0
                count = max(1, per_epoch)
                log.write(json.dumps({"epoch_end": epoch, "step": step,
                                      "elapsed_s": round(elapsed0 + time.time() - t0, 1),
                                      **{k: v / count for k, v in sums.items()}}) + "\n")
                log.flush()
                model.eval()
                shown = exported_model()
                with torch.inference_mode():
                    save_image(shown.decode(fixed_z), out / f"samples_e{epoch:03d}.png", nrow=8)
                    rec = shown.reconstruct(fixed_x)
                    save_image(torch.cat([fixed_x, rec]), out / f"recon_e{epoch:03d}.png", nrow=8)
                export(out / "model", epoch, step, elapsed0 + time.time() - t0, shown)
            checkpoint()
        model.eval()
        total = elapsed0 + time.time() - t0
        export(out / "model", epoch, step, total)
        if out_of_time() and epoch < args.epochs and step < max_steps:
            print(f"stopped at the time limit of {args.time_limit:g} min (step {step}, epoch "
                  f"{epoch + 1}); --resume with a later --time-limit continues", file=sys.stderr)
    except OSError as e:  # disk full, folder removed, quota ...: a sentence, not a traceback
        where = f" ({e.filename})" if e.filename else ""
        last = (f"The last good checkpoint, {ckpt_path} (step {saved_step}), is untouched; free "
                "some space and continue with --resume." if saved_step is not None
                else "No checkpoint had been written yet.")
        print(f"\nerror: could not write the run's files at step {step}: {e.strerror or e}{where}; "
              f"training stopped. {last}", file=sys.stderr)
        return 3
    finally:
        log.close()
    print(f"done: {step} steps, {epoch} epochs, {total / 60:.1f} min; weights in {out / 'model'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
