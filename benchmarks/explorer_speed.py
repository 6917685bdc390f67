"""How fast the explorer answers: each Explorer operation directly, then /decode through the
running app (gradio_client on 127.0.0.1), as a slider drag would call it.

    python benchmarks/explorer_speed.py [--model weights/fashion-mnist] [--repeat 50]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def timed(fn, repeat: int) -> str:
    fn()  # warm up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(1000 * (time.perf_counter() - t))
    return f"median {statistics.median(ts):7.1f} ms   max {max(ts):7.1f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="weights folder (default: the app's default)")
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args()

    import app
    from gradio_client import Client
    from vaegan.explorer import load_explorer

    ex = load_explorer(args.model) if args.model else load_explorer(app.DEFAULT_MODEL, allow_random=True)
    origin, picture = ex.seed_latent(1).tolist(), ex.sample(0, 1.0, 1).image.resize((28, 28))
    n = args.repeat
    print(f"model: {ex.spec}  torch threads: {__import__('torch').get_num_threads()}")
    print(f"decode (one slider position)    {timed(lambda: ex.decode([1.0, -0.5], 'kl', origin), n)}")
    print(f"sample 64                       {timed(lambda: ex.sample(3, 1.0, 64), max(5, n // 5))}")
    print(f"reconstruct                     {timed(lambda: ex.reconstruct(picture), n)}")
    print(f"interpolate 16 steps + GIF      {timed(lambda: ex.interpolate(1, 2, 16), max(5, n // 5))}")

    demo = app.create_demo(ex)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=tmp,
                            analytics_enabled=False)
            print(f"/decode via gradio_client       "
                  f"{timed(lambda: client.predict('kl', origin, slider_1=1.0, api_name='/decode'), n)}")
    finally:
        demo.close()
        ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
