"""Time of one VAE/GAN training step (batch 128, the shipped Fashion-MNIST architecture):
the step as vaegan.train runs it next to the earlier one (one discriminator call on the
real, reconstructed and prior images together, contiguous tensors), interleaved in one run
so that a noisy machine slows both alike. Prints the median and p90 in ms of each, and
the speed-up.

    python benchmarks/train_step.py [--threads 2] [--repeat 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()

    import torch

    from vaegan import train
    from vaegan.model import PRESETS, VAEGAN

    torch.set_num_threads(args.threads)

    x = torch.rand(args.batch_size, 1, 28, 28)
    variants = {}
    for name, fmt, fn in (("earlier: one discriminator call, contiguous", torch.contiguous_format,
                           train.discriminate_at_once),
                          ("vaegan.train: three calls, channels-last", train.MEMORY_FORMAT,
                           train.discriminate)):
        torch.manual_seed(0)
        model = VAEGAN(PRESETS["fashion-mnist"]).to(memory_format=fmt)
        variants[name] = (model, train.make_optimizers(model, 2e-4), torch.Generator().manual_seed(0),
                          x.contiguous(memory_format=fmt), fn, [])
    real = train.discriminate
    try:
        for r in range(args.repeat + 3):
            for model, opts, gen, xb, fn, times in variants.values():
                train.discriminate = fn  # vaegan_losses looks it up at call time
                t = time.perf_counter()
                train.train_step(model, opts, xb, gen)
                if r >= 3:  # warm-up
                    times.append(time.perf_counter() - t)
    finally:
        train.discriminate = real
    print(f"{train.platform_summary()}, torch {torch.__version__}, "
          f"{args.threads} threads, batch {args.batch_size}, {args.repeat} steps each")
    medians = []
    for name, (*_, times) in variants.items():
        times.sort()
        med = statistics.median(times)
        medians.append(med)
        print(f"{name:48s} median {med * 1000:6.1f} ms   p90 {times[int(0.9 * (len(times) - 1))] * 1000:6.1f} ms")
    print(f"speed-up {medians[0] / medians[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
