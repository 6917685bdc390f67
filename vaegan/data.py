"""Datasets, and the one place that turns images into tensors and back.

Tensors are float32 in [0, 1], shape (C, H, W) or (B, C, H, W); Fashion-MNIST is light
garments on a dark background, so uploads that are dark-on-light get inverted.
"""
from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEFAULT_FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

# Decompression bombs: Pillow checks the size in Image.open(), before decoding any pixels.
# Its default limit (~89 million pixels, an error only at twice that) is far more than a
# picture of one garment needs; above MAX_PIXELS opening a file is an error, here and in
# Gradio's upload handling alike (both import this module).
MAX_PIXELS = 4096 * 4096
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


def unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (as the datasets load) -> float in [0, 1]; float images as they are."""
    return images.float().div(255) if images.dtype == torch.uint8 else images.float()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally .gz) of unsigned bytes into an array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file ({arr.size} of {np.prod(shape)} values)")
    return arr.reshape(shape)


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None,
                       download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (images uint8 (N, 1, 28, 28), labels int64 (N,)).

    Looks in data_dir (default /usr/share/datasets/fashion-mnist, from Debian's
    dataset-fashion-mnist package); where the files are missing, falls back to
    torchvision's download.
    """
    prefix = {"train": "train", "test": "t10k"}[split]
    root = Path(data_dir) if data_dir else DEFAULT_FASHION_DIR
    img = root / f"{prefix}-images-idx3-ubyte.gz"
    lab = root / f"{prefix}-labels-idx1-ubyte.gz"
    if not (img.exists() and lab.exists()):
        if not download:
            raise FileNotFoundError(f"Fashion-MNIST {split} files not found in {root}")
        from torchvision.datasets import FashionMNIST
        ds = FashionMNIST(str(root / "torchvision"), train=split == "train", download=True)
        return ds.data.unsqueeze(1).clone(), ds.targets.clone()
    x = torch.from_numpy(read_idx(img).copy()).unsqueeze(1)
    y = torch.from_numpy(read_idx(lab).astype(np.int64))
    return x, y


