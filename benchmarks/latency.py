"""How fast the explorer feels, measured in one run (issue 6). Prints a Markdown table.

    python benchmarks/latency.py [--model weights/fashion-mnist] [--repeat 200] [--runs 3]
                                 [--drag-seconds 4] [--no-browser | --browser-only]
                                 [--latencies 0,100,300] [--paths track,frames] [--drivers 60hz]

1. model floor: model.decode of one z (p50, p95)
2. handler: the Explore tab's `decode` handler (slider values -> upscaled PIL image), and the live
   route's work without HTTP (values -> native PNG bytes)
3. API over HTTP on 127.0.0.1, the returned image included: the live route
   (GET /vaegan/decode.png), a slider's track (GET /vaegan/track.png, 121 frames) and
   Gradio's /decode endpoint through gradio_client; with the overhead factor API / model floor
4. browser: headless Chromium drags slider 1 for --drag-seconds at screen rate (60 input
   events/s; --drivers mouse: Playwright's mouse), each drag in a fresh page, with each of
   --latencies ms added to every request (Chromium's network emulation through the DevTools
   protocol), with the track (the page as shipped) and without it (--paths frames: the frame
   route only, window.vaeganLive.track = false): displayed picture updates per second, p50
   time from the input event to the changed picture, the share drawn from the track, the
   requests the page sent to the server from press to release, time from release to a
   picture of the final position, and whether that picture (the overlay's last frame and
   Gradio's image) equals the server's decode
5. cold start: from `python app.py` starting to the first answered decode; and started the
   way a Hugging Face Space starts it (no arguments, GRADIO_SERVER_NAME=0.0.0.0,
   GRADIO_SERVER_PORT, SPACE_ID, SPACE_HOST) to its first page answered on 127.0.0.2
6. a 64-image sample grid: time and images per second

Each figure is the median over --runs runs (the per-run p50/p95 are over --repeat calls).
The app runs in its own process, as users get it. Network traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",")]


def pct(ts: list[float], q: float) -> float:
    s = sorted(ts)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def timed(fn, repeat: int) -> tuple[float, float]:
    """(p50, p95) in ms of fn() over `repeat` calls after two warm-up calls."""
    fn(), fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(1000 * (time.perf_counter() - t))
    return pct(ts, 0.5), pct(ts, 0.95)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Values:
    """Slider values that change on every call (no cache can answer), within [-3, 3]."""

    def __init__(self, k: int) -> None:
        self.k, self.i = k, 0

    def __call__(self) -> list[float]:
        self.i += 1
        return [round(((self.i * 0.37 + j * 0.11) % 6) - 3, 2) for j in range(self.k)]


def start_app(model: str, port: int, log, space: bool = False) -> tuple[subprocess.Popen, float]:
    """Start `python app.py` and wait for its first answered live decode -> (process, seconds).
    space=True: as a Hugging Face Space starts it (no arguments, the platform's environment),
    waiting for its first page on 127.0.0.2 (only a server bound to all interfaces answers)."""
    import httpx
    t0 = time.perf_counter()
    env = {**os.environ, "VAEGAN_MODELS": ""}
    if space:
        env.update(VAEGAN_MODEL=model, GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
                   SPACE_ID="bench/vaegan-explorer", SPACE_HOST="bench-vaegan-explorer.hf.space")
    args = [] if space else ["--model", model, "--port", str(port)]
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.2:{port}/" if space else f"http://127.0.0.1:{port}/vaegan/decode.png?values=0.5"
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
        if time.perf_counter() - t0 > 120:
            proc.kill()
            raise SystemExit("app.py did not answer within 120 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


SIXTY_HZ_DRAG = """async ([seconds, hz, reachMs]) => {
  // what a mouse at the screen's rate gives: it comes to rest on the slider (reachMs), a
  // press, an input event every 1/hz s (against deadlines, so that late timers do not lower
  // the rate), then a release
  const el = document.querySelector('#slider-1 input[type=range]');
  el.dispatchEvent(new PointerEvent('pointerover', {bubbles: true, pointerType: 'mouse'}));
  await new Promise(r => setTimeout(r, reachMs));
  el.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, pointerType: 'mouse'}));
  const lo = +el.min, hi = +el.max, t0 = performance.now();
  const at = f => { el.value = lo + (hi - lo) * (0.2 + 0.6 * f);
                    el.dispatchEvent(new Event('input', {bubbles: true})); };
  for (let k = 0; performance.now() - t0 < seconds * 1000; k++) {
    const f = (k % 60) / 30;
    at(f <= 1 ? f : 2 - f);
    await new Promise(r => setTimeout(r, Math.max(0, t0 + (k + 1) * 1000 / hz - performance.now())));
  }
  at(0.63);  // then what a real release fires: change, then pointerup
  el.dispatchEvent(new Event('change', {bubbles: true}));
  el.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
}"""
OVERLAY = "#explore-image .vaegan-live"
OVERLAY_PIXELS = """() => { const c = document.querySelector('#explore-image canvas.vaegan-live');
  return c ? [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]
           : null; }"""
OVERLAY_HIDDEN = ("() => { const o = document.querySelector('#explore-image .vaegan-live'); "
                  "return !o || getComputedStyle(o).display === 'none'; }")
PATHS = {"track": "track", "frames": "frame route only"}


REACH_MS = 300  # the pointer rests on the slider this long before the press, as a hand does


def drag(page, seconds: float, driver: str, reach_ms: float = REACH_MS) -> None:
    """Drag slider 1 back and forth for `seconds` (driver "mouse": Playwright's mouse through
    the DevTools protocol, as fast as it goes; "60hz": input events at 60 per second from the
    page, like a mouse at screen rate), then release it at 0.63 of the way. Before the press,
    the pointer rests on the slider for reach_ms (a person reaching for it)."""
    if driver == "60hz":
        page.evaluate(SIXTY_HZ_DRAG, [seconds, 60, reach_ms])
        return
    track = page.locator("#slider-1 input[type=range]").bounding_box()
    y = track["y"] + track["height"] / 2
    x0, x1 = track["x"] + track["width"] * 0.2, track["x"] + track["width"] * 0.8
    page.mouse.move(x0, y)
    page.wait_for_timeout(reach_ms)
    page.mouse.down()
    start, k = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:  # sweep back and forth, 40 moves a sweep
        k += 1
        page.mouse.move(x1 if k % 2 else x0, y, steps=40)
    page.mouse.move(x0 + (x1 - x0) * 0.63, y)
    page.mouse.up()


def bench_browser(browser, url: str, seconds: float, ex, origin: list[float], driver: str = "60hz",
                  latency_ms: float = 0, path: str = "track") -> dict:
    """One drag of slider 1 in a fresh page (an empty cache), `latency_ms` added to every
    request (Chromium's network emulation), the track on or off (path "frames": the frame
    route only, as before the track); read what the page displayed and asked for."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Explore").click()
        page.locator("#explore-image img").first.wait_for()
        page.wait_for_timeout(500)
        page.evaluate(f"window.vaeganLive.track = {'true' if path == 'track' else 'false'}")
        if latency_ms:
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                          "downloadThroughput": -1, "uploadThroughput": -1})
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        t0 = page.evaluate("performance.now()")
        drag(page, seconds, driver)
        during = [u for u in asked if u.startswith(url)]  # to the server, press to release
        try:  # Gradio's picture of the release position arrives and the overlay hides
            page.wait_for_function(OVERLAY_HIDDEN, timeout=15000)
            page.wait_for_timeout(300)
        except PlaywrightTimeout:
            pass
        live = page.evaluate("window.vaeganLive")
        final = float(page.locator("#slider-1 input[type=number]").input_value())
        overlay = page.evaluate(OVERLAY_PIXELS)
        base_src = page.locator("#explore-image img:not(.vaegan-live)").first.get_attribute("src")
        base_png = page.request.get(base_src).body()
        overlay_visible = page.locator(OVERLAY).is_visible()
    finally:
        page.close()
    frames = [f for f in live["shown"] if f["shown"] >= t0]
    shown = [f for f in frames if f["input"] <= live["lastRelease"]]  # while dragging
    from_route = [f for f in shown if f["source"] == "frame"]
    lat = [f["shown"] - f["input"] for f in shown]
    # the first picture of the final position after the last input: a frame of the overlay,
    # or Gradio's picture when that came first (then later frames are not drawn)
    last_in = max(f["input"] for f in frames) if frames else t0
    finals = [f["shown"] for f in frames if f["input"] >= last_in and abs(float(f["values"][0]) - final) < 1e-6]
    if live["lastHandback"] > live["lastRelease"]:
        finals.append(live["lastHandback"])
    release_ms = max(0.0, min(finals) - live["lastRelease"]) if finals else float("nan")
    # what is shown after release: Gradio's picture, or the overlay's last frame while visible
    expect = np.asarray(ex.decode([final], "kl", origin, scale=1))
    base = np.asarray(Image.open(io.BytesIO(base_png)))[:: ex.scale, :: ex.scale]
    exact, frame_exact = np.array_equal(base, expect), False
    if overlay is not None and frames:  # the overlay's last frame, exactly its position's decode?
        w, h, data = overlay
        px = np.asarray(data, dtype=np.uint8).reshape(h, w, 4)
        same = lambda want: all(np.array_equal(px[..., c], want) for c in range(3))  # noqa: E731
        frame_exact = same(np.asarray(ex.decode([float(frames[-1]["values"][0])], "kl", origin, scale=1)))
        exact = exact and (not overlay_visible or same(expect))
    pressed = min((t for t in live["inputs"] if t >= t0), default=t0)  # after the reach
    drag_s = (live["lastRelease"] - pressed) / 1000
    med = lambda key, part: statistics.median(f[key] - f[part] for f in from_route) \
        if from_route else float("nan")  # noqa: E731
    return {"updates_per_s": len(shown) / drag_s, "fetch_ms": med("got", "sent"),
            "paint_ms": med("shown", "got"), "wait_ms": med("sent", "input"),
            "inputs_per_s": len([t for t in live["inputs"] if t0 <= t <= live["lastRelease"]]) / drag_s,
            "input_to_frame_p50": statistics.median(lat) if lat else float("nan"),
            "from_track_pct": 100 * (len(shown) - len(from_route)) / max(1, len(shown)),
            "requests": len(during), "track_requests": sum("/vaegan/track.png?" in u for u in during),
            "frame_requests": sum("/vaegan/decode.png?" in u for u in during),
            "release_ms": release_ms, "errors": live["errors"],
            "exact": bool(exact), "frame_exact": bool(frame_exact),
            "overlay_hidden_after_release": not overlay_visible}


