"""Pieces every tab uses: the page's look, the picture boxes, the upload box with its
sentences, the error wording, and the slider states of a basis."""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import gradio as gr
from PIL import Image, ImageChops

from vaegan.explorer import BASES, N_SLIDERS, UPLOAD_HELP, YOURS, Explorer, checked_number, too_large
from vaegan.hub import ModelLoadError

from .gradio_fixes import check_input

# System fonts only: the page makes no requests beyond this server.
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate",
                       font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "monospace"])
CSS = """
.pixelated img { image-rendering: pixelated; }
.fill img { width: 100%; height: 100%; object-fit: contain; }
.gradio-container { max-width: 1180px !important; margin: auto; }
/* side margins: Gradio's 32px, 12px below 768px (Gradio prefixes rules inside @media with
   .contain, which .app holds, so this step is written as max/min) */
.gradio-container .app { padding-left: max(12px, min(32px, (100vw - 767px) * 100)) !important;
                         padding-right: max(12px, min(32px, (100vw - 767px) * 100)) !important; }
#status { font-size: 0.9em; opacity: 0.85; min-width: min(240px, 100%) !important; }
.explain { margin-bottom: 0.2em; }
/* Phones and narrow windows (issue 17), below the width where Explore's two columns stack:
   a compact header (at most a third of a 390 x 844 screen), and Explore in the order picture,
   starting point, directions, sliders, then the rest of the left column (realism line, reset,
   seed), so that the picture and the first sliders fit in one screen below the tab bar.
   Hooks are our own elem_ids, but for Gradio's .app (above), the picker's .info-text and the
   gallery's .grid-container; tests/test_phone.py measures the result. */
@media (max-width: 767px) {
  .not-on-phones { display: none; }
  #status-row { gap: 8px; }
  #header h1 { font-size: 1.3rem; margin-bottom: 0; }
  #header p { font-size: 13px; line-height: 1.4; margin-top: 6px; }
  /* the status line: 3 lines, all of it while touched (a failure's sentence comes first) */
  #status, #status p { font-size: 12px; line-height: 1.4; }
  #status p { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3;
              line-clamp: 3; overflow: hidden; }
  #status:hover p, #status:active p { -webkit-line-clamp: unset; line-clamp: none; }
  #status-row > *, #model-picker { flex-grow: 1 !important; }
  #model-picker .info-text { display: none; }
  #model-picker > div:has(input) { display: flex; align-items: center; gap: 10px; }
  #model-picker > div:has(input) > :has(input) { flex-grow: 1; }
  .explain p, #basis-info p { font-size: 13px; line-height: 1.4; }
  #explore-image { height: 260px !important; }
  #basis label { font-size: 13px; padding: 4px 10px; }
  /* a gallery's columns are at least 100px wide in Gradio: five made every tab 572px wide */
  .pixelated .grid-container {
    grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important; }
  #explore-main { flex-direction: column; align-items: stretch; }
  #explore-main > #explore-left, #explore-main > #explore-right { display: contents; }
  #explore-left > * { order: 2; }
  #explore-left > #explore-image, #explore-left > #origin-label { order: 0; }
  #explore-right > * { order: 1; }
}
"""


def sentence(error) -> gr.Error:
    """An Explorer-style message ("count must be ...") as the gr.Error the page shows."""
    text = str(error)
    return gr.Error(text[:1].upper() + text[1:])


