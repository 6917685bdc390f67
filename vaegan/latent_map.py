"""The latent map, the atlas and the realism meter of an Explorer, without the UI.

A map places the encoded test pictures (explorer assets, version 2) on a plane:

- "plane": two directions of one of the Explore tab's bases (by default the first two
  principal directions of the encoded training set), through the current starting point, in
  slider units (coordinates by least squares when the two are not orthogonal);
- "tsne": a t-SNE embedding computed once by the assets build. It has no inverse: the code
  behind a place is the inverse-distance-weighted mean of its 8 nearest pictures' codes.

For the linear maps, the code at (a, b) is exactly origin + a * u + b * v.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from . import latent
from .realism import Realism, measure

PROJECTIONS = {"plane": "Two directions (a plane through the starting point)",
               "tsne": "t-SNE (nonlinear, all pictures)"}
ATLAS_N = (2, 24)  # pictures per side of an atlas
EXTENT = (0.25, 6.0)  # half the side of a slice, in the directions' units
FIELD_N = 48  # realism overlay: decodes per side
WORKERS = max(1, min(4, os.cpu_count() or 1))
_POOL = ThreadPoolExecutor(WORKERS, thread_name_prefix="vaegan-decode")


def on_every_core(fn, z: torch.Tensor, min_chunk: int = 32) -> torch.Tensor:
    """fn (a batch of codes -> a batch) over a large batch z, in WORKERS threads at once: the
    app runs torch on one intra-op thread per request (app.tune_process), and torch releases
    the GIL inside its ops, so chunks in threads use every core (benchmarks/map_speed.py)."""
    if len(z) < 2 * min_chunk or WORKERS == 1:
        with torch.inference_mode():
            return fn(z)

    def run(chunk: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(chunk)
    return torch.cat(list(_POOL.map(run, z.split(math.ceil(len(z) / WORKERS)))))


@dataclass
class MapView:
    kind: str  # a key of PROJECTIONS
    xy: torch.Tensor  # (M, 2) the pictures' places
    labels: torch.Tensor  # (M,)
    class_names: tuple[str, ...]
    axes: tuple[str, str]  # what each axis means
    directions: torch.Tensor | None  # (Z, 2) for the linear maps, None for t-SNE
    origin: torch.Tensor  # (Z,) the plane's point at (0, 0)


class LatentMap:
    """Built by Explorer from its model, assets and bases; every method validates nothing
    itself: Explorer checks the arguments before calling."""

    def __init__(self, model, assets, bases: dict) -> None:
        self.model, self.assets, self.bases = model, assets, bases

    @property
    def available(self) -> bool:
        return self.assets is not None and self.assets.has_map

    def plane(self, basis: str, i: int, j: int) -> tuple[torch.Tensor, tuple[str, str]]:
        """Directions i and j of a basis as a (Z, 2) matrix, with their labels."""
        b = self.bases[basis]
        return b.matrix[:, [i, j]], (b.labels[i], b.labels[j])

    def view(self, kind: str, origin: torch.Tensor, directions: torch.Tensor | None = None,
             axes: tuple[str, str] = ("", "")) -> MapView:
        a = self.assets
        if kind == "tsne":
            return MapView(kind, a.map_embedding, a.map_labels, a.class_names,
                           ("t-SNE 1", "t-SNE 2"), None, origin)
        xy = latent.coordinates(a.map_codes, origin, directions)  # (M, 2)
        return MapView(kind, xy, a.map_labels, a.class_names, axes, directions, origin)

    def code_at(self, view: MapView, x: float, y: float) -> torch.Tensor:
        """The code behind the place (x, y) of a map (Z,)."""
        at = torch.tensor([x, y], dtype=torch.float32)
        if view.directions is None:
            return latent.nearest_code(view.xy, self.assets.map_codes, at)
        return latent.compose(view.origin, view.directions, at)

    def slice_codes(self, origin: torch.Tensor, directions: torch.Tensor, extent: float,
                    n: int) -> torch.Tensor:
        """The n x n codes (n*n, Z) of a square slice around origin, row by row."""
        return latent.compose(origin, directions, latent.slice_grid(extent, n))

    @torch.inference_mode()
    def realism_field(self, origin: torch.Tensor, directions: torch.Tensor, extent: float,
                      n: int = FIELD_N) -> torch.Tensor | None:
        """The discriminator's probability of real over an n x n slice (n, n), rows top to
        bottom; None for a model without a discriminator."""
        if self.model.discriminator is None:
            return None
        z = self.slice_codes(origin, directions, extent, n).to(self.model.device)
        logits = on_every_core(lambda c: self.model.discriminator(self.model.decode(c))[0], z)
        return torch.sigmoid(logits).float().cpu().reshape(n, n)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """A large batch of codes (N, Z) -> pictures (N, C, H, W), on every core."""
        return on_every_core(self.model.decode, z.to(self.model.device)).cpu()

    @torch.inference_mode()
    def realism(self, z: torch.Tensor, x: torch.Tensor | None = None) -> list[Realism]:
        """The meter for codes (B, Z), decoded here unless their pictures x are given."""
        if x is None:
            x = self.model.decode(z.to(self.model.device))
        a = self.assets
        refs = (a.realism_logits, a.realism_log_density) if self.available else (None, None)
        return measure(self.model, z, x, *refs)