def browser_figures(url: str, args, ex, origin: list[float], rows: dict) -> None:
    """Figure 4: one drag per (driver, added latency, path), in one Chromium."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for driver in args.drivers:
                for latency in args.latencies:
                    for path in args.paths:
                        rows.setdefault(("4.", driver, latency, path), []).append(
                            bench_browser(browser, url, args.drag_seconds, ex, origin, driver,
                                          latency, path))
        finally:
            browser.close()


def print_browser(rows: dict, args) -> None:
    drivers = {"mouse": "Playwright mouse", "60hz": "60 input events/s"}
    cols = [k for k in rows if k[0] == "4."]
    if not cols:
        return
    med = lambda c, key: statistics.median(b[key] for b in rows[c])  # noqa: E731
    print(f"\n| browser, {args.drag_seconds:g} s drag of slider 1, median of {args.runs} | "
          + " | ".join(f"{PATHS[p]}, +{lat:g} ms" + (f", {drivers[d]}" if len(args.drivers) > 1 else "")
                       for _, d, lat, p in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, key, fmt in (
            ("slider input events per second (what the drag produced)", "inputs_per_s", "{:.1f}"),
            ("displayed picture updates per second", "updates_per_s", "{:.1f}"),
            ("input event -> changed picture, p50 ms", "input_to_frame_p50", "{:.1f}"),
            ("pictures drawn from the track, %", "from_track_pct", "{:.0f}"),
            ("requests to the server during the drag", "requests", "{:.0f}"),
            ("  of which: track requests", "track_requests", "{:.0f}"),
            ("  of which: frame route requests", "frame_requests", "{:.0f}"),
            ("frame route: input -> request sent (waiting for the one in flight), p50 ms", "wait_ms", "{:.1f}"),
            ("frame route: request sent -> PNG received, p50 ms", "fetch_ms", "{:.1f}"),
            ("frame route: PNG received -> decoded and shown, p50 ms", "paint_ms", "{:.1f}"),
            ("release -> picture of the final position, ms", "release_ms", "{:.1f}")):
        print(f"| {label} | " + " | ".join(fmt.format(med(c, key)) for c in cols) + " |")
    for label, check in (("picture shown after release equals the server decode (all runs)",
                          lambda c: str(all(b["exact"] for b in rows[c]))),
                         ("the overlay's last frame equals the server decode of its position (all runs)",
                          lambda c: str(all(b["frame_exact"] for b in rows[c]))),
                         ("overlay handed back to the Gradio image (all runs)",
                          lambda c: str(all(b["overlay_hidden_after_release"] for b in rows[c]))),
                         ("fetch errors", lambda c: str(sum(b["errors"] for b in rows[c])))):
        print(f"| {label} | " + " | ".join(check(c) for c in cols) + " |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="weights/fashion-mnist")
    p.add_argument("--repeat", type=int, default=200, help="calls per timing run")
    p.add_argument("--runs", type=int, default=3, help="runs per figure (the median is printed)")
    p.add_argument("--drag-seconds", type=float, default=4.0)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--browser-only", action="store_true", help="skip every figure but 4")
    p.add_argument("--latencies", type=_floats, default=[0.0, 100.0, 300.0],
                   help="ms added to every request in the browser (default 0,100,300)")
    p.add_argument("--paths", type=lambda t: t.split(","), default=list(PATHS),
                   help="track (the page as shipped) and/or frames (the track off)")
    p.add_argument("--drivers", type=lambda t: t.split(","), default=["60hz"],
                   help="60hz (input events at screen rate) and/or mouse (Playwright's mouse)")
    args = p.parse_args()
    if not set(args.paths) <= set(PATHS) or not set(args.drivers) <= {"60hz", "mouse"}:
        p.error("--paths takes track,frames and --drivers 60hz,mouse")

    import httpx
    import torch
    from gradio_client import Client

    torch.set_num_threads(int(os.environ.get("VAEGAN_THREADS", "1")))  # as app.py does
    from ui import live
    from ui.models import open_models
    from ui.page import create_demo
    models = open_models(args.model)
    ex = models.default
    handler = create_demo(models).vaegan_page.tabs["explore"].decode
    k = len(ex.basis("kl").labels)
    origin = ex.seed_latent(0).tolist()
    origin_q = ",".join(f"{v:.6g}" for v in origin)
    z = torch.tensor(origin)[None]
    vals = Values(k)

    rows: dict[str, list] = {}

    def add(name, *figs):
        rows.setdefault(name, []).append(figs)

    log = tempfile.NamedTemporaryFile("w", prefix="latency-app-", suffix=".log", delete=False)
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", file=sys.stderr)
        port = free_port()  # a fresh one per start: one just freed may be taken meanwhile
        if args.browser_only:
            proc, _ = start_app(args.model, port, log)
            try:
                browser_figures(f"http://127.0.0.1:{port}/", args, ex, origin, rows)
            finally:
                stop(proc)
            continue
        with torch.inference_mode():
            add("1. model floor: model.decode(z)", *timed(lambda: ex.model.decode(z), args.repeat))
        add("2a. handler: app.py decode (upscaled PIL)",
            *timed(lambda: handler("kl", origin, None, **{f"slider_{i + 1}": v for i, v in
                                                         enumerate(vals() + [0.0] * (12 - k))}),
                   args.repeat))
        add("2b. handler: live route work (native PNG bytes)",
            *timed(lambda: live.decode_png(ex, ",".join(map(str, vals())), "kl", origin_q), args.repeat))
        add("6. 64-image sample grid (Explorer.sample)", *timed(lambda: ex.sample(run, 1.0, 64), 20))

        proc, cold = start_app(args.model, port, log, space=True)
        stop(proc)
        port = free_port()
        add("5b. cold start, started as a Space: process start -> first page answered",
            cold * 1000, cold * 1000)
        proc, cold = start_app(args.model, port, log)
        add("5. cold start: process start -> first decode answered", cold * 1000, cold * 1000)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client() as http:
                def get_live():
                    r = http.get(base + live.ROUTE, params={"values": ",".join(map(str, vals())),
                                                            "origin": origin_q})
                    assert r.status_code == 200 and r.content[:4] == b"\x89PNG", r.text
                add("3a. API: live route GET, PNG included", *timed(get_live, args.repeat))

                def get_track():
                    r = http.get(base + live.TRACK_ROUTE, params={
                        "slider": 1, "values": ",".join(map(str, vals())), "origin": origin_q})
                    assert r.status_code == 200 and r.content[:4] == b"\x89PNG", r.text
                add("3c. API: track route GET (121 frames), PNG included",
                    *timed(get_track, max(10, args.repeat // 20)))
            client = Client(base + "/", verbose=False, download_files=tempfile.mkdtemp(prefix="lat-"))

            def gradio_decode():
                v = vals() + [0.0] * (12 - k)
                out = client.predict("kl", origin, *v, api_name="/decode")
                assert Path(out).stat().st_size > 0
            add("3b. API: Gradio /decode via gradio_client, image fetched",
                *timed(gradio_decode, max(20, args.repeat // 4)))
            client.close()
            if not args.no_browser:
                browser_figures(base + "/", args, ex, origin, rows)
        finally:
            stop(proc)

    floor = statistics.median(r[0] for r in rows.get("1. model floor: model.decode(z)", [(1.0,)]))
    print(f"\nMachine: {os.cpu_count()}-core {platform.machine()} CPU, {platform.system()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} torch thread(s); load average "
          f"{os.getloadavg()[0]:.1f}; model {args.model}; medians of {args.runs} runs\n")
    print("| measure | p50 ms | p95 ms | p50 / model floor |\n|---|---:|---:|---:|")
    for name, figs in rows.items():
        if name[0] == "4.":
            continue
        p50 = statistics.median(f[0] for f in figs)
        p95 = statistics.median(f[1] for f in figs)
        extra = ""
        if name.startswith("6."):
            extra = f" ({64 / p50 * 1000:.0f} images/s)"
        print(f"| {name}{extra} | {p50:.2f} | {p95:.2f} | {p50 / floor:.1f}x |")
    print_browser(rows, args)
    os.unlink(log.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
