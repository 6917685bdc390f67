"""The live slider path: while a slider moves, the page draws each frame from a plain HTTP
route instead of Gradio's queue, so dragging redraws at screen rate.

    GET /vaegan/decode.png?values=0.5,0,-1&basis=kl&origin=z1,...,zZ&model=SPEC&scale=1
    -> image/png: the exact decode (native size unless scale > 1; the page upscales it with
       image-rendering: pixelated), or 400 {"error": "<sentence naming the argument>"}.

Why: a Gradio event costs a queue join, a server-sent-events stream, a PNG written to the
cache and a second request to fetch it (benchmarks/latency.py measures both paths). This
route is one GET answered from memory: the same Explorer.decode, the same validation.

In the page, LIVE_HEAD's script keeps at most one request in flight (the newest values win,
like trigger_mode="always_last") and shows each frame in an overlay over the Explore image.
The overlay hides as soon as Gradio puts a new picture underneath (the `decode` event on
release, a reset, a new starting point), so the Gradio image stays the source of truth.
window.vaeganLive.shown records each displayed frame (for benchmarks/latency.py).
"""
from __future__ import annotations

import io
import json

from .explorer import N_SLIDERS, Explorer

ROUTE = "/vaegan/decode.png"
MAX_SCALE = 16
MAX_NUMBERS = 1024  # longest list a query may carry (bounds what one request can allocate)


def _numbers(text: str | None, name: str) -> list[float] | None:
    """'0.5,0,-1' -> floats; '' or None -> None. Non-numbers and NaN pass through as NaN/str
    so that Explorer's validation names the argument and the allowed range."""
    if text is None or text.strip() == "":
        return None
    parts = text.split(",")
    if len(parts) > MAX_NUMBERS:
        raise ValueError(f"{name} may hold at most {MAX_NUMBERS} numbers, got {len(parts)}")
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise ValueError(f"{name} must be comma-separated numbers, got {p.strip()[:40]!r}") from None
    return out


def decode_png(ex: Explorer, values: str | None, basis: str, origin: str | None,
               scale: str | int = 1) -> bytes:
    """The route's work without HTTP: query strings -> PNG bytes (ValueError on bad input)."""
    vals = _numbers(values, "values") or []
    if len(vals) > N_SLIDERS:
        raise ValueError(f"values may hold at most {N_SLIDERS} numbers, got {len(vals)}")
    try:
        s = int(scale)
    except (TypeError, ValueError):
        s = 0
    if not 1 <= s <= MAX_SCALE:
        raise ValueError(f"scale must be a whole number between 1 and {MAX_SCALE}, got {scale!r}")
    image = ex.decode(vals, basis, _numbers(origin, "origin"), scale=s)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def add_route(app, models) -> None:
    """Add GET ROUTE to a launched Gradio app (its FastAPI server_app) for these Models."""
    from fastapi import Query
    from fastapi.responses import Response

    from .hub import ModelLoadError

    def live_decode(values: str = "", basis: str = "kl", origin: str = "", model: str = "",
                    scale: str = Query("1")) -> Response:
        try:
            png = decode_png(models.get(model or None, 0.0), values, basis,
                             origin, scale)
        except (ValueError, ModelLoadError) as e:
            msg = str(e)
            return Response(json.dumps({"error": msg[:1].upper() + msg[1:]}), status_code=400,
                            media_type="application/json")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    app.add_api_route(ROUTE, live_decode, methods=["GET"], include_in_schema=False)


LIVE_HEAD = """<script>
(() => {
  const live = window.vaeganLive = {shown: [], inputs: [], errors: 0, lastInput: 0, lastRelease: 0};
  let busy = false, pending = null, overlay = null, lastUrl = null, watched = null;
  const frameOf = () => document.querySelector("#explore-image img:not(.vaegan-live)");
  document.addEventListener("input", e => {
    if (!(e.target.closest && e.target.closest("[id^=slider-]"))) return;
    live.lastInput = performance.now();
    live.inputs.push(live.lastInput);
    if (live.inputs.length > 5000) live.inputs.splice(0, 1000);
  }, true);
  document.addEventListener("pointerup", () => { live.lastRelease = performance.now(); }, true);
  function hide() { if (overlay) overlay.style.display = "none"; }
  function watch(img) {  // Gradio drew a new picture underneath: it is the truth again
    if (watched === img) return;
    watched = img;
    new MutationObserver(hide).observe(img, {attributes: true, attributeFilter: ["src"]});
  }
  async function show(blob, req) {
    const img = frameOf();
    if (!img) return;
    watch(img);
    if (!overlay || !overlay.isConnected) {
      overlay = document.createElement("img");
      overlay.className = "vaegan-live";
      overlay.alt = "";
      overlay.style.cssText = "position:absolute;object-fit:contain;image-rendering:pixelated;" +
                              "pointer-events:none;display:none";
      img.parentElement.style.position = "relative";
      img.parentElement.appendChild(overlay);
    }
    const url = URL.createObjectURL(blob);
    overlay.src = url;
    try { await overlay.decode(); } catch (e) { live.errors++; return; }
    // cover the picture as drawn, not the img box: Gradio may draw it smaller (scale-down)
    const fit = getComputedStyle(img).objectFit, nw = img.naturalWidth || 1, nh = img.naturalHeight || 1;
    let k = Math.min(img.offsetWidth / nw, img.offsetHeight / nh);
    if (fit === "scale-down" || fit === "none") k = Math.min(k, 1);
    const w = nw * k, h = nh * k;
    Object.assign(overlay.style, {left: img.offsetLeft + (img.offsetWidth - w) / 2 + "px",
                                  top: img.offsetTop + (img.offsetHeight - h) / 2 + "px",
                                  width: w + "px", height: h + "px", display: "block"});
    if (lastUrl) URL.revokeObjectURL(lastUrl);
    lastUrl = url;
    live.shown.push({input: req.input, sent: req.sent, got: req.got, shown: performance.now(),
                     values: req.values});
    if (live.shown.length > 5000) live.shown.splice(0, 1000);
  }
  async function run(req) {
    busy = true;
    req.sent = performance.now();
    try {
      const r = await fetch(req.url, {cache: "no-store"});
      const blob = await r.blob();
      req.got = performance.now();
      if (r.ok) await show(blob, req); else live.errors++;
    } catch (e) { live.errors++; }
    busy = false;
    if (pending) { const next = pending; pending = null; run(next); }
  }
  live.request = (basis, origin, model, values) => {
    const root = ((window.gradio_config && window.gradio_config.root) || location.origin).replace(/\\/$/, "");
    const q = new URLSearchParams({values: values.join(","), basis: basis || "",
                                   origin: (origin || []).join(","), model: model || ""});
    const req = {url: root + "%ROUTE%?" + q, input: live.lastInput || performance.now(), values};
    if (busy) pending = req; else run(req);
  };
})();
</script>""".replace("%ROUTE%", ROUTE)

# the js= of each slider's .input event: inputs are (basis, origin, model, *sliders)
LIVE_JS = "(basis, origin, model, ...values) => { window.vaeganLive && window.vaeganLive.request(basis, origin, model, values); }"