def _decode_picture(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One picture file -> uint8 (C, S, S), fitted (cropped to the square) as training wants."""
    try:
        im = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValueError(f"{path}: more than {MAX_PIXELS:,} pixels (see data.MAX_PIXELS); "
                         "shrink it or leave it out") from None
    with im:
        im = ImageOps.exif_transpose(im).convert("L" if channels == 1 else "RGB")
        im = ImageOps.fit(im, (image_size, image_size), Image.Resampling.LANCZOS)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


class _Pictures(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], image_size: int, channels: int) -> None:
        self.paths, self.size, self.channels = paths, image_size, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(_decode_picture(self.paths[i], self.size, self.channels))


def load_image_folder(folder: str | Path, image_size: int, channels: int, workers: int = 0) -> torch.Tensor:
    """Every image under folder (recursively), fitted to image_size -> uint8 (N, C, S, S),
    decoded once into memory. workers > 0 decodes in that many processes (a torch DataLoader
    with num_workers; for folders of many large photos), in the same order."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    if workers <= 0:
        return torch.from_numpy(np.stack([_decode_picture(p, image_size, channels) for p in paths]))
    loader = torch.utils.data.DataLoader(_Pictures(paths, image_size, channels), batch_size=64,
                                         num_workers=workers, shuffle=False)
    return torch.cat(list(loader))


def load_dataset(name: str, split: str, data_dir: str | Path | None, image_size: int,
                 channels: int, workers: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """'fashion-mnist', 'emoji' (vaegan/emoji.py, RGB at image_size) or a folder of images ->
    (uint8 images, labels or None)."""
    if name == "fashion-mnist":
        return load_fashion_mnist(split, data_dir)
    if name == "emoji":
        from .emoji import load_emoji
        images, labels = load_emoji(split, image_size)
        return (images if channels == 3 else
                images.float().mean(1, keepdim=True).round().byte()), labels
    return load_image_folder(name, image_size, channels, workers), None


def dataset_classes(name: str) -> tuple[str, ...]:
    """The class names of a dataset's labels: Fashion-MNIST's 10 classes, the emoji groups;
    () for a folder of pictures (no labels)."""
    if name == "fashion-mnist":
        return FASHION_CLASSES
    if name == "emoji":
        from .emoji import emoji_list, groups
        return groups(emoji_list())
    return ()


# ---- the one conversion in, the one conversion out ----------------------------------------

def _first_frame(image: Image.Image) -> Image.Image:
    """Animated GIF/WebP/APNG -> its first frame; any other picture as it is."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    return image


def _value_range(values: np.ndarray, mode: str) -> tuple[float, float]:
    """(black, white) of a high-depth picture: 0-65535 for 16-bit modes; for I (32-bit) and F
    the smallest usual range holding every value (0-1 for F, then 0-255, then 0-65535), else
    the picture's own minimum and maximum. Values are scaled, never clipped at 255."""
    if mode.startswith("I;16"):
        return 0.0, 65535.0
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    for top in ((1.0,) if mode == "F" else ()) + (255.0, 65535.0):
        if lo >= 0 and hi <= top:
            return 0.0, top
    return lo, hi if hi > lo else lo + 1.0


def _eight_bit(image: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> "L" (channels 1) or "RGB": transparency composited on white,
    16/32-bit and float pictures scaled by their range (see _value_range), palettes expanded."""
    im = image
    if im.mode in HIGH_DEPTH_MODES:
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32))  # (H, W)
        black, white = _value_range(arr, im.mode)
        arr = (arr - black) / (white - black)
        im = Image.fromarray((arr.clip(0, 1) * 255).round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            im.mode in ("P", "L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
    if im.mode not in ("1", "L", "P", "RGB", "RGBA", "CMYK"):  # YCbCr, LAB, HSV, ...
        im = im.convert("RGB")
    return im.convert("L" if channels == 1 else "RGB")


def _fit(im: Image.Image, size: int) -> Image.Image:
    """Resize so the longer side is `size` (the shorter at least 1 pixel), keeping the aspect."""
    s = size / max(im.size)
    return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))),
                     Image.Resampling.LANCZOS)


def to_tensor(image: Image.Image, image_size: int = 28, channels: int = 1,
              invert: bool | None = None) -> torch.Tensor:
    """An uploaded picture -> model input (1, C, S, S) in [0, 1].

    Takes the first frame of an animation, applies EXIF orientation, converts every Pillow
    mode (see _eight_bit: transparency on white, 16-bit scaled, not clipped), fits the
    longer side to S and pads to a square with the colour of its border (keeping the whole
    picture; a 10000x10 strip becomes a thin line), and for grayscale inverts images that are
    dark on light (invert=None decides from the border pixels).
    """
    im = _fit(_eight_bit(ImageOps.exif_transpose(_first_frame(image)), channels), image_size)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if channels == 1:
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        if invert is None:
            invert = float(np.median(border)) > 0.5
        if invert:
            arr = 1.0 - arr
        fill = 0 if invert else int(round(float(np.median(border)) * 255))
    else:  # the border's own colour (white for an emoji on white, black for a photo on black)
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])  # (P, 3)
        fill = tuple(int(round(float(v) * 255)) for v in np.median(border, axis=0))
    im = Image.fromarray((arr * 255).round().astype(np.uint8))
    im = ImageOps.pad(im, (image_size, image_size), Image.Resampling.LANCZOS, color=fill)
    t = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()) / 255.0
    t = t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1)
    return t.unsqueeze(0)


def to_image(x: torch.Tensor, scale: int = 1) -> Image.Image:
    """One image tensor (C, H, W) or (1, C, H, W) in [0, 1] -> PIL, nearest-neighbour upscaled."""
    if x.dim() == 4:
        x = x[0]
    arr = (x.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy())
    im = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    return im
