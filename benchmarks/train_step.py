"""Time of one VAE/GAN training step (batch 128, the shipped Fashion-MNIST architecture):
the step as vaegan.train runs it next to the earlier one (one discriminator call on the
real, reconstructed and prior images together, contiguous tensors) and next to
`vaegan.train --precision bf16` (the networks' passes under bfloat16 autocast), interleaved in
one run so that a noisy machine slows all alike. Prints the median and p90 in ms of each, and
the speed-ups.

    python benchmarks/train_step.py [--threads 2] [--repeat 20]

With --processes, the step of `torchrun -m vaegan.train` on 1, 2, ... processes instead (the
global batch split over them, gradients averaged, BatchNorm over the global batch:
vaegan/distributed.py), on 127.0.0.1 with gloo on the CPU or one GPU a process with NCCL:
prints the median step and the images a second of each, over --rounds rounds that alternate
the process counts.

    python benchmarks/train_step.py --processes 1,2 --threads 1 [--device cuda] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rank(rank: int, n: int, port: int, args: argparse.Namespace, out: str) -> None:
    """One process of an n-process step: args.repeat timed steps after 3 of warm-up; rank 0
    writes the step times (s) to out."""
    import torch
    import torch.distributed as dist

    from vaegan import train
    from vaegan.distributed import World, global_batchnorm
    from vaegan.model import PRESETS, VAEGAN

    torch.set_num_threads(args.threads)
    device = torch.device(args.device, rank) if args.device == "cuda" else torch.device("cpu")
    world = World(device=device)
    if n > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=rank, world_size=n,
                                device_id=device if backend == "nccl" else None)
        world = World(rank=rank, size=n, backend=backend, device=device)
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["fashion-mnist"]).to(device, memory_format=train.MEMORY_FORMAT)
    if n > 1:
        global_batchnorm(model)
    opts = train.make_optimizers(model, 2e-4)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    x = x[world.rows(args.batch_size // n)[1]].to(device).contiguous(memory_format=train.MEMORY_FORMAT)
    times = []
    for r in range(args.repeat + 3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        train.train_step(model, opts, x, gen, world)  # the all_reduce keeps the ranks in step
        if device.type == "cuda":
            torch.cuda.synchronize()
        if r >= 3:
            times.append(time.perf_counter() - t)
    if rank == 0:
        Path(out).write_text(json.dumps(times))
    if n > 1:
        dist.destroy_process_group()


def processes(args: argparse.Namespace) -> int:
    """--processes: images a second of the distributed step on each number of processes."""
    import torch
    import torch.multiprocessing as mp

    from vaegan import train

    counts = [int(c) for c in args.processes.split(",")]
    if any(args.batch_size % n for n in counts):
        raise SystemExit(f"error: --batch-size {args.batch_size} must be a multiple of every process count")
    if args.device == "cuda" and max(counts) > torch.cuda.device_count():
        raise SystemExit(f"error: {max(counts)} processes need as many GPUs; "
                         f"{torch.cuda.device_count()} here")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    medians: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for n in counts:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                out = f"{tmp}/times.json"
                mp.spawn(_rank, args=(n, port, args, out), nprocs=n)
                medians[n].append(statistics.median(json.loads(Path(out).read_text())))
    where = (f"{torch.cuda.get_device_name(0)} GPU (one a process, NCCL)" if args.device == "cuda"
             else f"{train.platform_summary()} (gloo on 127.0.0.1)")
    print(f"{where}, torch {torch.__version__}, {args.threads} thread(s) a process, global batch "
          f"{args.batch_size}, fashion-mnist preset, {args.repeat} steps a run, {args.rounds} round(s)")
    base = None
    for n in counts:
        med = statistics.median(medians[n])
        rate = args.batch_size / med
        base = base or rate
        print(f"{n} process{'es' if n > 1 else '  '}: median step {med * 1000:7.1f} ms  "
              f"{rate:7.0f} images/s  ({rate / base:.2f}x; rounds: "
              f"{', '.join(f'{m * 1000:.0f}' for m in medians[n])} ms)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--processes", default=None, metavar="N1,N2",
                   help="time the distributed step on each number of processes instead")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="with --processes")
    p.add_argument("--rounds", type=int, default=1, help="with --processes")
    args = p.parse_args()
    if args.processes:
        return processes(args)

    import torch

    from vaegan import train
    from vaegan.model import PRESETS, VAEGAN

    torch.set_num_threads(args.threads)

    x = torch.rand(args.batch_size, 1, 28, 28)
    variants = {}
    for name, fmt, fn, precision in (
            ("earlier: one discriminator call, contiguous", torch.contiguous_format,
             train.discriminate_at_once, "fp32"),
            ("vaegan.train: three calls, channels-last", train.MEMORY_FORMAT, train.discriminate, "fp32"),
            ("the same, --precision bf16", train.MEMORY_FORMAT, train.discriminate, "bf16")):
        torch.manual_seed(0)
        model = VAEGAN(PRESETS["fashion-mnist"]).to(memory_format=fmt)
        variants[name] = (model, train.make_optimizers(model, 2e-4), torch.Generator().manual_seed(0),
                          x.contiguous(memory_format=fmt), fn, precision, [])
    real = train.discriminate
    try:
        for r in range(args.repeat + 3):
            for model, opts, gen, xb, fn, precision, times in variants.values():
                train.discriminate = fn  # vaegan_losses looks it up at call time
                t = time.perf_counter()
                train.train_step(model, opts, xb, gen, precision=precision)
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
    print(f"speed-up of three calls, channels-last: {medians[0] / medians[1]:.2f}x; "
          f"of bf16 over fp32: {medians[1] / medians[2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
