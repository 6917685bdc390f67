"""The emoji dataset (issue 21): every fully-qualified emoji of Unicode's emoji-test.txt,
rendered once from Noto Color Emoji, labelled by its group.

Sources, both from Debian (`apt-get install fonts-noto-color-emoji unicode-data`):
  /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf   a colour bitmap font (CBDT); Pillow
      renders it at its one native size, 109 px, with ImageDraw.text(..., embedded_color=True)
      (Pillow's raqm layout joins ZWJ sequences, flags and skin tones into one glyph)
  /usr/share/unicode/emoji/emoji-test.txt             every emoji with its group and subgroup

Each emoji is drawn on a transparent canvas, cropped to its pixels, centred on a square and
composited on white, then resized to the size asked for (LANCZOS). White because uploads with
transparency are composited on white too (vaegan.data), and emoji are drawn for light
backgrounds (dark outlines). The "Component" group (bare skin-tone swatches and hair styles) is
left out: they are parts of emoji, not emoji. A fixed 10% is held out for evaluation: the
emoji whose SHA-256 of its code points falls in the last tenth, so the split does not depend
on the font, the file's order or its version.

Rendered sets are cached as .npz under $VAEGAN_CACHE (default ~/.cache/vaegan), keyed by the
two files' hashes and the size: the first load renders (about 20 s on 2 cores), later ones read.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FONT = Path(os.environ.get("VAEGAN_EMOJI_FONT", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"))
LIST = Path(os.environ.get("VAEGAN_EMOJI_LIST", "/usr/share/unicode/emoji/emoji-test.txt"))
APT = "apt-get install fonts-noto-color-emoji unicode-data"
NATIVE_PX = 109  # the font's only bitmap size
LEFT_OUT = ("Component",)
HELD_OUT = 0.10
SKIN_TONES = {"\U0001F3FB": 1, "\U0001F3FC": 2, "\U0001F3FD": 3, "\U0001F3FE": 4, "\U0001F3FF": 5}
CACHE = Path(os.environ.get("VAEGAN_CACHE", Path.home() / ".cache" / "vaegan"))
_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*\S+\s+E[\d.]+\s+(.*)$")


@dataclass(frozen=True)
class Emoji:
    text: str  # the emoji itself
    name: str  # e.g. "thumbs up: medium skin tone"
    group: str  # e.g. "People & Body"
    subgroup: str
    tone: int  # 0 untoned, 1-5 the Fitzpatrick skin tone modifier (the first one in it)
    base: str  # the emoji with its skin tone modifiers removed (itself when untoned)

    @property
    def held_out(self) -> bool:
        digest = hashlib.sha256(self.text.encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 >= 1 - HELD_OUT


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{path} is missing: the emoji dataset is built from Debian's "
                             f"fonts-noto-color-emoji and unicode-data ({APT})")


def emoji_list(path: Path = LIST) -> list[Emoji]:
    """Every fully-qualified emoji of emoji-test.txt but the Component group, in file order."""
    if not path.is_file():
        raise _missing(path)
    out, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif (m := _LINE.match(line)) and group not in LEFT_OUT:
            text = "".join(chr(int(cp, 16)) for cp in m[1].split())
            tones = [SKIN_TONES[c] for c in text if c in SKIN_TONES]
            base = "".join(c for c in text if c not in SKIN_TONES)
            out.append(Emoji(text, m[2].strip(), group, subgroup, tones[0] if tones else 0, base))
    if not out:
        raise ValueError(f"{path}: no fully-qualified emoji found; is it Unicode's emoji-test.txt?")
    return out


def groups(emoji: list[Emoji]) -> tuple[str, ...]:
    """The groups in file order: the class names (label i is groups[i])."""
    return tuple(dict.fromkeys(e.group for e in emoji))


def render(text: str, size: int, font) -> np.ndarray:
    """One emoji -> uint8 (size, size, 3) RGB on white, centred, its longer side filling the square."""
    from PIL import Image, ImageDraw
    canvas = Image.new("RGBA", (NATIVE_PX * 3, NATIVE_PX + 60), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((20, 20), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        raise ValueError(f"{text!r} renders as nothing in {FONT.name}")
    glyph = canvas.crop(box)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    im = square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def _key(size: int) -> str:
    h = hashlib.sha256(f"emoji v1 {size}".encode())
    for path in (FONT, LIST):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def render_all(size: int = 64) -> tuple[np.ndarray, list[Emoji]]:
    """-> (uint8 (N, 3, size, size), the emoji), rendered or read from the cache."""
    for path in (FONT, LIST):
        if not path.is_file():
            raise _missing(path)
    emoji = emoji_list()
    cache = CACHE / f"emoji-{size}-{_key(size)}.npz"
    if cache.is_file():
        with np.load(cache) as f:
            if list(f["texts"]) == [e.text for e in emoji]:
                return f["images"], emoji
    from PIL import ImageFont
    font = ImageFont.truetype(str(FONT), NATIVE_PX)
    images = np.stack([render(e.text, size, font).transpose(2, 0, 1) for e in emoji])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, images=images, texts=np.array([e.text for e in emoji]))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: render again next time
    return images, emoji


def split_indices(emoji: list[Emoji], split: str) -> list[int]:
    """Indices into emoji of a split ("train": 90%, "test": the held-out 10%, "all")."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    return [i for i, e in enumerate(emoji) if split == "all" or e.held_out == (split == "test")]


def load_emoji(split: str = "train", size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (images uint8 (N, 3, size, size), group labels int64 (N,)) of the split ("train":
    90%, "test": the held-out 10%, "all")."""
    images, emoji = render_all(size)
    names = groups(emoji)
    keep = split_indices(emoji, split)
    labels = torch.tensor([names.index(emoji[i].group) for i in keep], dtype=torch.int64)
    return torch.from_numpy(images[keep].copy()), labels


TONE_NAMES = ("light", "medium-light", "medium", "medium-dark", "dark")  # modifiers 1-5


def tone_directions(codes: torch.Tensor, emoji: list[Emoji]) -> tuple[torch.Tensor, tuple[str, ...], str]:
    """The skin-tone basis from the codes (N, Z) of a list of emoji (as load_emoji orders a
    split): for each tone, the mean over the emoji of that tone (one tone throughout) whose
    untoned form is in the list of code(toned) - code(untoned); first "darker skin", the dark
    direction minus the light one -> (vectors (6, Z), slider names, a sentence of counts)."""
    where = {e.text: i for i, e in enumerate(emoji)}
    diffs: dict[int, list[torch.Tensor]] = {t: [] for t in range(1, 6)}
    for i, e in enumerate(emoji):
        tones = {SKIN_TONES[c] for c in e.text if c in SKIN_TONES}
        if len(tones) == 1 and e.base in where:
            diffs[e.tone].append(codes[i] - codes[where[e.base]])
    if not all(diffs.values()):
        raise ValueError("skin-tone directions need toned emoji with their untoned forms for "
                         f"every tone; found {[len(d) for d in diffs.values()]} pairs")
    per_tone = torch.stack([torch.stack(diffs[t]).mean(0) for t in range(1, 6)])  # (5, Z)
    vectors = torch.cat([(per_tone[4] - per_tone[0])[None], per_tone])
    names = ("darker skin (dark minus light)", *(f"{n} skin tone" for n in TONE_NAMES))
    counts = ", ".join(f"{len(diffs[t])} {n}" for t, n in zip(range(1, 6), TONE_NAMES))
    return vectors, names, f"pairs of an emoji and its untoned form: {counts}"
