"""How fast the Explorer operations that benchmarks/latency.py does not time answer, called
directly (no HTTP): reconstruct (an upload; the encoder alone and with Reconstruct's default
refining steps, interleaved in one run), interpolate (16 steps and the GIF), and the
prior draw behind every Sample grid, the model's own prior next to N(0, I) for the same
networks in the same run. Decode, the 64-image grid and the endpoints are in
benchmarks/latency.py.

    python benchmarks/explorer_speed.py [--model weights/fashion-mnist] [--repeat 50]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from latency import pct, timed  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="weights/fashion-mnist")
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args()

    import torch
    torch.set_num_threads(1)  # as app.py runs
    from vaegan.explorer import load_explorer
    ex = load_explorer(args.model)
    picture = ex.sample(0, 1.0, 1).image.resize((28, 28))
    n = args.repeat
    fmt = lambda t: f"p50 {t[0]:7.1f} ms   p95 {t[1]:7.1f} ms"  # noqa: E731
    print(f"model: {ex.spec}  torch threads: {torch.get_num_threads()}")
    from vaegan import refine
    runs = {0: [], refine.STEPS: []}
    for steps in runs:
        ex.reconstruct(picture, steps)  # warm-up
    for _ in range(max(5, n // 5)):  # interleaved, so that a noisy machine slows both alike
        for steps, times in runs.items():
            t = time.perf_counter()
            ex.reconstruct(picture, steps)
            times.append(1000 * (time.perf_counter() - t))
    for steps, times in runs.items():
        what = "encoder alone" if not steps else f"refined, {steps} steps"
        print(f"reconstruct, {what:<19}{fmt((pct(times, 0.5), pct(times, 0.95)))}")
    print(f"interpolate 16 steps + GIF      {fmt(timed(lambda: ex.interpolate(1, 2, 16), max(5, n // 5)))}")
    from vaegan.prior import with_prior
    model, plain = ex.model, with_prior(ex.model)  # plain: same networks, N(0, I)
    k = model.config.prior_components
    for name, m in ((f"{k}-part mixture" if k else "N(0, I)", model), ("N(0, I)", plain)):
        for count in (64, 10000):
            p50, p95 = timed(lambda: m.prior(count, torch.Generator().manual_seed(0)), n)
            print(f"prior {count:>5} codes, {name:<16}p50 {p50:7.3f} ms   p95 {p95:7.3f} ms")
    ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
