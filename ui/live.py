"""The live slider path: while a slider moves, the page draws each frame from a plain HTTP
route instead of Gradio's queue, so dragging redraws at screen rate.

    GET /vaegan/decode.png?values=0.5,0,-1&basis=kl&origin=z1,...,zZ&model=SPEC&scale=1
    -> image/png: the exact decode (native size unless scale > 1; the page upscales it with
       image-rendering: pixelated), or 400 {"error": "<sentence naming the argument>"}.

Why: a Gradio event costs a queue join, a server-sent-events stream, a PNG written to the
cache and a second request to fetch it (benchmarks/latency.py measures both paths). This
route is one GET answered from memory: the same Explorer.decode, the same validation.

The page script is ui/live.js, served as a static asset at SCRIPT_ROUTE and loaded by the
<script> tag in HEAD: it keeps at most one frame request in flight (the newest values win)
and shows each frame in an overlay over the Explore image until Gradio draws the exact picture.

The track: far from the server, one request per frame caps a drag at one picture per round
trip (100 ms away: about 8 a second). So when a slider is grabbed the page also asks, once,
for the pictures at every position of that slider:

    GET /vaegan/track.png?slider=K&values=...&basis=kl&origin=...&model=SPEC&v=VERSION
    -> image/png: a sprite of 121 frames, frame i = the exact decode with slider K (1-based;
       its entry in `values` is replaced) at SLIDER_POSITIONS[i] = -3 + 0.05 i, native size,
       row-major in 11 columns without padding (Explorer.track); the header X-Vaegan-Track
       says so: "frames=121; columns=11; width=28; height=28; first=-3; step=0.05".
       400 {"error": ...} as above (also for a model whose sprite would exceed
       MAX_TRACK_BYTES, 2 MiB of pixels: 121 x channels x image_size**2); 409 when v is not
       the model's current version (new weights since the page loaded: reload).

and draws every position from it locally until release (the frame route stays the fallback
until it is here). The URL holds every input, and v = track_version(): a hash of the model's
spec, decoder weights and bases, so a URL's picture never changes and the browser may keep it
(Cache-Control: private, a day, immutable); without v the answer is not stored. A sprite
costs the server 121 single decodes (about 0.1 s of one core for the 28x28 models: less than
the per-frame route's 60 requests a second for two seconds of dragging).
"""
from __future__ import annotations

import hashlib
import io
import json
import weakref
from pathlib import Path

import torch

from vaegan.explorer import (MAX_TRACK_BYTES, N_SLIDERS, SLIDER_POSITIONS, SLIDER_STEP,
                             TRACK_COLUMNS, YOURS, Explorer, checked_number)
from vaegan.hub import ModelLoadError

from .fair import FRAME_COST, TRACK_COST
from .gradio_fixes import add_get_route

ROUTE = "/vaegan/decode.png"
TRACK_ROUTE = "/vaegan/track.png"
TRACK_HEADER = "X-Vaegan-Track"  # the sprite's layout
TRACK_CACHE = "private, max-age=86400, immutable"  # a versioned track URL never changes
SCRIPT = Path(__file__).with_name("live.js")
SCRIPT_ROUTE = "/vaegan/live.js"
COSTS = {ROUTE: FRAME_COST, TRACK_ROUTE: TRACK_COST}  # what ui/fair.guard charges a client
_VERSION = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]  # a new file, a new URL
# relative to the page, so that it also works under a path prefix (a proxy's root_path)
HEAD = f'<script src="{SCRIPT_ROUTE.lstrip("/")}?v={_VERSION}"></script>'
# the js= of each slider's .input event: inputs are (basis, origin, model, version, the
# visitor's own directions, *sliders)
SLIDER_JS = ("(basis, origin, model, version, mine, ...values) => { window.vaeganLive && "
             "window.vaeganLive.request(basis, origin, model, version, values, mine); }")
# the js= of an event at load and on every change of those inputs: the page script then knows
# the state when a slider is grabbed, before its first input event
CONTEXT_JS = SLIDER_JS.replace(".request(", ".context(")
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


