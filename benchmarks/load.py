"""Load: the real app (`python app.py`) in its own process on 127.0.0.1, driven by N concurrent
gradio_client users, each making R requests, a mix of sample, decode, reconstruct and
interpolate. Prints requests, failures, p50/p95 latency, the server's RSS (before warm-up,
after it, at the end), the size of its temp folders before and after, and whether the app
still answers. Exit status 0 only with no failed request and an app that still answers.

    python benchmarks/load.py [--users 32] [--requests 25] [--model weights/fashion-mnist]

Soak (--soak N): N visitors instead, each a new gradio_client session making --requests calls
(default 8) and leaving, --round of them per round (--users at once); prints the server's RSS
after every round and passes when nothing failed or was refused and the RSS after the last
round is within --bar (15%) of the RSS after the first, the bar for thousands of sessions:

    python benchmarks/load.py --soak 2000 --round 100

Abuse (--abuse N): N scripts hammer the no-queue picture route from one address while one
visitor makes /sample calls; passes when the visitor's p50 is within 1.5x of its p50 alone
(benchmarks/fair_share.py, which this mode runs):

    python benchmarks/load.py --abuse 16

A "queue is full" refusal is counted apart from failures (the client is told, cleanly).
Linux only (RSS from /proc). Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import free_port, pct, start_app, stop  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
KINDS = ("sample", "decode", "reconstruct", "interpolate")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def folder_mib(*folders: Path) -> float:
    return sum(p.stat().st_size for f in folders for p in f.rglob("*") if p.is_file()) / 2**20


def garment_png(path: Path, seed: int) -> Path:
    """A made-up garment picture (dark on light, 64x80) to upload."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    arr = np.full((80, 64), 240, np.uint8)
    arr[10:70, 14:50] = rng.integers(20, 120, (60, 36))
    Image.fromarray(arr).save(path)
    return path


RECONSTRUCT_STEPS: int | None = None  # --reconstruct-steps


def one_request(client, kind: str, rng: random.Random, picture):
    """One call of `kind` with valid, varied arguments."""
    from gradio_client import handle_file
    if kind == "sample":
        return client.predict(rng.randrange(2**32), round(rng.uniform(0.5, 1.5), 2),
                              rng.choice((1, 4, 16, 64)), api_name="/sample")
    if kind == "decode":
        sliders = {f"slider_{i + 1}": round(rng.uniform(-3, 3), 2) for i in range(rng.randrange(1, 5))}
        return client.predict(rng.choice(("kl", "pca", "class")), None, **sliders, api_name="/decode")
    if kind == "reconstruct":  # refining steps: the app's default unless --reconstruct-steps
        steps = {} if RECONSTRUCT_STEPS is None else {"steps": RECONSTRUCT_STEPS}
        return client.predict(handle_file(str(picture)), **steps, api_name="/reconstruct")
    return client.predict("Seed", rng.randrange(1000), None, "Picture", 0, handle_file(str(picture)),
                          rng.choice((4, 8, 16)), rng.choice(("lerp", "slerp")), api_name="/interpolate")


