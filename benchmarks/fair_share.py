"""Fair share under abuse (issue 17): the real app (`python app.py`) in its own process on
127.0.0.1; one visitor's /sample calls through gradio_client, first alone, then while 16
scripts hammer the no-queue picture route from one address as fast as it answers.

    python benchmarks/fair_share.py [--calls 40] [--abusers 16] [--model weights/fashion-mnist]
    python benchmarks/load.py --abuse 16     (the same, as a mode of the load benchmark)

Prints the visitor's p50/p95 alone and under abuse, their ratio (bar: at most 1.5), and
what the abusers got (pictures served and 429 refusals per second). Exit status 0 only when
the bar is met and no visitor call failed. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port, pct, start_app, stop  # noqa: E402


def visitor(url: str, calls: int) -> list[float]:
    """ms of each /sample(seed, 1.0, 16) call of one gradio_client visitor."""
    from gradio_client import Client
    client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="fair-"))
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        client.predict(i, 1.0, 16, api_name="/sample")
        times.append((time.perf_counter() - t0) * 1000)
    client.close()
    return times


def abuse(url: str, stop_at: threading.Event, counts: dict, lock: threading.Lock) -> None:
    import httpx
    with httpx.Client() as http:
        k = 0
        while not stop_at.is_set():
            k += 1
            r = http.get(url + "vaegan/decode.png", params={"values": f"{(k % 120) / 20 - 3:.2f}"})
            with lock:
                counts[r.status_code] = counts.get(r.status_code, 0) + 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="weights/fashion-mnist")
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--abusers", type=int, default=16)
    args = p.parse_args(argv)
    log = tempfile.NamedTemporaryFile("w", prefix="fair-app-", suffix=".log", delete=False)
    proc, _ = start_app(args.model, free_port(), log)
    try:
        port = proc.args[proc.args.index("--port") + 1]
        url = f"http://127.0.0.1:{port}/"
        visitor(url, 5)  # warm-up
        alone = visitor(url, args.calls)
        stop_at, lock, counts = threading.Event(), threading.Lock(), {}
        threads = [threading.Thread(target=abuse, args=(url, stop_at, counts, lock), daemon=True)
                   for _ in range(args.abusers)]
        for t in threads:
            t.start()
        time.sleep(2)
        t0, before = time.perf_counter(), dict(counts)
        abused = visitor(url, args.calls)
        seconds = time.perf_counter() - t0
        after = dict(counts)
        stop_at.set()
        for t in threads:
            t.join(10)
    finally:
        stop(proc)
        os.unlink(log.name)
    per_s = {code: (after.get(code, 0) - before.get(code, 0)) / seconds for code in after}
    ratio = statistics.median(abused) / statistics.median(alone)
    print(f"\nMachine: {os.cpu_count()}-core {platform.machine()} CPU, load average "
          f"{os.getloadavg()[0]:.1f}; model {args.model}; {args.abusers} abusers on one address\n")
    print("| visitor's /sample (16 pictures) | p50 ms | p95 ms |\n|---|---:|---:|")
    print(f"| alone | {statistics.median(alone):.1f} | {pct(alone, 0.95):.1f} |")
    print(f"| while the picture route is hammered | {statistics.median(abused):.1f} | {pct(abused, 0.95):.1f} |")
    print(f"\nratio of p50s: {ratio:.2f} (bar: at most 1.5)")
    print(f"abusers got per second: {per_s.get(200, 0):.0f} pictures, {per_s.get(429, 0):.0f} refusals (429)"
          + "".join(f", {v:.0f} HTTP {c}" for c, v in per_s.items() if c not in (200, 429)))
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