def _values(text: str | None) -> list[float]:
    vals = _numbers(text, "values") or []
    if len(vals) > N_SLIDERS:
        raise ValueError(f"values may hold at most {N_SLIDERS} numbers, got {len(vals)}")
    return vals


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _basis(ex: Explorer, basis: str, dirs: str | None):
    """basis, or for "yours" the directions in `dirs` ("v1,v2,...;w1,w2,...": one list of
    latent_dim numbers per direction, at most N_SLIDERS)."""
    if basis != YOURS:
        return basis
    parts = (dirs or "").split(";") if dirs else []
    if not 1 <= len(parts) <= N_SLIDERS:
        raise ValueError(f"dirs must hold 1 to {N_SLIDERS} directions separated by ';' for basis "
                         f"{YOURS!r}, got {len(parts)}")
    return ex.custom_basis([_numbers(p, f"dirs[{i}]") for i, p in enumerate(parts)])


def decode_png(ex: Explorer, values: str | None, basis: str, origin: str | None,
               scale: str | int = 1, dirs: str | None = None) -> bytes:
    """The route's work without HTTP: query strings -> PNG bytes (ValueError on bad input)."""
    s = checked_number(scale, "scale", 1, MAX_SCALE, integer=True)
    return _png(ex.decode(_values(values), _basis(ex, basis, dirs), _numbers(origin, "origin"),
                          scale=s))


def track_png(ex: Explorer, slider: str | int, values: str | None, basis: str,
              origin: str | None, dirs: str | None = None) -> bytes:
    """TRACK_ROUTE's work without HTTP: query strings -> the sprite's PNG bytes."""
    return _png(ex.track(_values(values), slider, _basis(ex, basis, dirs),
                         _numbers(origin, "origin")))


def track_layout(ex: Explorer) -> str:
    """The X-Vaegan-Track header: how the sprite's frames lie and which positions they show."""
    size = ex.config.image_size
    return (f"frames={len(SLIDER_POSITIONS)}; columns={TRACK_COLUMNS}; width={size}; "
            f"height={size}; first={SLIDER_POSITIONS[0]:g}; step={SLIDER_STEP:g}")


_versions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def track_version(ex: Explorer) -> str:
    """What a track's pictures depend on besides its query, as 16 hex digits: the model's spec,
    its decoder's weights and its bases (computed once per Explorer). "" when the model's
    sprite would exceed MAX_TRACK_BYTES: the page then asks for no track."""
    if ex.track_bytes() > MAX_TRACK_BYTES:
        return ""
    if ex not in _versions:
        h = hashlib.sha256(ex.spec.encode())
        tensors = {**ex.model.decoder.state_dict(),
                   **{f"basis.{k}": b.matrix for k, b in ex.bases.items()}}
        for name, t in sorted(tensors.items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        _versions[ex] = h.hexdigest()[:16]
    return _versions[ex]


def _refusal(error: Exception, status: int = 400):
    from fastapi.responses import Response
    msg = str(error)
    return Response(json.dumps({"error": msg[:1].upper() + msg[1:]}), status_code=status,
                    media_type="application/json")


def add_routes(blocks, models) -> None:
    """Serve ROUTE and TRACK_ROUTE (for these Models) and the page script on a launched
    Gradio app. (Each client's fair share of them: ui/fair.guard, in front of the app.)"""
    from fastapi import Query
    from fastapi.responses import FileResponse, Response

    def live_decode(values: str = "", basis: str = "kl", origin: str = "", model: str = "",
                    scale: str = Query("1"), dirs: str = "") -> Response:
        try:
            png = decode_png(models.get(model or None, 0.0), values, basis, origin, scale, dirs)
        except (ValueError, ModelLoadError) as e:
            return _refusal(e)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    def live_track(slider: str = "", values: str = "", basis: str = "kl", origin: str = "",
                   model: str = "", v: str = "", dirs: str = "") -> Response:
        try:
            ex = models.get(model or None, 0.0)
            if v and v != track_version(ex):
                return _refusal(ValueError(
                    f"v: the model {ex.spec!r} changed since this page was loaded (version "
                    f"{track_version(ex) or 'none'}, not {v[:40]!r}); reload the page"), 409)
            png = track_png(ex, slider, values, basis, origin, dirs)
        except (ValueError, ModelLoadError) as e:
            return _refusal(e)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": TRACK_CACHE if v else "no-store",
                                 TRACK_HEADER: track_layout(ex)})

    def script() -> FileResponse:  # versioned URL: cacheable for a day
        return FileResponse(SCRIPT, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    add_get_route(blocks, ROUTE, live_decode)
    add_get_route(blocks, TRACK_ROUTE, live_track)
    add_get_route(blocks, SCRIPT_ROUTE, script)
