"""The live slider path: while a slider moves, the page draws each frame from a plain HTTP
route instead of Gradio's queue, so dragging redraws at screen rate.

    GET /vaegan/decode.png?values=0.5,0,-1&basis=kl&origin=z1,...,zZ&model=SPEC&scale=1
    -> image/png: the exact decode (native size unless scale > 1; the page upscales it with
       image-rendering: pixelated), or 400 {"error": "<sentence naming the argument>"}.

Why: a Gradio event costs a queue join, a server-sent-events stream, a PNG written to the
cache and a second request to fetch it (benchmarks/latency.py measures both paths). This
route is one GET answered from memory: the same Explorer.decode, the same validation.

The page script is ui/live.js, served as a static asset at SCRIPT_ROUTE and loaded by the
<script> tag in HEAD: it keeps at most one request in flight (the newest values win) and
shows each frame in an overlay over the Explore image until Gradio draws the exact picture.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from vaegan.explorer import N_SLIDERS, Explorer, checked_number
from vaegan.hub import ModelLoadError

from .gradio_fixes import add_get_route

ROUTE = "/vaegan/decode.png"
SCRIPT = Path(__file__).with_name("live.js")
SCRIPT_ROUTE = "/vaegan/live.js"
_VERSION = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]  # a new file, a new URL
# relative to the page, so that it also works under a path prefix (a proxy's root_path)
HEAD = f'<script src="{SCRIPT_ROUTE.lstrip("/")}?v={_VERSION}"></script>'
# the js= of each slider's .input event: inputs are (basis, origin, model, *sliders)
SLIDER_JS = ("(basis, origin, model, ...values) => { window.vaeganLive && "
             "window.vaeganLive.request(basis, origin, model, values); }")
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
    s = checked_number(scale, "scale", 1, MAX_SCALE, integer=True)
    image = ex.decode(vals, basis, _numbers(origin, "origin"), scale=s)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def add_routes(blocks, models) -> None:
    """Serve ROUTE (for these Models) and the page script on a launched Gradio app."""
    from fastapi import Query
    from fastapi.responses import FileResponse, Response

    def live_decode(values: str = "", basis: str = "kl", origin: str = "", model: str = "",
                    scale: str = Query("1")) -> Response:
        try:
            png = decode_png(models.get(model or None, 0.0), values, basis, origin, scale)
        except (ValueError, ModelLoadError) as e:
            msg = str(e)
            return Response(json.dumps({"error": msg[:1].upper() + msg[1:]}), status_code=400,
                            media_type="application/json")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    def script() -> FileResponse:  # versioned URL: cacheable for a day
        return FileResponse(SCRIPT, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    add_get_route(blocks, ROUTE, live_decode)
    add_get_route(blocks, SCRIPT_ROUTE, script)
