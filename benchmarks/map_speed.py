"""Server time of the Map tab's work (issue 18's bars), one torch thread per request as the
app runs (app.tune_process), compared in one run with the plain one-call decode:

    python benchmarks/map_speed.py [--model weights/fashion-mnist] [--repeat 15]

1. atlas 16 x 16 (bar: 100 ms on 2 cores): Explorer.atlas (chunks on every core) vs one
   model.decode call of the 256 codes plus the grid
2. realism shading 48 x 48 (bar: 1 s): LatentMap.realism_field vs one decode + discriminator call
3. realism meter (bar: 2 ms per picture on top of the decode): decode of one code, and
   decode + meter (discriminator, prior log-density, both percentiles)
4. drawing the map picture (matplotlib), without and with shading

Prints medians and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="weights/fashion-mnist")
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()
    import torch
    torch.set_num_threads(int(os.environ.get("VAEGAN_THREADS", "1")))  # as app.py does
    from ui import plots
    from vaegan import latent
    from vaegan.explorer import load_explorer
    from vaegan.latent_map import WORKERS
    ex = load_explorer(args.model)
    m, origin = ex.model, ex.seed_latent(0)
    plane, _ = ex.plane("pca", 1, 2)
    z256 = latent.compose(origin, plane, latent.slice_grid(3.0, 16))
    z2304 = latent.compose(origin, plane, latent.slice_grid(3.0, 48))
    one = origin[None]
    view = ex.map_view("plane", origin.tolist())
    field = ex.map.realism_field(view.origin, view.directions, plots.limits(view)[1])

    def serial(fn):
        def run():
            with torch.inference_mode():
                return fn()
        return run

    rows = [
        ("1. atlas 16 x 16: Explorer.atlas (on every core)",
         median_ms(lambda: ex.atlas(origin.tolist(), "pca", 1, 2, 3.0, 16), args.repeat)),
        ("1. atlas 16 x 16: one decode call + grid",
         median_ms(serial(lambda: ex._grid(m.decode(z256), 16)), args.repeat)),
        ("2. realism shading 48 x 48: realism_field (on every core)",
         median_ms(lambda: ex.map.realism_field(origin, plane, 3.0), max(3, args.repeat // 3))),
        ("2. realism shading 48 x 48: one decode + discriminator call",
         median_ms(serial(lambda: m.discriminator(m.decode(z2304))), max(3, args.repeat // 3))),
        ("3. one decode", median_ms(serial(lambda: m.decode(one)), args.repeat * 20)),
        ("3. one decode + realism meter", median_ms(lambda: ex.map.realism(one), args.repeat * 20)),
        ("4. map picture, plain", median_ms(lambda: plots.map_picture(view), args.repeat)),
        ("4. map picture, shaded", median_ms(lambda: plots.map_picture(view, field), args.repeat)),
    ]
    print(f"\nMachine: {os.cpu_count()}-core {platform.machine()} CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), {WORKERS} decode workers; load average "
          f"{os.getloadavg()[0]:.1f}; model {args.model}; medians\n")
    print("| measure | ms |\n|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
