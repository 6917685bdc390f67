"""Figures drawn with matplotlib (the latent map, the realism along a path), as PIL images,
plus how the map's pixels map back to its coordinates so that a click can be decoded."""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import matplotlib
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from vaegan.latent_map import MapView

matplotlib.use("Agg")
SIZE = (760, 560)  # map picture, pixels
AXES = (0.09, 0.1, 0.62, 0.84)  # left, bottom, width, height of the plot box, as fractions
MINI_AXES = (0.14, 0.16, 0.82, 0.8)  # the same without a legend
MINI_SIZE = (360, 280)
DPI = 100


@dataclass(frozen=True)
class Frame:
    """Where the plot box sits in the picture (pixels) and what it shows (data limits)."""
    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    def to_data(self, px: float, py: float) -> tuple[float, float] | None:
        """Picture pixel (px, py) -> data (x, y); None outside the plot box."""
        fx, fy = (px - self.left) / self.width, (py - self.top) / self.height
        if not (0 <= fx <= 1 and 0 <= fy <= 1):
            return None
        return self.x0 + fx * (self.x1 - self.x0), self.y1 - fy * (self.y1 - self.y0)

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        return (self.left + (x - self.x0) / (self.x1 - self.x0) * self.width,
                self.top + (self.y1 - y) / (self.y1 - self.y0) * self.height)

    def as_dict(self) -> dict:
        return asdict(self)


def limits(view: MapView) -> tuple[float, float, float, float]:
    """The square shown: centred on the starting point (0, 0) for a linear map, around every
    picture but the outermost 1% for t-SNE."""
    xy = view.xy
    if view.directions is not None:
        half = float(xy.abs().flatten().quantile(0.99)) * 1.1 or 1.0
        return -half, half, -half, half
    lo, hi = xy.quantile(0.005, dim=0), xy.quantile(0.995, dim=0)
    pad = 0.05 * (hi - lo)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def _picture(fig: Figure) -> Image.Image:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def map_picture(view: MapView, field: torch.Tensor | None = None,
                mark: tuple[float, float] | None = None, size: tuple[int, int] = SIZE,
                legend: bool = True) -> tuple[Image.Image, Frame]:
    """The map: one dot per test picture, coloured by class with a legend; optionally the
    realism field (n, n) over the plot box as background, and a mark at the picked place."""
    w, h = size
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    box = AXES if legend else MINI_AXES
    ax = fig.add_axes(box)
    x0, x1, y0, y1 = limits(view)
    if field is not None:
        shade = ax.imshow(field.numpy(), extent=(x0, x1, y0, y1), origin="upper", cmap="RdYlGn",
                          vmin=0, vmax=1, alpha=0.45, aspect="auto", interpolation="bilinear")
        fig.colorbar(shade, ax=ax, fraction=0.04, pad=0.01).set_label("discriminator: P(real)")
    colours = matplotlib.colormaps["tab10"]
    keys = []
    for c, name in enumerate(view.class_names):
        pts = view.xy[view.labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, color=colours(c % 10), linewidths=0)
        keys.append(Line2D([], [], ls="", marker="o", ms=6, color=colours(c % 10), label=name))
    marks = [((0.0, 0.0), "+", "starting point")] if view.directions is not None else []
    marks += [(mark, "x", "picked")] if mark is not None else []
    for (x, y), marker, name in marks:
        ax.scatter([x], [y], marker=marker, s=140, color="black", linewidths=2.5)
        keys.append(Line2D([], [], ls="", marker=marker, ms=9, mew=2.5, color="black", label=name))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(view.axes[0])
    ax.set_ylabel(view.axes[1])
    if legend:
        ax.legend(handles=keys, loc="upper left", fontsize=9, frameon=False,
                  bbox_to_anchor=(1.16 if field is not None else 1.01, 1.0))
    left, bottom, width, height = box
    frame = Frame(left * w, (1 - bottom - height) * h, width * w, height * h, x0, x1, y0, y1)
    return _picture(fig), frame


def realism_plot(probabilities: list[float | None], log_densities: list[float]) -> Image.Image:
    """Realism along an interpolation path: the discriminator's probability (when there is
    one) and the prior log-density of each frame's code."""
    fig = Figure(figsize=(6.4, 2.2), dpi=DPI)
    ax = fig.add_axes((0.1, 0.22, 0.78, 0.7))
    steps = range(1, len(log_densities) + 1)
    ax.plot(steps, log_densities, color="tab:blue", marker="o", ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("log p(z)", color="tab:blue")
    if probabilities and probabilities[0] is not None:
        right = ax.twinx()
        right.plot(steps, probabilities, color="tab:red", marker="o", ms=3)
        right.set_ylim(0, 1)
        right.set_ylabel("P(real)", color="tab:red")
    return _picture(fig)