def run_users(url: str, users: int, requests: int, picture: Path, downloads: Path,
              pid: int | None = None, sessions: range | None = None) -> dict:
    """users threads, each making `requests` calls in each of its sessions: `sessions` (default
    range(users), one each) shared out among the threads, every session a new gradio_client
    (a new Gradio session, closed when done: a visitor who leaves); with `pid`, that process's
    RSS after each quarter of the calls (is growth a plateau or a leak?)."""
    from gradio_client import Client
    sessions = range(users) if sessions is None else sessions
    users = min(users, len(sessions))
    latencies: list[float] = []
    failures: list[str] = []
    queue_full: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(users)
    total, done, quarters = len(sessions) * requests, [0], []

    def visit(u: int, first: bool) -> None:
        rng = random.Random(u)
        try:
            client = Client(url, verbose=False, download_files=str(downloads / str(u)),
                            analytics_enabled=False)
        except Exception as e:  # noqa: BLE001 (a user that cannot connect fails all its requests)
            with lock:
                failures.extend([f"user {u}: connect: {type(e).__name__}: {e}"] * requests)
            start.abort()
            return
        try:
            start.wait(timeout=300) if first else None
        except threading.BrokenBarrierError:
            pass
        for r in range(requests):
            kind = KINDS[(u + r) % len(KINDS)]
            t = time.perf_counter()
            try:
                one_request(client, kind, rng, picture)
            except Exception as e:  # noqa: BLE001 (every failure is counted, with its reason)
                with lock:
                    (queue_full if "queue is full" in str(e).lower() else failures).append(
                        f"user {u} {kind}: {type(e).__name__}: {str(e)[:200]}")
                continue
            with lock:
                latencies.append(1000 * (time.perf_counter() - t))
                done[0] += 1
                if pid and done[0] * 4 >= (len(quarters) + 1) * total:
                    quarters.append(rss_mib(pid))
        client.close()
        shutil.rmtree(downloads / str(u), ignore_errors=True)

    def user(k: int) -> None:
        for i, u in enumerate(sessions[k::users]):
            visit(u, i == 0)

    threads = [threading.Thread(target=user, args=(u,), name=f"user {u}") for u in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "failures": failures, "queue_full": queue_full,
            "seconds": time.perf_counter() - t0, "rss_quarters": quarters}


