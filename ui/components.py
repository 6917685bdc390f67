"""Pieces every tab uses: the page's look, the picture boxes, the upload box with its
sentences, the error wording, and the slider states of a basis."""
from __future__ import annotations

import functools
import math

import gradio as gr
from PIL import Image

from vaegan.explorer import N_SLIDERS, UPLOAD_HELP, Explorer, checked_number, too_large
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
#status { font-size: 0.9em; opacity: 0.85; }
.explain { margin-bottom: 0.2em; }
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
    clear gr.Error instead of an anonymous server error."""
    box = gr.Image(label=label, type="pil", image_mode=None, sources=["upload", "clipboard"],
                   format="png", height=300, elem_classes=["pixelated", "fill"], **kw)
    check_input(box, _unreadable)
    return box


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
    if error is not None and not isinstance(error, (ValueError, TypeError, OverflowError)):
        raise error
    if isinstance(box, (gr.Radio, gr.Dropdown)):
        allowed = [v for _, v in box.choices]
        raise sentence(f"{name} must be one of {allowed}, got {payload!r}") from None
    integer = getattr(box, "precision", None) == 0 or getattr(box, "step", None) == 1
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