def friendly(fn):
    """Explorer's ValueErrors (bad arguments, bad pictures) and a model that cannot be had
    become a gr.Error sentence."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise sentence(e) from None
        except ModelLoadError as e:  # its sentence starts with a repo id or a path: keep as is
            raise gr.Error(str(e)) from None
    return wrapper


def image(label: str, height: int = 380, **kw) -> gr.Image:
    """A lossless, pixelated output picture."""
    return gr.Image(label=label, format="png", type="pil", interactive=False, height=height,
                    elem_classes="pixelated", buttons=["download", "fullscreen"], **kw)


def _unreadable(payload, error, value):
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        raise gr.Error(too_large() + ".") from None  # (raised at open())
    if isinstance(error, gr.Error):  # Gradio refuses .svg files by name
        raise gr.Error(f"That file is a drawing (SVG), not a picture; {UPLOAD_HELP}.") from None
    if isinstance(error, (OSError, SyntaxError, ValueError, EOFError)):
        raise gr.Error(f"That file could not be read as a picture; {UPLOAD_HELP}.") from None
    raise error


def upload(label: str, **kw) -> gr.Image:
    """An image input whose unreadable uploads (not a picture, truncated, too large) get a
    clear gr.Error instead of an anonymous server error. Sources: a file, the clipboard, or
    the camera (the browser asks first; only on https or localhost)."""
    box = gr.Image(label=label, type="pil", image_mode=None,
                   sources=["upload", "clipboard", "webcam"],
                   format="png", height=300, elem_classes=["pixelated", "fill"], **kw)
    check_input(box, _unreadable)
    return box


SKETCH_SIDE = 280  # the drawing canvas, in pixels (10x a 28x28 picture)
SKETCH_MARGIN = 0.08  # of the strokes' larger side, kept around them when a drawing is cropped


SKETCH_COLOURS = ["#000000", "#606060", "#b0b0b0", "#d93025", "#f29900", "#fbbc04", "#188038",
                  "#1a73e8", "#8e24aa", "#795548", "#f4c7a1"]


def sketchpad(label: str, **kw) -> gr.Sketchpad:
    """A drawing canvas: dark or coloured strokes on white, which suits every model: for a
    grey model (Fashion-MNIST: light garments on black) the drawing is inverted as a
    dark-on-light upload is, a colour model (emoji on white) takes it as it is. Read it with
    drawing()."""
    ground = Image.new("RGB", (SKETCH_SIDE, SKETCH_SIDE), "white")
    return gr.Sketchpad(ground, label=label, type="pil", image_mode="RGB",
                        canvas_size=(SKETCH_SIDE, SKETCH_SIDE), fixed_canvas=True, layers=False,
                        brush=gr.Brush(default_size=18, colors=SKETCH_COLOURS,
                                       default_color=SKETCH_COLOURS[0], color_mode="defaults"),
                        height=320, transforms=(), format="png", **kw)


DRAW_HELP = "draw one thing in dark or coloured strokes on the white canvas"


def drawing(value) -> Image.Image:
    """A sketchpad's value -> the drawn picture, cropped to its strokes (with a margin) so that
    the drawing fills the frame as in the training pictures; then it goes the way of an upload
    (vaegan.data.to_tensor). ValueError when nothing is drawn."""
    composite = value.get("composite") if isinstance(value, dict) else value
    if composite is None:
        raise ValueError(f"nothing is drawn yet: {DRAW_HELP}")
    im = composite.convert("RGB")
    ink = ImageChops.difference(im, Image.new("RGB", im.size, "white")).convert("L")
    box = ink.point(lambda v: 255 if v > 24 else 0).getbbox()
    if box is None:
        raise ValueError(f"the canvas is empty: {DRAW_HELP}")
    side = max(box[2] - box[0], box[3] - box[1])
    pad = max(2, round(side * SKETCH_MARGIN))
    # the margin beyond the canvas is white too (crop would fill it with black)
    framed = Image.new("RGB", (box[2] - box[0] + 2 * pad, box[3] - box[1] + 2 * pad), "white")
    framed.paste(im.crop(box), (pad, pad))
    return framed


def read_json_file(file, fmt: str, what: str, max_bytes: int) -> dict:
    """An uploaded JSON file of this app (a dict whose "format" is fmt), else ValueError with
    one sentence (too large, not JSON, not ours). what: e.g. "directions file"."""
    path = Path(file if isinstance(file, (str, Path)) else getattr(file, "name", ""))
    try:
        if path.stat().st_size > max_bytes:
            raise ValueError(f"that file is larger than {max_bytes // 1024} KiB; a {what} of "
                             "this app is a few KiB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f'that file is not a {what} of this app (JSON with "format": "{fmt}")')
    return data


ANY_BASIS = (*BASES, YOURS)  # every basis key some model may have


def name_the_arguments(blocks: gr.Blocks, names: dict[int, str]) -> None:
    """Gradio checks Slider/Number ranges and Radio choices before a handler runs, in a
    sentence that does not say which argument ("Value 65 is greater than maximum value 64"),
    and a NaN or infinity sent as raw JSON fails it without a sentence. Re-say both as
    Explorer does, naming the public API parameter (names: component id -> name) and the
    allowed range."""
    for box in blocks.blocks.values():
        if box._id in names and isinstance(box, (gr.Slider, gr.Number, gr.Radio, gr.Dropdown)):
            check_input(box, functools.partial(_out_of_range, box, names[box._id]))


def _out_of_range(box, name: str, payload, error, value):
    if payload is None and isinstance(box, gr.Slider) and isinstance(box.value, (int, float)):
        # no value, as when left out: the slider's default (also what the page shows in a
        # number box emptied or half typed, "-", when an event reads it)
        return float(box.value)
    if isinstance(box, (gr.Radio, gr.Dropdown)) and name == "basis" and payload in ANY_BASIS:
        # the choices are the default model's; another model may have more bases (the emoji
        # model's skin tone), and the handler checks the key against the model asked for
        # (Explorer.basis: one sentence naming that model's bases)
        return payload
    if error is not None and not isinstance(error, (ValueError, TypeError, OverflowError)):
        raise error
    if isinstance(box, (gr.Radio, gr.Dropdown)):
        allowed = [v for _, v in box.choices]
        raise sentence(f"{name} must be one of {allowed}, got {payload!r}") from None
    step = getattr(box, "step", None)  # a slider of whole steps from a whole minimum takes whole numbers
    integer = getattr(box, "precision", None) == 0 or (
        step is not None and float(step).is_integer() and float(box.minimum or 0).is_integer())
    lo = -math.inf if box.minimum is None else box.minimum
    hi = math.inf if box.maximum is None else box.maximum
    try:
        checked_number(payload, name, lo, hi, integer)
    except ValueError as e:
        raise sentence(e) from None
    raise error or sentence(f"{name}: {payload!r} is not accepted")


def slider_states(labels: tuple[str, ...]) -> list[dict]:
    """N_SLIDERS slider states for a basis with these labels: zeroed, extra ones hidden."""
    return [{"value": 0.0, "label": labels[i] if i < len(labels) else "", "visible": i < len(labels)}
            for i in range(N_SLIDERS)]


def basis_choices(ex: Explorer) -> list[tuple[str, str]]:
    return [(b.title, k) for k, b in ex.bases.items()]
