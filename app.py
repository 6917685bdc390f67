"""VAE-GAN Latent Explorer: the Gradio UI. Everything it does is a method of
vaegan.explorer.Explorer; this file only lays out components and wires events.

    python app.py [--model weights/fashion-mnist | org/name@rev] [--models org/a,org/b@v1]
                  [--host 127.0.0.1] [--port 7860]

The Model list holds every folder under weights/ (the bundled default first) and the models
named by --models and $VAEGAN_MODELS. Nothing at import or startup touches the network: a
Hub model loads in the background after launch or when first picked, and one that cannot be
had leaves the app on the model it shows, with a sentence saying which failed and why.
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
import torch  # noqa: E402

from PIL import Image  # noqa: E402

from vaegan.data import MAX_PIXELS  # noqa: E402  (importing it sets Pillow's bomb limit)
from vaegan.explorer import (MAX_COUNT, MAX_SEED, N_SLIDERS, SLIDER_LIMIT,  # noqa: E402
                             STEPS_RANGE, TEMPERATURE_RANGE, UPLOAD_HELP, Explorer, _number,
                             too_large)
from vaegan.models import (LOAD_WAIT_S, Models, is_hub_spec, load_or_fallback,  # noqa: E402
                           split_specs, weights_folders)
from vaegan.hub import ModelLoadError  # noqa: E402
from vaegan.live import LIVE_HEAD, LIVE_JS, add_route  # noqa: E402

# One intra-op thread per request: a 28x28 decode takes ~1 ms on one thread, but tens of ms
# when threads spin against each other on a small shared CPU (VAEGAN_THREADS=1 vs 2 with benchmarks/latency.py).
torch.set_num_threads(int(os.environ.get("VAEGAN_THREADS", "1")))


def _fixed_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """glibc raises its mmap threshold whenever a large block is freed (up to 32 MiB); after
    that, picture-sized buffers come from the heap and fragment it, and the server's RSS crept
    up 14-19% over 800 requests. A fixed threshold keeps every buffer over 1 MiB in its own
    mapping, returned when freed: +3-6% and level (benchmarks/load.py, README "Load")."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_fixed_mmap_threshold()

WEIGHTS = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = os.path.relpath(WEIGHTS / "fashion-mnist")
RECON_HINT = "Upload a picture or pick an example."
MAX_FILE_SIZE = "10mb"
DELETE_CACHE = (1800, 3600)  # every 30 min, delete cached files older than an hour
# Queue (README, "Load"): each queued event runs at most CONCURRENCY requests at once (one
# torch thread each, so about one per core); at most QUEUE_SIZE requests wait, and the one
# after that is told "queue is full" at once instead of waiting without bound.
CONCURRENCY = int(os.environ.get("VAEGAN_CONCURRENCY", "2"))
QUEUE_SIZE = int(os.environ.get("VAEGAN_QUEUE_SIZE", "64"))
# A request body other than a file upload (which MAX_FILE_SIZE bounds) is a few hundred bytes
# of JSON; anything over this is refused (413) before it is read, let alone parsed.
MAX_BODY = 256 * 1024


def _save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's processing_utils.save_pil_to_cache, except that the file appears whole. Gradio
    names a cached output by the hash of its bytes and rewrites it in place, so two requests
    that make the same picture at once (the same seed, the same upload) could serve it while
    it was being rewritten: clients got 0 bytes under load (benchmarks/load.py)."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


processing_utils.save_pil_to_cache = _save_pil_to_cache

# System fonts only: the page makes no requests beyond this server.
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate",
                       font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "monospace"])
CSS = """
.pixelated img { image-rendering: pixelated; }
.fill img { width: 100%; height: 100%; object-fit: contain; }
.gradio-container { max-width: 1180px !important; margin: auto; }
#status { font-size: 0.9em; opacity: 0.85; }
.explain { margin-bottom: 0.2em; }
"""


def _sentence(error) -> gr.Error:
    """An Explorer-style message ("count must be ...") as the gr.Error the page shows."""
    text = str(error)
    return gr.Error(text[:1].upper() + text[1:])


