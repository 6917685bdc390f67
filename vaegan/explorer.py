"""What the explorer app does, without the UI: the class the Gradio handlers call.

    python -m vaegan.explorer build weights/fashion-mnist [--data-dir D] [--limit N]

encodes the training set once and writes weights/fashion-mnist/explorer.safetensors (see
assets.py), so the app needs no dataset at run time. Every public method validates its
arguments and raises ValueError with a sentence naming the argument and what is allowed.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from . import latent, refine
from .assets import MAP_POINTS, ExplorerAssets, build_assets, encode_pictures, load_assets, save_assets
from .data import MAX_PIXELS, dataset_classes, load_dataset, to_image, to_tensor
from .hub import EXPLORER_FILE, LoadedModel, load_model
from .latent_map import ATLAS_N, EXTENT, PROJECTIONS, LatentMap, MapView
from .realism import Realism
from .model import PRESETS, VAEGAN

N_SLIDERS = 12  # sliders in the UI; a basis offers at most this many directions
SLIDER_LIMIT = 3.0  # slider values are in [-3, 3]
SLIDER_STEP = 0.05  # ... in steps of 0.05: 121 positions
# every position of a slider, each the double nearest its decimal value (what a browser's
# range input gives: "0.6" -> 0.6, never -3 + 72 * 0.05 = 0.6000000000000005)
SLIDER_POSITIONS = tuple(round(-SLIDER_LIMIT + i * SLIDER_STEP, 10)
                         for i in range(round(2 * SLIDER_LIMIT / SLIDER_STEP) + 1))
TRACK_COLUMNS = 11  # a track sprite: its frames in rows of 11 (121 positions: 11 x 11)
MAX_TRACK_BYTES = 2 * 2**20  # pixel bytes of a track sprite: 121 x channels x image_size**2
TEMPERATURE_RANGE = (0.0, 2.0)
MAX_COUNT = 64
STEPS_RANGE = (2, 64)
MAX_SEED = 2**32 - 1
YOURS = "yours"  # the key of a visitor's own basis (Explorer.custom_basis)
MAX_NAME = 60  # characters of a direction's name
MAX_GROUP = 64  # pictures on one side of a direction
ORIGIN_LIMIT = 100.0  # |z_i| accepted as a starting point
DISPLAY_PX = 336  # single images are upscaled (nearest neighbour) to about this size
GRID_PX = 640  # sample grids and frame sheets: upscaled by the largest integer that fits
GRID_PAD, GRID_PAD_VALUE = 2, 0.3
KEEP_GIFS = 16  # GIFs kept in the temp dir (Gradio copies each into its own cache)
UPLOAD_HELP = "upload a PNG, JPEG, WebP, BMP or GIF picture of one thing, as in the model's data"
MAX_SIDE = math.isqrt(MAX_PIXELS)  # 4096: uploads hold at most MAX_PIXELS = MAX_SIDE**2 pixels
BASES = {"kl": "Most informative dimensions", "pca": "Principal directions",
         "class": "Class attributes", "attribute": "an attribute of the data (e.g. Skin tone)"}



@dataclass(frozen=True)
class Basis:
    key: str
    title: str
    matrix: torch.Tensor  # (Z, K): z = origin + matrix @ values
    labels: tuple[str, ...]  # one slider label per column
    info: str  # one sentence for the UI


@dataclass
class SampleGrid:
    image: Image.Image  # the grid, upscaled
    z: torch.Tensor  # (N, Z) latents, row-major as in the grid


@dataclass
class Reconstruction:
    input: Image.Image  # what the model sees: the preprocessed input, upscaled
    reconstruction: Image.Image
    error: Image.Image  # |input - reconstruction| per pixel, white = 1
    mse: float
    ssim: float
    z: torch.Tensor  # (Z,) the code decoded: the posterior mean, refined by `steps` steps
    steps: int = 0  # refine.refine_codes steps after the encoder (0: the posterior mean itself)
    encoder_mse: float | None = None  # the posterior mean's own figures, when steps > 0
    encoder_ssim: float | None = None


@dataclass
class Interpolation:
    frames: list[Image.Image]  # upscaled
    strip: Image.Image  # all frames as one sheet, in reading order
    gif: Path  # animated GIF of the frames (in the explorer's temp dir)
    z: torch.Tensor  # (T, Z)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two images (C, H, W), with scikit-image's defaults:
    7x7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03, valid region only."""
    x, y = a[None].double(), b[None].double()  # (1, C, H, W)
    win = 7
    if min(x.shape[-2:]) < win:
        raise ValueError(f"ssim needs images of at least {win}x{win} pixels")
    mean = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731
    n = win * win
    mx, my = mean(x), mean(y)
    cov = n / (n - 1)
    vx, vy = cov * (mean(x * x) - mx * mx), cov * (mean(y * y) - my * my)
    vxy = cov * (mean(x * y) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def tile(x: torch.Tensor, ncols: int, pad: int, pad_value: float) -> torch.Tensor:
    """Images (N, C, H, W) -> one grid (C, H', W'), row-major, `pad` pixels of pad_value around
    each: torchvision's make_grid layout (tests check they agree). Not imported from there
    because importing torchvision also imports torch._dynamo, seconds of the app's cold start."""
    n, c, h, w = x.shape
    if n == 1:  # as make_grid: a single image, unpadded
        return x[0]
    rows = math.ceil(n / ncols)
    g = x.new_full((c, rows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value)
    for i in range(n):
        r, q = divmod(i, ncols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        g[:, y0:y0 + h, x0:x0 + w] = x[i]
    return g


def checked_number(value, name: str, lo: float, hi: float, integer: bool = False) -> float | int:
    """value as a float (or int) in [lo, hi], else ValueError naming the argument."""
    kind = "a whole number" if integer else "a number"
    span = " and ".join(str(int(b)) if float(b).is_integer() else f"{b:g}" for b in (lo, hi))
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind} between {span}, got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi or (integer and v != int(v)):
        raise ValueError(f"{name} must be {kind} between {span}, got {value!r}")
    return int(v) if integer else v


def _picture(image, name: str = "image") -> Image.Image:
    """A readable, non-empty PIL image (or a path to one) of at most MAX_PIXELS, else
    ValueError. The size is checked before the pixels are decoded (Pillow reads it at open)."""
    if image is None:
        raise ValueError(f"{name}: no picture given; {UPLOAD_HELP}")
    try:
        if isinstance(image, (str, Path)):
            with Image.open(image) as im:
                _check_size(im, name)
                im.load()
                image = im.copy()
        elif not isinstance(image, Image.Image):
            raise ValueError(f"{name}: expected a picture, got {type(image).__name__}; {UPLOAD_HELP}")
        _check_size(image, name)
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(too_large(name)) from None
    except (OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"{name}: the file could not be read as a picture ({type(e).__name__}); "
                         f"{UPLOAD_HELP}") from None
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{name}: the picture is empty (0 pixels); {UPLOAD_HELP}")
    return image


def too_large(name: str | None = None, size: tuple[int, int] | None = None) -> str:
    """The one wording of "picture too large" (API errors name the input; the UI does not)."""
    got = f" ({size[0]}x{size[1]})" if size else ""
    head = f"{name}: the picture" if name else "The picture"
    return (f"{head} is too large{got}; at most {MAX_PIXELS:,} pixels "
            f"(e.g. {MAX_SIDE}x{MAX_SIDE}) are accepted; {UPLOAD_HELP}")


def _check_size(image: Image.Image, name: str) -> None:
    if image.width * image.height > MAX_PIXELS:
        raise ValueError(too_large(name, image.size))


class Explorer:
    """Every operation of the UI on one model; bases and examples are prepared at load time."""

    def __init__(self, loaded: LoadedModel, assets: ExplorerAssets | None = None,
                 notice: str = "") -> None:
        self.model: VAEGAN = loaded.model.eval()
        self.config = self.model.config
        self.spec, self.notice = loaded.spec, notice
        z_dim = self.config.latent_dim
        if assets is None and loaded.explorer_file is not None:
            assets = load_assets(loaded.explorer_file, z_dim, self.config.channels, self.config.image_size)
        self.assets = assets
        self.scale = max(1, round(DISPLAY_PX / self.config.image_size))
        self.bases = self._bases()
        self.map = LatentMap(self.model, assets, self.bases)
        self.examples: list[tuple[Image.Image, str]] = []  # native-size pictures and labels
        if assets is not None:
            for x, y in zip(assets.example_images, assets.example_labels):
                name = assets.class_names[int(y)] if 0 <= int(y) < len(assets.class_names) else str(int(y))
                self.examples.append((to_image(x.float() / 255), name))
        self._tmp = tempfile.TemporaryDirectory(prefix="vaegan-explorer-")  # removed on exit/GC
        self._gif_count = 0

    # ---- directions ------------------------------------------------------------------------
    def _bases(self) -> dict[str, Basis]:
        a, z_dim, k = self.assets, self.config.latent_dim, min(N_SLIDERS, self.config.latent_dim)
        if a is None:
            dims = torch.arange(k)
            return {"kl": Basis("kl", "Latent dimensions", latent.one_hot_basis(dims, z_dim),
                                tuple(f"z[{int(d)}]" for d in dims),
                                "Directions are not precomputed for this model: the sliders move "
                                "the first latent dimensions, one unit of z per step.")}
        dims = latent.kl_ranking(a.mean_kl)[:k]
        bases = {"kl": Basis("kl", BASES["kl"], latent.one_hot_basis(dims, z_dim, a.z_std),
                             tuple(f"z[{int(d)}] · KL {float(a.mean_kl[d]):.2f}" for d in dims),
                             "Single latent dimensions, the ones that carry most information "
                             "first; one step is one standard deviation of the data.")}
        kp = min(k, a.pca_directions.shape[1])
        bases["pca"] = Basis("pca", BASES["pca"], a.pca_directions[:, :kp] * a.pca_std[None, :kp],
                             tuple(f"PC{i + 1} · {100 * float(r):.1f}% of variance"
                                   for i, r in enumerate(a.pca_variance_ratio[:kp])),
                             "The directions along which the training images vary most "
                             "(as in GANSpace); one step is one standard deviation.")
        kc = min(N_SLIDERS, a.class_vectors.shape[0])
        if kc:
            bases["class"] = Basis("class", BASES["class"], a.class_vectors[:kc].T.contiguous(),
                                   tuple(f"more {n}" for n in a.class_names[:kc]),
                                   "Mean code of a class minus the mean code of the rest "
                                   "(Larsen et al.); one step adds one such difference.")
        ka = min(N_SLIDERS, len(a.attribute_vectors))
        if ka:
            bases["attribute"] = Basis("attribute", a.attribute_title,
                                       a.attribute_vectors[:ka].T.contiguous(),
                                       a.attribute_names[:ka],
                                       a.attribute_info or "Directions of an attribute of the data; "
                                       "one step adds one such direction.")
        return bases

    def custom_basis(self, directions) -> Basis:
        """The "yours" basis: a visitor's own directions, a list of at most N_SLIDERS items,
        each a vector of latent_dim numbers or {"name": ..., "vector": [...]} (as
        direction() makes them); one step adds the vector once."""
        if not isinstance(directions, (list, tuple)) or not 1 <= len(directions) <= N_SLIDERS:
            raise ValueError(f"directions must be a list of 1 to {N_SLIDERS} directions, got "
                             f"{len(directions) if isinstance(directions, (list, tuple)) else type(directions).__name__}")
        vectors, names = [], []
        for i, d in enumerate(directions):
            name, vector = (d.get("name"), d.get("vector")) if isinstance(d, dict) else (None, d)
            vectors.append(self.origin(vector, f"directions[{i}]"))
            names.append(str(name)[:MAX_NAME] if name else f"direction {i + 1}")
        return Basis(YOURS, "Yours", torch.stack(vectors, 1), tuple(names),
                     "Directions you made: the mean code of your first group minus the mean "
                     "code of your second; one step adds that difference once.")

    def direction(self, these, those, name: str = "") -> dict:
        """A direction from two groups of pictures (each a list of 1 to MAX_GROUP pictures, as
        reconstruct takes them): the mean code of `these` minus the mean code of `those` (the
        encoder's posterior means; Larsen et al.'s attribute vectors) -> {"name", "model",
        "vector", "norm", "these", "those"}."""
        groups = []
        for group, label in ((these, "these"), (those, "those")):
            if not isinstance(group, (list, tuple)) or not 1 <= len(group) <= MAX_GROUP:
                n = len(group) if isinstance(group, (list, tuple)) else 0
                raise ValueError(f"{label} must hold 1 to {MAX_GROUP} pictures, got {n}: a "
                                 "direction needs at least one picture on each side")
            groups.append(torch.stack([self.encode(_picture(p, f"{label}[{i}]"))
                                       for i, p in enumerate(group)]))
        a, b = groups
        v = a.mean(0) - b.mean(0)
        name = " ".join(str(name or "").split())[:MAX_NAME] or "my direction"
        return {"name": name, "model": self.spec, "vector": v.tolist(),
                "norm": float(v.norm()), "these": len(a), "those": len(b)}

    def basis(self, name) -> Basis:
        if isinstance(name, Basis):
            return name
        if name not in self.bases:
            raise ValueError(f"basis must be one of {sorted(self.bases)}, got {name!r}")
        return self.bases[name]

    # ---- starting points -------------------------------------------------------------------
    def _generator(self, seed) -> torch.Generator:
        return torch.Generator().manual_seed(checked_number(seed, "seed", 0, MAX_SEED, integer=True))

    def seed_latent(self, seed, temperature=1.0) -> torch.Tensor:
        """z of a seed: the first prior sample of that seed (the first cell of its grid)."""
        t = checked_number(temperature, "temperature", *TEMPERATURE_RANGE)
        return self.model.prior(1, self._generator(seed), t)[0].cpu()

    def zero_latent(self) -> torch.Tensor:
        return torch.zeros(self.config.latent_dim)

    @torch.inference_mode()
    def encode(self, image) -> torch.Tensor:
        """A picture -> posterior mean z (Z,), through data.to_tensor."""
        x = to_tensor(_picture(image), self.config.image_size, self.config.channels)
        return self.model.encode(x.to(self.model.device)).mean[0].cpu()

    def origin(self, z, name: str = "origin") -> torch.Tensor:
        """Validate a starting point given as a sequence of Z finite numbers (None = zeros)."""
        if z is None:
            return self.zero_latent()
        try:
            t = torch.as_tensor(z, dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a list of {self.config.latent_dim} numbers") from None
        if t.numel() != self.config.latent_dim:
            raise ValueError(f"{name} must have {self.config.latent_dim} numbers, got {t.numel()}")
        if not torch.isfinite(t).all() or t.abs().max() > ORIGIN_LIMIT:
            raise ValueError(f"{name} values must be finite and between {-ORIGIN_LIMIT:g} and {ORIGIN_LIMIT:g}")
        return t

    # ---- Sample ----------------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, seed=0, temperature=1.0, count=16) -> SampleGrid:
        """count prior samples of a seed (std scaled by temperature) as one upscaled grid."""
        t = checked_number(temperature, "temperature", *TEMPERATURE_RANGE)
        n = checked_number(count, "count", 1, MAX_COUNT, integer=True)
        z = self.model.prior(n, self._generator(seed), t)
        x = self.model.decode(z).cpu()
        return SampleGrid(self._grid(x, self._ncols(n)), z.cpu())

    @staticmethod
    def _ncols(n: int) -> int:
        return math.ceil(math.sqrt(n))

    def _grid_scale(self, ncols: int) -> int:
        return max(1, GRID_PX // (ncols * (self.config.image_size + GRID_PAD) + GRID_PAD))

    def _grid(self, x: torch.Tensor, ncols: int) -> Image.Image:
        return to_image(tile(x, ncols, GRID_PAD, GRID_PAD_VALUE), self._grid_scale(ncols))

    def grid_cell(self, x: float, y: float, count) -> int | None:
        """Index of the sample under pixel (x, y) of a grid of count samples, or None (also
        when the browser sent no position: a click before the picture had loaded)."""
        n = checked_number(count, "count", 1, MAX_COUNT, integer=True)
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        ncols, cell = self._ncols(n), self.config.image_size + GRID_PAD
        s = self._grid_scale(ncols)
        col, row = int((x / s - GRID_PAD / 2) // cell), int((y / s - GRID_PAD / 2) // cell)
        i = row * ncols + col
        return i if 0 <= col < ncols and row >= 0 and i < n else None

    # ---- Explore ---------------------------------------------------------------------------
    def latent(self, values, basis: str = "kl", origin=None) -> torch.Tensor:
        """z = origin + basis @ values (Z,), every argument validated."""
        b = self.basis(basis)
        k = b.matrix.shape[1]
        vals = [checked_number(v, f"values[{i}]", -SLIDER_LIMIT, SLIDER_LIMIT) for i, v in enumerate(values)]
        if any(vals[k:]):
            raise ValueError(f"basis {b.key!r} has {k} directions; values[{k}:] must be 0")
        v = torch.zeros(k)
        v[: min(k, len(vals))] = torch.tensor(vals[:k])
        return latent.compose(self.origin(origin), b.matrix, v)

    @torch.inference_mode()
    def decode(self, values, basis: str = "kl", origin=None, scale: int | None = None) -> Image.Image:
        """Slider values along a basis from a starting point -> image, upscaled by `scale`
        (default: to about DISPLAY_PX; 1 = the model's native size)."""
        z = self.latent(values, basis, origin)
        return to_image(self.model.decode(z[None].to(self.model.device)), scale or self.scale)

    def track_bytes(self) -> int:
        """Pixel bytes of a track sprite (see track): 121 x channels x image_size**2, e.g.
        94,864 for 28x28 grey and 1,486,848 for 64x64 RGB."""
        c = self.config
        return len(SLIDER_POSITIONS) * c.channels * c.image_size ** 2

    def track(self, values, slider, basis: str = "kl", origin=None) -> Image.Image:
        """Every position of one slider as one sprite: frame i is decode(values with
        values[slider - 1] = SLIDER_POSITIONS[i], basis, origin, scale=1), at native size,
        row-major in a grid of TRACK_COLUMNS columns without padding (11 x 11 frames).

        slider: 1 to the basis's number of directions; values as for decode (values[slider - 1],
        checked like the others, is replaced by each position). Each frame is its own decode
        call, so that it is exactly decode's picture: a batched decode differs from it in the
        last bits, and after rounding in a pixel of up to two frames in 121 (measured on the
        shipped models). Refuses (ValueError) a model whose sprite would hold more than
        MAX_TRACK_BYTES (2 MiB: 64x64 RGB fits, 128x128 RGB does not)."""
        if self.track_bytes() > MAX_TRACK_BYTES:
            raise ValueError(f"this model's pictures are too large for a track: it would hold "
                             f"{self.track_bytes():,} bytes, more than {MAX_TRACK_BYTES:,}")
        k = self.basis(basis).matrix.shape[1]
        s = checked_number(slider, "slider", 1, k, integer=True)
        vals = list(values) + [0.0] * max(0, s - len(values))
        self.latent(vals, basis, origin)  # bad input: one error, up front
        n, size = len(SLIDER_POSITIONS), self.config.image_size
        mode = "L" if self.config.channels == 1 else "RGB"
        sheet = Image.new(mode, (TRACK_COLUMNS * size, math.ceil(n / TRACK_COLUMNS) * size))
        for i, position in enumerate(SLIDER_POSITIONS):
            vals[s - 1] = position
            r, q = divmod(i, TRACK_COLUMNS)
            sheet.paste(self.decode(vals, basis, origin, scale=1), (q * size, r * size))
        return sheet

    # ---- Reconstruct -----------------------------------------------------------------------
    def reconstruct(self, image, steps=0) -> Reconstruction:
        """A picture -> what the model sees, its reconstruction, the error map, MSE and SSIM.
        steps > 0: the code is the posterior mean refined by that many steps of
        refine.refine_codes (the encoder's own figures are kept beside)."""
        n = checked_number(steps, "steps", *refine.STEPS_RANGE, integer=True)
        x = to_tensor(_picture(image), self.config.image_size, self.config.channels)[0]  # (C, H, W)
        with torch.inference_mode():
            z0 = self.model.encode(x[None].to(self.model.device)).mean
        z = refine.refine_codes(self.model, x[None], n, z0=z0) if n else z0
        with torch.inference_mode():
            rec = self.model.decode(z)[0].cpu()
            rec0 = self.model.decode(z0)[0].cpu() if n else None
        err = (x - rec).abs()
        return Reconstruction(to_image(x, self.scale), to_image(rec, self.scale),
                              to_image(err, self.scale), float(err.pow(2).mean()), ssim(x, rec),
                              z[0].cpu(), n,
                              None if rec0 is None else float((x - rec0).pow(2).mean()),
                              None if rec0 is None else ssim(x, rec0))

    def example(self, index) -> Image.Image:
        """One of the shipped test-set pictures (native size)."""
        if not self.examples:
            raise ValueError("this model ships no example pictures (no explorer.safetensors)")
        return self.examples[checked_number(index, "index", 0, len(self.examples) - 1, integer=True)][0]

    # ---- Interpolate -----------------------------------------------------------------------
    def endpoint(self, value, name: str) -> torch.Tensor:
        """A seed (int), a picture, or a latent (Z,) -> z."""
        if isinstance(value, (Image.Image, str, Path)) or value is None:
            try:
                return self.encode(value)
            except ValueError as e:
                raise ValueError(f"{name}: {str(e).partition(': ')[2]}") from None
        if isinstance(value, torch.Tensor) and value.numel() > 1:
            return self.origin(value)
        try:
            return self.seed_latent(value)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None

    @torch.inference_mode()
    def interpolate(self, a, b, steps=8, method: str = "slerp", frame_ms: int = 120) -> Interpolation:
        """Frames from endpoint a to b (each a seed, a picture or a z), a strip and a GIF.

        The GIF holds `steps` frames unless two neighbouring frames are identical (Pillow
        merges those); the first and last frames are held longer.
        """
        n = checked_number(steps, "steps", *STEPS_RANGE, integer=True)
        if method not in ("lerp", "slerp"):
            raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
        za, zb = self.endpoint(a, "endpoint A"), self.endpoint(b, "endpoint B")
        t = torch.linspace(0, 1, n)
        z = (latent.slerp if method == "slerp" else latent.lerp)(za, zb, t)  # (T, Z)
        x = self.model.decode(z.to(self.model.device)).cpu()
        frames = [to_image(xi, self.scale) for xi in x]
        strip = self._grid(x, max(min(n, 5), self._ncols(n)))  # frames in reading order
        self._gif_count += 1
        gif = Path(self._tmp.name) / f"interpolation-{self._gif_count:05d}.gif"
        durations = [frame_ms] * n
        durations[0] = durations[-1] = 4 * frame_ms
        frames[0].save(gif, save_all=True, append_images=frames[1:], duration=durations, loop=0)
        for old in sorted(Path(self._tmp.name).glob("*.gif"))[:-KEEP_GIFS]:
            old.unlink(missing_ok=True)
        return Interpolation(frames, strip, gif, z)

    # ---- Map, atlas, realism -----------------------------------------------------------------
    def plane(self, basis: str = "pca", i=1, j=2) -> tuple[torch.Tensor, tuple[str, str]]:
        """Directions i and j (1-based) of a basis as a (Z, 2) matrix, with their labels; by
        default the first two principal directions (one unit: one standard deviation)."""
        k = self.basis(basis).matrix.shape[1]
        i = checked_number(i, "direction_1", 1, k, integer=True) - 1
        j = checked_number(j, "direction_2", 1, k, integer=True) - 1
        if i == j:
            raise ValueError(f"direction_1 and direction_2 must differ, both are {i + 1}")
        return self.map.plane(basis, i, j)

    def map_view(self, projection: str, origin=None, basis: str = "pca", i=1, j=2) -> MapView:
        """The map of the test pictures: projection "plane" (directions i and j, 1-based, of
        basis, through the starting point origin) or "tsne"."""
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {list(PROJECTIONS)}, got {projection!r}")
        if not self.map.available:
            raise ValueError("this model has no latent map: build its explorer assets with "
                             "`python -m vaegan.explorer build WEIGHTS_DIR` (version 2)")
        directions, axes = (None, ("", "")) if projection == "tsne" else self.plane(basis, i, j)
        return self.map.view(projection, self.origin(origin), directions, axes)

    def map_code(self, view: MapView, x, y) -> torch.Tensor:
        """The code behind the place (x, y) of a map view (Z,)."""
        bound = round(2 * float(view.xy.abs().max()) + 10)  # around the pictures, not far beyond
        x, y = (checked_number(v, name, -bound, bound) for v, name in ((x, "x"), (y, "y")))
        return self.map.code_at(view, x, y)

    @torch.inference_mode()
    def atlas(self, origin=None, basis: str = "pca", i=1, j=2, extent=3.0, n=16) -> Image.Image:
        """n x n decodes over the square slice origin + a u + b v, a and b in [-extent, extent]
        (u, v: directions i and j of basis, 1-based), the first
        direction left to right, the second bottom to top, as one upscaled grid."""
        n = checked_number(n, "n", *ATLAS_N, integer=True)
        extent = checked_number(extent, "extent", *EXTENT)
        directions, _ = self.plane(basis, i, j)
        z = self.map.slice_codes(self.origin(origin), directions, extent, n)
        return self._grid(self.map.decode(z), n)

    def realism(self, z) -> Realism:
        """The realism meter of one code (see vaegan/realism.py)."""
        return self.map.realism(self.origin(z, "z")[None])[0]

    def close(self) -> None:
        """Remove the temp dir now (it is also removed at exit)."""
        self._tmp.cleanup()

    # ---- what the UI says about the model --------------------------------------------------
    @property
    def status(self) -> str:
        c = self.config
        lines = [f"**Model** `{self.spec}` · {c.mode} · {c.image_size}x{c.image_size}x{c.channels} "
                 f"images · {c.latent_dim}-dimensional latent code · random codes from "
                 + (f"a {c.prior_components}-part Gaussian mixture fitted to its training codes"
                    if c.prior_components else "N(0, I)")]
        if self.notice:
            lines.append(f"⚠️ {self.notice}")
        if self.assets is None:
            lines.append(f"⚠️ Directions are not precomputed for this model (no {EXPLORER_FILE}): "
                         "the sliders move single latent dimensions in index order, and principal "
                         "and class directions are unavailable. Build them with "
                         "`python -m vaegan.explorer build WEIGHTS_DIR`.")
        else:
            lines.append(f"Directions computed from {self.assets.num_images:,} "
                         f"{self.assets.source} images.")
        return "  \n".join(lines)


def load_explorer(spec: str, allow_random: bool = False) -> Explorer:
    """Model spec -> Explorer; with allow_random, a missing local folder gives a randomly
    initialised fashion-mnist model (the UI says so) instead of an error."""
    if allow_random and not Path(spec).exists():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = VAEGAN(PRESETS["fashion-mnist"]).eval()
        notice = (f"No trained weights found at `{spec}`: this is a randomly initialised model, "
                  "so its images are noise. Train one with `python -m vaegan.train`.")
        return Explorer(LoadedModel(model, "random fashion-mnist model", Path(spec), None), notice=notice)
    return Explorer(load_model(spec))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vaegan.explorer", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help=f"encode the training set and write WEIGHTS_DIR/{EXPLORER_FILE}")
    b.add_argument("weights_dir", type=Path)
    b.add_argument("--dataset", default="fashion-mnist",
                   help="'fashion-mnist', 'emoji' or a folder of images (default: fashion-mnist)")
    b.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files (default: Debian's)")
    b.add_argument("--split", choices=("train", "test"), default="train",
                   help="images the directions are computed from (examples always come from test)")
    b.add_argument("--limit", type=int, default=None, help="use only the first N images")
    b.add_argument("--examples", type=int, default=10, help="test pictures shipped for the UI")
    b.add_argument("--batch-size", type=int, default=500)
    b.add_argument("--map-points", type=int, default=MAP_POINTS,
                   help="test pictures on the latent map and behind the realism percentiles (0: none)")
    args = p.parse_args(argv)
    if not args.weights_dir.is_dir():
        p.error(f"{args.weights_dir}: not a weights folder")
    loaded = load_model(str(args.weights_dir))
    c = loaded.model.config
    load = lambda split: load_dataset(args.dataset, split, args.data_dir, c.image_size, c.channels)  # noqa: E731
    images, labels = load(args.split)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit] if labels is not None else None
    test_x, test_y = (images, labels) if Path(args.dataset).is_dir() else load("test")
    if test_y is None:  # a folder: no classes, every picture in one
        test_y = torch.zeros(len(test_x), dtype=torch.long)
    name = {"fashion-mnist": "Fashion-MNIST", "emoji": "emoji"}.get(args.dataset, Path(args.dataset).name)
    assets = build_assets(loaded.model, images, labels, dataset_classes(args.dataset), test_x, test_y,
                          n_examples=args.examples, batch_size=args.batch_size,
                          source=f"{name} {args.split}", map_points=args.map_points)
    if args.dataset == "emoji":
        assets = with_skin_tone(assets, loaded.model, args.split, args.limit, args.batch_size)
    out = args.weights_dir / EXPLORER_FILE
    save_assets(assets, out)
    top = latent.kl_ranking(assets.mean_kl)[:5].tolist()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) from {assets.num_images} images; "
          f"most informative dims {top}; PCA variance "
          f"{[round(float(r), 3) for r in assets.pca_variance_ratio[:5]]}", file=sys.stderr)
    return 0


@torch.inference_mode()
def with_skin_tone(assets: ExplorerAssets, model: VAEGAN, split: str, limit: int | None,
                   batch_size: int) -> ExplorerAssets:
    """assets with the emoji's skin-tone basis (vaegan.emoji.tone_directions) from the split."""
    from dataclasses import replace

    from .emoji import load_emoji, render_all, split_indices, tone_directions
    _, emoji = render_all(model.config.image_size)
    chosen = [emoji[i] for i in split_indices(emoji, split)][:limit]
    images = load_emoji(split, model.config.image_size)[0][:limit]
    vectors, names, counts = tone_directions(encode_pictures(model, images, batch_size)[0], chosen)
    return replace(assets, attribute_vectors=vectors, attribute_names=names, attribute_title="Skin tone",
                   attribute_info="The mean code of an emoji in a skin tone minus the code of the same "
                   f"emoji untoned ({counts}); one step adds one such difference.")


if __name__ == "__main__":
    sys.exit(main())