def soak(url: str, args, picture: Path, downloads: Path, pid: int) -> dict:
    """args.soak sessions, args.round at a time (args.users of them at once), as run_users
    makes them; prints the server's RSS after each round -> run_users' dict for all rounds,
    with "rss_rounds" in place of the quarters."""
    total = {"latencies": [], "failures": [], "queue_full": [], "seconds": 0.0, "rss_rounds": []}
    firsts = range(0, args.soak, args.round)
    for i, first in enumerate(firsts):
        sessions = range(first, min(first + args.round, args.soak))
        r = run_users(url, args.users, args.requests, picture, downloads, sessions=sessions)
        for key in ("latencies", "failures", "queue_full", "seconds"):
            total[key] += r[key]
        rss = rss_mib(pid)
        total["rss_rounds"].append(rss)
        print(f"round {i + 1}/{len(firsts)}: sessions {first + 1}-{sessions[-1] + 1} in "
              f"{r['seconds']:.0f} s   failures {len(r['failures'])}   refusals "
              f"{len(r['queue_full'])}   server RSS {rss:.0f} MiB "
              f"({rss / total['rss_rounds'][0]:.3f} x round 1)", flush=True)
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=32, help="users (sessions) at once")
    p.add_argument("--requests", type=int, help="requests per user (default 25; 8 with --soak)")
    p.add_argument("--model", default="weights/fashion-mnist", help="weights folder or Hub id")
    p.add_argument("--reconstruct-steps", type=int, default=None, metavar="STEPS",
                   help="refining steps of each reconstruct request (default: the app's, 50)")
    p.add_argument("--warmup", type=int, default=2,
                   help="requests per user in a first, unmeasured round with all users (it fills "
                        "the server's thread pools and allocator arenas before RSS is read)")
    p.add_argument("--soak", type=int, metavar="SESSIONS",
                   help="soak instead: SESSIONS visitors, each a new gradio_client session making "
                        "--requests calls and leaving, in rounds of --round; passes when nothing "
                        "failed and the server's RSS after the last round is within --bar of its "
                        "RSS after the first")
    p.add_argument("--round", type=int, default=100, help="sessions per soak round")
    p.add_argument("--bar", type=float, default=0.15,
                   help="soak: largest allowed growth of RSS from the first round to the last")
    p.add_argument("--abuse", type=int, metavar="SCRIPTS",
                   help="abuse instead: SCRIPTS scripts hammer the picture route from one address "
                        "while one visitor calls /sample (see benchmarks/fair_share.py)")
    args = p.parse_args(argv)
    global RECONSTRUCT_STEPS
    RECONSTRUCT_STEPS = args.reconstruct_steps
    if args.abuse is not None:
        import fair_share
        return fair_share.main(["--abusers", str(args.abuse), "--model", args.model])
    args.requests = args.requests or (8 if args.soak else 25)
    if not 1 <= args.users <= 256 or not 1 <= args.requests <= 1000:
        p.error("--users must be 1-256 and --requests 1-1000")
    if args.soak is not None and not 1 <= args.round <= args.soak:
        p.error("--soak and --round must be positive, --round at most --soak")

    from gradio_client import Client
    work = Path(tempfile.mkdtemp(prefix="vaegan-load-"))
    gradio_tmp, tmp = work / "gradio", work / "tmp"  # the server's upload/output cache, its TMPDIR
    gradio_tmp.mkdir(), tmp.mkdir()
    saved = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "TMPDIR", "HF_HUB_OFFLINE")}
    os.environ.update(GRADIO_TEMP_DIR=str(gradio_tmp), TMPDIR=str(tmp), HF_HUB_OFFLINE="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(work / "server.log", "w")
    try:
        proc, startup = start_app(args.model, port, log)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    try:
        picture = garment_png(work / "garment.png", 0)
        rss0, disk0 = rss_mib(proc.pid), folder_mib(gradio_tmp, tmp)
        warm = run_users(url, args.users, args.warmup, picture, work / "warm") if args.warmup else None
        rss1 = rss_mib(proc.pid)
        r = (soak(url, args, picture, work / "downloads", proc.pid) if args.soak else
             run_users(url, args.users, args.requests, picture, work / "downloads", proc.pid))
        if warm:
            r["failures"] = [f"warm-up: {f}" for f in warm["failures"]] + r["failures"]
        rss2, disk2 = rss_mib(proc.pid), folder_mib(gradio_tmp, tmp)
        try:
            alive = bool(Client(url, verbose=False, download_files=str(work / "after"),
                                analytics_enabled=False).predict(7, 1.0, 4, api_name="/sample"))
        except Exception as e:  # noqa: BLE001
            alive, r["failures"] = False, r["failures"] + [f"after the run: {type(e).__name__}: {e}"]
        alive = alive and proc.poll() is None
    finally:
        stop(proc)
        log.close()
    ts, n = r["latencies"], (args.soak or args.users) * args.requests
    what = (f"soak: {args.soak} sessions x {args.requests} requests in rounds of {args.round}, "
            f"{args.users} at once," if args.soak else
            f"load: {args.users} users x {args.requests} requests")
    print(f"{what} on {args.model}, after a warm-up round of {args.users} x {args.warmup} "
          f"(app started in {startup:.1f} s; {os.cpu_count()} CPUs)")
    print(f"requests {n}   answered {len(ts)}   failures {len(r['failures'])}   "
          f"queue-full refusals {len(r['queue_full'])}   in {r['seconds']:.1f} s "
          f"({len(ts) / r['seconds']:.1f} req/s)")
    if ts:
        print(f"latency  p50 {pct(ts, 0.5):.0f} ms   p95 {pct(ts, 0.95):.0f} ms   max {max(ts):.0f} ms")
    growth = 100 * (rss2 - rss1) / rss1
    print(f"server RSS  before warm-up {rss0:.0f} MiB   after warm-up {rss1:.0f} MiB   end {rss2:.0f} MiB "
          f"({growth:+.1f}% after warm-up)")
    ok = alive and not r["failures"]
    if args.soak:
        ratio = r["rss_rounds"][-1] / r["rss_rounds"][0]
        ok = ok and not r["queue_full"] and ratio <= 1 + args.bar
        print(f"server RSS after round 1 {r['rss_rounds'][0]:.0f} MiB   after round "
              f"{len(r['rss_rounds'])} {r['rss_rounds'][-1]:.0f} MiB   last/first {ratio:.3f} "
              f"(bar: at most {1 + args.bar:.2f}, no failure or refusal): "
              f"{'PASS' if ok else 'FAIL'}")
    else:
        print("server RSS after each quarter of the requests  "
              + "   ".join(f"{q:.0f} MiB" for q in r["rss_quarters"]))
    print(f"temp folders (Gradio cache + TMPDIR)  before {disk0:.1f} MiB   after {disk2:.1f} MiB")
    print(f"app still answers afterwards: {'yes' if alive else 'NO'}")
    for line in (r["failures"] + r["queue_full"])[:10]:
        print("  " + line)
    if r["failures"]:
        print(f"server log: {work / 'server.log'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