def _friendly(fn):
    """Explorer's ValueErrors (bad arguments, bad pictures) and a model that cannot be had
    become a gr.Error sentence."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise _sentence(e) from None
        except ModelLoadError as e:  # its sentence starts with a repo id or a path: keep as is
            raise gr.Error(str(e)) from None
    return wrapper


def _limit_body(app, max_bytes: int):
    """ASGI middleware: a request body over max_bytes (file uploads excepted: Gradio checks
    them against max_file_size) gets 413 and a sentence, before any of it is read."""
    async def middleware(scope, receive, send):
        if scope["type"] == "http" and not scope["path"].endswith("/upload"):
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > max_bytes:
                refusal = PlainTextResponse(f"Request too large: at most {max_bytes:,} bytes of "
                                            "JSON; send pictures as file uploads", status_code=413)
                return await refusal(scope, receive, send)
            received = 0

            async def bounded():  # a body sent in chunks, without a length, is cut off too
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                return {"type": "http.disconnect"} if received > max_bytes else message
            return await app(scope, bounded, send)
        return await app(scope, receive, send)
    return middleware


def _name_the_argument(blocks: gr.Blocks) -> None:
    """Gradio checks Slider/Number ranges and Radio choices before a handler runs, in a
    sentence that does not say which argument ("Value 65 is greater than maximum value 64"),
    and a NaN or infinity sent as raw JSON fails it without a sentence. Re-say both as
    Explorer does, naming the public API parameter and the allowed range."""
    names = {}
    for fn in blocks.fns.values():
        if fn.api_name and fn.api_visibility != "private":
            for box, name in zip(fn.inputs, fn.input_parameter_names):
                names.setdefault(box._id, name or getattr(box, "label", None) or "value")
    for box in blocks.blocks.values():
        if box._id not in names or not isinstance(box, (gr.Slider, gr.Number, gr.Radio)) \
                or getattr(box, "_named", False):
            continue
        box._named, preprocess, name = True, box.preprocess, names[box._id]

        def checked(payload, preprocess=preprocess, box=box, name=name):
            try:
                value = preprocess(payload)
            except (ValueError, TypeError, OverflowError) as e:  # gr.Error is a ValueError too
                error = e
            else:  # (a Slider lets NaN and infinities through)
                if not isinstance(value, float) or math.isfinite(value):
                    return value
                error = None
            if isinstance(box, gr.Radio):
                allowed = [value for _, value in box.choices]
                raise _sentence(f"{name} must be one of {allowed}, got {payload!r}") from None
            integer = getattr(box, "precision", None) == 0 or getattr(box, "step", None) == 1
            lo = -math.inf if box.minimum is None else box.minimum
            hi = math.inf if box.maximum is None else box.maximum
            try:
                _number(payload, name, lo, hi, integer)
            except ValueError as e:
                raise _sentence(e) from None
            raise error or _sentence(f"{name}: {payload!r} is not accepted")
        box.preprocess = checked


def _metrics(mse: float, ssim: float) -> str:
    return f"**MSE** {mse:.4f} · **SSIM** {ssim:.3f}"


def _slider_updates(labels: tuple[str, ...], dicts: bool = False) -> list:
    """N_SLIDERS slider states for a basis with these labels: zeroed, extra ones hidden."""
    states = [{"value": 0.0, "label": labels[i] if i < len(labels) else "", "visible": i < len(labels)}
              for i in range(N_SLIDERS)]
    return states if dicts else [gr.Slider(**st) for st in states]


def _image(label: str, height: int = 380, **kw) -> gr.Image:
    return gr.Image(label=label, format="png", type="pil", interactive=False, height=height,
                    elem_classes="pixelated", buttons=["download", "fullscreen"], **kw)


def _upload(label: str, **kw) -> gr.Image:
    """An image input whose unreadable uploads (not a picture, truncated) get a clear gr.Error
    instead of an anonymous server error. (Patched on the instance: subclassing a Gradio
    component would make Gradio write an app.pyi stub next to this file.)"""
    box = gr.Image(label=label, type="pil", image_mode=None, sources=["upload", "clipboard"],
                   format="png", height=300, elem_classes=["pixelated", "fill"], **kw)
    preprocess = box.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # at open()
            raise gr.Error(too_large() + ".") from None
        except gr.Error:  # Gradio refuses .svg files by name
            raise gr.Error(f"That file is a drawing (SVG), not a picture; {UPLOAD_HELP}.") from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise gr.Error(f"That file could not be read as a picture; {UPLOAD_HELP}.") from None
    box.preprocess = checked
    return box


def _bases(ex: Explorer) -> list[tuple[str, str]]:
    return [(b.title, k) for k, b in ex.bases.items()]


def create_demo(models: Models | Explorer) -> gr.Blocks:
    """The whole UI for a list of models (or one Explorer); the default model's initial
    pictures are computed here, once. Which model a page shows is that page's own: the
    hidden `model` box, which every handler takes as its last input (the public endpoints'
    optional `model` parameter, the default model when left out)."""
    models = models if isinstance(models, Models) else Models(models)
    ex = models.default
    basis0 = next(iter(ex.bases))
    b0 = ex.basis(basis0)
    start = ex.seed_latent(0).tolist()
    first = ex.sample(0, 1.0, 16)

    def explorer(model) -> Explorer:  # a listed model; API calls wait a little for a loading one
        return models.get(model, LOAD_WAIT_S)

    # ---- handlers: one to three lines each, the work is in Explorer ---------------------
    @_friendly
    def sample(seed, temperature, count, model):
        g = explorer(model).sample(seed, temperature, count)
        return g.image, g.z.tolist()

    @_friendly
    def decode(basis, origin, model=None, **values):  # values: slider_1 ... slider_N
        return explorer(model).decode([values[f"slider_{i + 1}"] for i in range(N_SLIDERS)],
                                      basis, origin)

    @_friendly
    def reconstruct(image, model):
        r = explorer(model).reconstruct(image)
        return r.input, r.reconstruction, r.error, _metrics(r.mse, r.ssim), r.z.tolist()

    @_friendly
    def interpolate(a_kind, a_seed, a_image, b_kind, b_seed, b_image, steps, method, model):
        r = explorer(model).interpolate(a_image if a_kind == "Picture" else a_seed,
                                        b_image if b_kind == "Picture" else b_seed, steps, method)
        return r.strip, str(r.gif)

    @_friendly
    def set_basis(basis, origin, model):  # relabel and zero the sliders, decode once
        m = explorer(model)
        b = m.basis(basis)
        return *_slider_updates(b.labels), b.info, m.decode([], basis, origin)

    @_friendly
    def reset(basis, origin, model):  # all sliders to 0 and one decode, from one handler
        return *[0.0] * N_SLIDERS, explorer(model).decode([], basis, origin)

    @_friendly
    def go_explore(z, where, basis, model):  # a new starting point: open Explore there
        return (gr.Tabs(selected="explore"), z, f"Starting point: {where}", *[0.0] * N_SLIDERS,
                explorer(model).decode([], basis, z))

    @_friendly
    def start_at_seed(seed, basis, model):
        return go_explore(explorer(model).seed_latent(seed).tolist(), f"seed {seed}", basis, model)

    @_friendly
    def start_at_zero(basis, model):
        return go_explore(explorer(model).zero_latent().tolist(), "the origin (all zeros)", basis, model)

    def pick_sample(zs, basis, model, evt: gr.SelectData):
        i = explorer(model).grid_cell(evt.index[0], evt.index[1], len(zs))
        skip = [gr.skip()] * (4 + N_SLIDERS)  # a click on the gap between pictures
        return skip if i is None else go_explore(zs[i], f"sample {i + 1} of the Sample tab",
                                                 basis, model)

    def edit_in_explore(z, basis, model):
        if not z:
            raise gr.Error("Reconstruct a picture first, then edit it in Explore.")
        return go_explore(z, "the reconstructed picture", basis, model)

    def pick_example(model, evt: gr.SelectData):
        picture = explorer(model).example(evt.index)
        return picture, *reconstruct(picture, model)

    def show(m: Explorer, seed, temperature, count, origin_seed, picture) -> list:
        """Every model-dependent output (see `shown` below) for a page that now shows m."""
        g, b = m.sample(seed, temperature, count), m.basis(next(iter(m.bases)))
        z = m.seed_latent(origin_seed).tolist()
        recon_part = ([None] * 3 + [RECON_HINT, None] if picture is None
                      else reconstruct(picture, m.spec))
        return [m.spec, m.spec, m.status, g.image, g.z.tolist(), gr.Radio(_bases(m), value=b.key),
                b.info, *_slider_updates(b.labels), m.decode([], b.key, z), z,
                f"Starting point: seed {origin_seed}",
                gr.Gallery([(im, name) for im, name in m.examples], visible=bool(m.examples)),
                *recon_part, None, None]

    def switch(choice, current, seed, temperature, count, origin_seed, picture, timeout=None):
        """Show the model picked in the list: waits for its load (this event has no concurrency
        limit, so nobody else waits), or keeps the current one and says why not."""
        now = models.get(current, 0) if models.ready(current) else ex
        try:
            new = models.get(choice, timeout)
        except (ModelLoadError, ValueError) as e:  # not listed, still loading, or failed
            status = Models.failure(choice, e, now)
        else:
            try:
                return show(new, seed, temperature, count, origin_seed, picture)
            except (ValueError, gr.Error):  # e.g. an emptied seed box: start from the defaults
                return show(new, 0, 1.0, 16, 0, None)
        return [gr.skip(), now.spec, status, *[gr.skip()] * (len(shown) - 3)]

    # ---- layout -----------------------------------------------------------------------------
    with gr.Blocks(title="VAE-GAN Latent Explorer", analytics_enabled=False,
                   delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# VAE-GAN Latent Explorer\nA VAE/GAN (Larsen et al. 2016) squeezes each "
                    "picture into a short list of numbers, its *latent code*, and paints "
                    "pictures back from such codes. Here you can see what those numbers mean.")
        with gr.Row(equal_height=True):
            status = gr.Markdown(ex.status, elem_id="status")
            picker = gr.Dropdown(models.specs, value=ex.spec, label="Model", scale=0, min_width=280,
                                 visible=len(models.specs) > 1, elem_id="model-picker",
                                 info="A Hub model may take a moment the first time")
        model = gr.Textbox(ex.spec, visible=False, label="Model")  # what this page shows
        with gr.Tabs(selected="sample") as tabs:
            with gr.Tab("Sample", id="sample"):
                gr.Markdown("Pick random codes and let the model paint them. Same seed, same "
                            "pictures. Click a picture to explore it.", elem_classes="explain")
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0,
                                             maximum=MAX_SEED, scale=3)
                            dice = gr.Button("Random", scale=1, min_width=90)
                        temperature = gr.Slider(*TEMPERATURE_RANGE, value=1.0, step=0.05,
                                                label="Temperature", info="Spread of the random "
                                                "codes: low = typical, high = unusual")
                        count = gr.Slider(1, MAX_COUNT, value=16, step=1, label="How many")
                        sample_btn = gr.Button("Sample", variant="primary")
                    with gr.Column(scale=3):
                        grid = _image("Samples (click one to explore it)", height=660,
                                      value=first.image, elem_id="sample-grid")
                samples_z = gr.State(first.z.tolist())  # the codes behind the grid

            with gr.Tab("Explore", id="explore"):
                gr.Markdown("Each slider pushes the code in one direction; watch the picture "
                            "change as you drag.", elem_classes="explain")
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        explore_image = _image("Decoded picture", value=ex.decode([], basis0, start),
                                               elem_id="explore-image")
                        origin_md = gr.Markdown("Starting point: seed 0", elem_id="origin-label")
                        origin = gr.JSON(start, visible=False)  # the starting point's z
                        reset_btn = gr.Button("Reset sliders to the starting point",
                                              variant="primary", elem_id="reset")
                        with gr.Row(equal_height=True):
                            origin_seed = gr.Number(0, label="Seed", precision=0, minimum=0,
                                                    maximum=MAX_SEED, min_width=90)
                            with gr.Column(min_width=160):
                                seed_btn = gr.Button("Start at this seed", size="md")
                                zero_btn = gr.Button("Start at z = 0", size="md")
                    with gr.Column(scale=3):
                        basis = gr.Radio(_bases(ex), value=basis0, label="Directions")
                        basis_info = gr.Markdown(b0.info)
                        sliders, states = [], _slider_updates(b0.labels, dicts=True)
                        for i in range(0, N_SLIDERS, 2):  # two per row, the first ones matter most
                            with gr.Row():
                                for j in (i, i + 1):
                                    sliders.append(gr.Slider(-SLIDER_LIMIT, SLIDER_LIMIT, step=0.05,
                                                             min_width=200, elem_id=f"slider-{j + 1}",
                                                             **states[j]))

            with gr.Tab("Reconstruct", id="reconstruct"):
                gr.Markdown("Show the model a picture: it turns it into a code and paints the "
                            "code back. The difference shows what it could not keep.",
                            elem_classes="explain")
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        upload = _upload("Your picture (one garment)")
                        recon_btn = gr.Button("Reconstruct", variant="primary")
                    with gr.Column(scale=2):
                        gallery = gr.Gallery([(im, name) for im, name in ex.examples],
                                             label="Or pick a test-set example", columns=5,
                                             height=300, allow_preview=False, format="png",
                                             elem_classes="pixelated", visible=bool(ex.examples))
                        metrics = gr.Markdown(RECON_HINT, label="Metrics")
                        edit_btn = gr.Button("Edit in Explore: start the sliders at this picture")
                with gr.Row():
                    seen = _image("What the model sees (28x28 input)", elem_id="recon-input")
                    recon = _image("Its reconstruction", elem_id="recon-output")
                    error = _image("Absolute error (white = 1)", elem_id="recon-error")
                with gr.Accordion("Latent code (posterior mean)", open=False):
                    recon_z = gr.JSON(label="z")

            with gr.Tab("Interpolate", id="interpolate"):
                gr.Markdown("Walk in a straight line (or along a sphere) from one code to "
                            "another and watch one picture morph into the other.",
                            elem_classes="explain")
                ends = []  # (kind, seed, picture) for A, then for B
                with gr.Row():
                    for name, s0 in (("A", 1), ("B", 2)):
                        with gr.Column(min_width=260):
                            ends += [gr.Radio(["Seed", "Picture"], value="Seed", label=f"Endpoint {name}"),
                                     gr.Number(s0, label=f"Seed {name}", precision=0, minimum=0,
                                               maximum=MAX_SEED),
                                     _upload(f"Picture {name}", visible=False)]
                    with gr.Column(min_width=260):
                        steps = gr.Slider(*STEPS_RANGE, value=10, step=1, label="Steps")
                        method = gr.Radio([("Spherical (slerp)", "slerp"), ("Linear (lerp)", "lerp")],
                                          value="slerp", label="Path")
                        interp_btn = gr.Button("Interpolate", variant="primary")
                with gr.Row():
                    gif = gr.Image(label="Animation (GIF)", type="filepath", interactive=False,
                                   height=380, elem_classes="pixelated", buttons=["download"], scale=1)
                    strip = _image("Frames, in reading order", scale=2)

        # ---- events: public ones have verb api_names, helpers are private ------------------
        private = {"api_visibility": "private"}
        dice.click(None, None, seed, js=f"() => Math.floor(Math.random() * {MAX_SEED + 1})")
        gr.on([sample_btn.click, seed.submit], sample, [seed, temperature, count, model],
              [grid, samples_z], api_name="sample")
        # while a slider moves, the page draws frames from vaegan/live.py's route (no queue);
        # on release this event puts the exact picture in the Gradio image
        gr.on([s.input for s in sliders], None, [basis, origin, model, *sliders], None,
              js=LIVE_JS, trigger_mode="multiple", queue=False, **private)
        gr.on([s.release for s in sliders], decode, [basis, origin],
              explore_image, inputs_kwargs={**{f"slider_{i + 1}": s for i, s in enumerate(sliders)},
                                            "model": model},
              api_name="decode", trigger_mode="always_last", show_progress="hidden")
        to_explore = [tabs, origin, origin_md, *sliders, explore_image]
        grid.select(pick_sample, [samples_z, basis, model], to_explore, **private)
        basis.input(set_basis, [basis, origin, model], [*sliders, basis_info, explore_image],
                    **private)
        reset_btn.click(reset, [basis, origin, model], [*sliders, explore_image], **private)
        zero_btn.click(start_at_zero, [basis, model], to_explore, **private)
        seed_btn.click(start_at_seed, [origin_seed, basis, model], to_explore, **private)
        recon_outputs = [seen, recon, error, metrics, recon_z]
        gr.on([recon_btn.click, upload.upload], reconstruct, [upload, model], recon_outputs,
              api_name="reconstruct")
        gallery.select(pick_example, model, [upload, *recon_outputs], **private)
        edit_btn.click(edit_in_explore, [recon_z, basis, model], to_explore, **private)
        for kind, seed_box, picture in (ends[:3], ends[3:]):  # show the seed box or the picture box
            kind.input(lambda k: (gr.Number(visible=k == "Seed"), gr.Image(visible=k == "Picture")),
                       kind, [seed_box, picture], queue=False, **private)
        interp_btn.click(interpolate, [*ends, steps, method, model], [strip, gif],
                         api_name="interpolate")
        # a model switch replaces everything that came from the old model, in one response
        shown = [model, picker, status, grid, samples_z, basis, basis_info, *sliders, explore_image,
                 origin, origin_md, gallery, *recon_outputs, strip, gif]
        page = [seed, temperature, count, origin_seed, upload]
        picker.input(switch, [picker, model, *page], shown, concurrency_limit=None,
                     show_progress_on=[status, picker], **private)
        if models.preferred:  # a Hub --model: each new page opens on it once it has loaded
            demo.load(lambda *a: switch(models.preferred, *a, timeout=0), [model, *page], shown,
                      concurrency_limit=None, show_progress="hidden", **private)
    demo.vaegan_models = models  # launch() serves the live decode route for these
    return demo


def _default_spec() -> str:
    return os.environ.get("VAEGAN_MODEL", DEFAULT_MODEL)


def open_models(model: str | None = None, extra: Iterable[str] = ()) -> Models:
    """The Model list, with no network request: `model` (default $VAEGAN_MODEL, else the
    bundled folder) first when it is a local folder that loads, else the bundled model with a
    notice; the other folders under weights/; then `extra` and $VAEGAN_MODELS. A Hub `model`
    is listed second and opened on each new page once it has loaded in the background."""
    model = model or _default_spec()
    hub = model != DEFAULT_MODEL and is_hub_spec(model)  # (the bundled folder may be missing)
    if not hub and Path(model).expanduser().exists():
        model = os.path.relpath(Path(model).expanduser())  # one spelling per folder in the list
    default = load_or_fallback(DEFAULT_MODEL if hub else model, DEFAULT_MODEL)
    specs = [*weights_folders(WEIGHTS, DEFAULT_MODEL), *extra,
             *split_specs(os.environ.get("VAEGAN_MODELS"))]
    return Models(default, specs, preferred=model if hub else None)


MODELS = open_models()
demo = create_demo(MODELS)


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kw):
    """The one place the app is launched: safe defaults (no share, no extra paths, no SSR),
    plus the live decode route of vaegan/live.py (added once the server app exists)."""
    block = not kw.pop("prevent_thread_lock", False)
    blocks.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    _name_the_argument(blocks)
    result = blocks.launch(server_name=host, server_port=port, theme=THEME, css=CSS, ssr_mode=False,
                           max_file_size=MAX_FILE_SIZE, share=False, show_error=False,
                           head=LIVE_HEAD, prevent_thread_lock=True,
                           app_kwargs={"middleware": [Middleware(_limit_body, max_bytes=MAX_BODY)]},
                           **kw)
    if getattr(blocks, "vaegan_models", None) is not None:
        add_route(blocks.server_app, blocks.vaegan_models)
    if block:
        blocks.block_thread()
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="VAE-GAN Latent Explorer")
    p.add_argument("--model", default=_default_spec(),
                   help="the model pages open on: weights folder or Hub repo id (org/name@rev)")
    p.add_argument("--models", default="", help="more models for the Model list, comma-separated "
                   "(added to those in $VAEGAN_MODELS): Hub repo ids or weights folders")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    args = p.parse_args()
    if args.model != _default_spec() or args.models:
        MODELS = open_models(args.model, split_specs(args.models))
        demo = create_demo(MODELS)
    launch(demo, args.host, args.port, prevent_thread_lock=True)
    MODELS.preload()  # Hub models load in the background, once the app is up
    demo.block_thread()
