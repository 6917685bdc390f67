"""Hostile and unusual uploads: every file here is made by the test. Each is either converted
to exactly the tensor of the same picture in plain 8-bit grayscale (modes, EXIF, animations,
transparency) or refused with a sentence saying what was wrong, in Explorer and in the app."""
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from ui.components import upload
from ui.page import create_demo
import gradio as gr
from conftest import serving
from vaegan.data import MAX_PIXELS, to_tensor

# as in the app, where importing vaegan.data sets this filter (pytest resets filters per test)
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")

rng = np.random.default_rng(0)
GARMENT = np.zeros((40, 30), np.uint8)  # a light garment on a dark background, not symmetric
GARMENT[6:34, 8:22] = rng.integers(60, 256, (28, 14))
GARMENT[6:12, 22:27] = 255
DARK_ON_WHITE = 255 - GARMENT  # what a photo of a garment on paper looks like


def picture(arr=GARMENT) -> Image.Image:
    return Image.fromarray(arr, "L")


def saved(im: Image.Image, fmt: str, **kw) -> Image.Image:
    """im written as a real file of that format and opened again (lazily, as uploads are)."""
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    buf.seek(0)
    return Image.open(buf)


def same(a: Image.Image, b: Image.Image) -> bool:
    return torch.equal(to_tensor(a), to_tensor(b))


# ---- every Pillow mode, through a real file where the format keeps the mode --------------------
def _rgba_on(mode: str) -> Image.Image:
    """The dark-on-white garment where the white is fully transparent black underneath."""
    alpha = np.where(DARK_ON_WHITE < 255, 255, 0).astype(np.uint8)
    value = np.where(alpha > 0, DARK_ON_WHITE, 0).astype(np.uint8)  # black under the transparency
    if mode == "LA":
        return Image.merge("LA", [picture(value), picture(alpha)])
    return Image.merge("RGBA", [picture(value)] * 3 + [picture(alpha)])


def _palette_with_transparency() -> Image.Image:
    """The dark-on-white garment as palette indices into a grey ramp whose white entry is
    transparent black."""
    im = Image.fromarray(DARK_ON_WHITE, "P")
    im.putpalette([v for i in range(256) for v in ((i,) * 3 if i < 255 else (0, 0, 0))])
    im.info["transparency"] = 255
    return im


TRANSPARENT = {
    "LA": lambda: saved(_rgba_on("LA"), "PNG"),
    "RGBA": lambda: saved(_rgba_on("RGBA"), "PNG"),
    "P with transparency": lambda: saved(_palette_with_transparency(), "PNG"),
}
WIDE = {  # 16- and 32-bit pictures of the same garment, using their whole range
    "I;16": lambda: saved(Image.fromarray(GARMENT.astype(np.uint16) * 257), "PNG"),
    "I (16-bit values)": lambda: saved(Image.fromarray(GARMENT.astype(np.int32) * 257), "TIFF"),
    "I (8-bit values)": lambda: saved(Image.fromarray(GARMENT.astype(np.int32)), "TIFF"),
    "F in [0, 1]": lambda: saved(Image.fromarray(GARMENT.astype(np.float32) / 255), "TIFF"),
    "F in [0, 255]": lambda: saved(Image.fromarray(GARMENT.astype(np.float32)), "TIFF"),
}
PLAIN = {
    "L": lambda: saved(picture(), "PNG"),
    "RGB": lambda: saved(picture().convert("RGB"), "PNG"),
    "CMYK": lambda: saved(picture().convert("RGB").convert("CMYK"), "TIFF"),
    "P": lambda: saved(picture().convert("P"), "PNG"),
}


@pytest.mark.parametrize("name", [*PLAIN, *WIDE])
def test_every_mode_gives_the_tensor_of_the_grayscale_picture(name):
    im = {**PLAIN, **WIDE}[name]()
    assert im.mode == name.split()[0]
    assert same(im, picture()), name


def test_sixteen_bit_is_scaled_not_clipped():
    sixteen = Image.fromarray(GARMENT.astype(np.uint16) * 257)
    t = to_tensor(sixteen)
    assert not torch.equal(t, to_tensor(sixteen.convert("L")))  # Pillow's convert clips at 255
    assert torch.equal(t, to_tensor(picture()))  # the 8-bit picture it was made from
    # a 32-bit picture with values far outside 16 bits is stretched over its own range
    wide = Image.fromarray(GARMENT.astype(np.int32) * 1_000_000 - 7)
    assert same(wide, picture())


@pytest.mark.parametrize("name", TRANSPARENT)
def test_transparency_is_composited_on_white(name):
    im = TRANSPARENT[name]()
    assert same(im, picture(DARK_ON_WHITE)), name
    # had it been composited on black (what lies under the alpha), the picture would differ
    assert not same(im.convert("RGB"), picture(DARK_ON_WHITE))


def test_one_bit_pictures():
    binary = np.where(GARMENT > 128, 255, 0).astype(np.uint8)
    assert same(saved(picture(binary).convert("1"), "PNG"), picture(binary))
    assert same(saved(picture(binary).convert("1"), "BMP"), picture(binary))


# ---- orientation and animations ------------------------------------------------------------------
ROTATIONS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif_rotated(orientation: int, fmt: str = "PNG") -> Image.Image:
    """The garment stored turned, with the EXIF orientation that turns it back upright."""
    stored = picture().transpose(ROTATIONS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return saved(stored, fmt, exif=exif)


@pytest.mark.parametrize("orientation", ROTATIONS)
def test_exif_orientation_is_applied(orientation):
    rotated = _exif_rotated(orientation)
    assert rotated.getexif()[0x0112] == orientation
    assert same(rotated, picture())
    assert not torch.equal(to_tensor(rotated.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
                           to_tensor(picture()))


def _two_frames() -> list[Image.Image]:
    first = picture().convert("RGB")
    second = picture(np.ascontiguousarray(GARMENT[::-1, ::-1])).convert("RGB")
    return [first, second]


ANIMATIONS = {"GIF": {}, "WEBP": {"lossless": True}, "PNG": {}}  # PNG with save_all: APNG


@pytest.mark.parametrize("fmt", ANIMATIONS)
def test_animations_use_their_first_frame(fmt):
    first, second = _two_frames()
    anim = saved(first, fmt, save_all=True, append_images=[second], duration=100, loop=0,
                 **ANIMATIONS[fmt])
    assert getattr(anim, "is_animated", False) and anim.n_frames == 2
    anim.seek(1)  # even when something moved on to a later frame
    assert same(anim, first)
    assert not same(second, first)


# ---- sizes ----------------------------------------------------------------------------------------
def test_one_pixel_and_extreme_aspect_ratios_are_padded_not_refused(explorer_tiny):
    dot = to_tensor(Image.new("L", (1, 1), 80))
    assert dot.shape == (1, 1, 28, 28) and torch.allclose(dot, torch.full_like(dot, 80 / 255))
    strip = np.zeros((10, 10000), np.uint8)
    strip[:, 3000:7000] = 255  # a light bar in the middle of a dark strip 1000 times wider than high
    t = to_tensor(picture(strip))[0, 0]
    assert t.shape == (28, 28)
    rows = (t > 0.2).any(dim=1).nonzero().flatten().tolist()
    cols = (t > 0.2).any(dim=0).nonzero().flatten().tolist()
    assert rows in ([13], [14]), rows  # one row in the middle: the strip, fitted and padded
    assert 9 <= len(cols) <= 13 and cols[0] > 7 and cols[-1] < 20, cols  # its middle 40%
    for im in (Image.new("L", (1, 1), 80), picture(strip), picture(strip.T.copy())):
        r = explorer_tiny.reconstruct(im)
        assert r.input.size == (336, 336) and np.isfinite(r.mse)


def test_the_pixel_limit_is_well_below_pillows_default():
    assert MAX_PIXELS == 4096 * 4096 == Image.MAX_IMAGE_PIXELS


def _png_of_size(tmp_path, w, h) -> str:
    path = tmp_path / f"big-{w}x{h}.png"
    Image.new("1", (w, h)).save(path)  # a few kB on disk, w*h pixels once decoded
    return str(path)


def test_decompression_bombs_are_refused_before_decoding(explorer_tiny, tmp_path):
    for w, h in ((4097, 4096), (5000, 4000), (10000, 5000)):  # over the limit; twice over
        with pytest.raises(ValueError, match=r"image: the picture is too large.*at most "
                                             r"16,777,216 pixels \(e\.g\. 4096x4096\)"):
            explorer_tiny.reconstruct(_png_of_size(tmp_path, w, h))
    with pytest.raises(ValueError, match=r"too large \(4097x4096\)"):  # made in memory
        explorer_tiny.encode(Image.new("L", (4097, 4096)))
    assert explorer_tiny.encode(_png_of_size(tmp_path, 4096, 4096)).shape == (8,)  # at the limit


def test_importing_the_data_module_makes_pillow_refuse_bombs_at_open(tmp_path):
    """In a fresh process (pytest resets warning filters for each test): a 5000x4000 PNG is
    refused by Image.open itself, before any pixel is decoded, and so it is in the app."""
    path = _png_of_size(tmp_path, 5000, 4000)
    code = ("import sys; from PIL import Image; import {mod}\n"
            "try:\n    Image.open(sys.argv[1])\n"
            "except Image.DecompressionBombWarning as e:\n    print('refused:', e)\n")
    for mod in ("vaegan.data", "app"):
        out = subprocess.run([sys.executable, "-c", code.format(mod=mod), path], capture_output=True,
                             text=True, timeout=300, env={"GRADIO_ANALYTICS_ENABLED": "False",
                                                          "HF_HUB_OFFLINE": "1", "PATH": ""})
        assert "refused: Image size (20000000 pixels) exceeds limit of 16777216" in out.stdout, out.stderr


# ---- files that are not pictures ------------------------------------------------------------------
def _bad_files(tmp_path) -> dict[str, str]:
    full = io.BytesIO()
    picture().resize((300, 400)).save(full, "PNG")
    jpeg = io.BytesIO()
    picture().resize((300, 400)).convert("RGB").save(jpeg, "JPEG", quality=90)
    files = {
        "empty.png": b"",
        "notes.png": b"this is not a picture at all\n" * 10,
        "page.png": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "drawing.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>',
        "truncated.png": full.getvalue()[: len(full.getvalue()) // 2],
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
        "header-only.png": full.getvalue()[:60],
        "noise.jpg": bytes(rng.integers(0, 256, 5000, dtype=np.uint8)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in files}


def test_files_that_are_not_pictures_get_a_sentence(explorer_tiny, tmp_path):
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(ValueError, match=r"^image: the file could not be read as a picture "
                                             r"\(\w+\); upload a PNG, JPEG"):
            explorer_tiny.reconstruct(path)
        with pytest.raises(ValueError, match=r"^endpoint B: the file could not be read"):
            explorer_tiny.interpolate(1, path, 4)


# ---- the same through the real app and gradio_client ----------------------------------------------
@pytest.fixture(scope="module")
def client(explorer_tiny, tmp_path_factory):
    with serving(create_demo(explorer_tiny)) as url:
        yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")),
                     analytics_enabled=False)


def _seen(client, path) -> np.ndarray:
    seen = client.predict(handle_file(str(path)), api_name="/reconstruct")[0]
    with Image.open(seen) as im:
        return np.asarray(im.convert("L"))


def test_the_app_converts_modes_orientation_and_animations_like_explorer(client, explorer_tiny, tmp_path):
    upright = np.asarray(explorer_tiny.reconstruct(picture()).input)
    files = {"sixteen.png": Image.fromarray(GARMENT.astype(np.uint16) * 257),
             "cmyk.tiff": picture().convert("RGB").convert("CMYK"),
             "float.tiff": Image.fromarray(GARMENT.astype(np.float32) / 255)}
    for name, im in files.items():
        im.save(tmp_path / name)
    rotated = picture().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "rotated.png", exif=exif)
    first, second = _two_frames()
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second], duration=100, loop=0)
    for name in [*files, "rotated.png", "anim.gif"]:
        assert np.array_equal(_seen(client, tmp_path / name), upright), name
    assert not np.array_equal(_seen(client, tmp_path / "rotated.png"),
                              np.asarray(explorer_tiny.reconstruct(rotated).input))


def test_the_app_refuses_bad_files_with_a_sentence_and_keeps_serving(client, explorer_tiny, tmp_path):
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(AppError, match=r"could not be read as a picture.*upload a PNG") as e:
            client.predict(handle_file(path), api_name="/reconstruct")
        assert "Traceback" not in str(e.value), name
    (tmp_path / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(AppError, match=r"not a picture|could not be read as a picture"):
        client.predict(handle_file(str(tmp_path / "drawing.svg")), api_name="/reconstruct")
    for w, h in ((5000, 4000), (10000, 5000)):
        with pytest.raises(AppError, match=r"too large.*at most 16,777,216 pixels"):
            client.predict(handle_file(_png_of_size(tmp_path, w, h)), api_name="/reconstruct")
    with pytest.raises(AppError, match=r"picture is too large"):
        client.predict("Picture", 0, handle_file(_png_of_size(tmp_path, 5000, 4000)), "Seed", 2, None,
                       4, "slerp", api_name="/interpolate")
    strip = tmp_path / "strip.png"
    Image.new("L", (10000, 10), 255).save(strip)
    assert _seen(client, strip).shape == (336, 336)  # accepted: a thin line, padded
    grid = client.predict(0, 1.0, 4, api_name="/sample")
    with Image.open(grid) as im:
        assert np.array_equal(np.asarray(im), np.asarray(explorer_tiny.sample(0, 1.0, 4).image))


def test_an_svg_from_the_browser_gets_a_sentence(tmp_path):
    """The browser sends the file's name; Gradio refuses .svg by name, we say what to send."""
    from gradio.data_classes import ImageData
    svg = tmp_path / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>')
    box = upload("Picture")
    with pytest.raises(gr.Error, match=r"^['\"]?That file is a drawing \(SVG\), not a picture; upload a PNG"):
        box.preprocess(ImageData(path=str(svg), orig_name="drawing.svg"))
    assert box.preprocess(None) is None


def test_uploads_over_the_file_size_limit_get_a_readable_refusal(client, explorer_tiny, tmp_path):
    big = tmp_path / "big.png"
    with big.open("wb") as f:  # a real PNG, 10.5 MB of incompressible pixels
        Image.fromarray(rng.integers(0, 256, (1900, 1900, 3), dtype=np.uint8)).save(f, "PNG")
    assert big.stat().st_size > 10 * 1024 * 1024
    with pytest.raises(Exception, match=r"(?i)exceeds the maximum .*10.*MB|file size"):
        client.predict(handle_file(str(big)), api_name="/reconstruct")
    assert client.predict(0, 1.0, 1, api_name="/sample")


def test_a_training_folder_with_a_huge_picture_names_it(tmp_path):
    from vaegan.data import load_image_folder
    picture().save(tmp_path / "ok.png")
    huge = _png_of_size(tmp_path, 5000, 4000)
    with pytest.raises(ValueError, match=rf"^{huge}: more than 16,777,216 pixels"):
        load_image_folder(tmp_path, 28, 1)
    (tmp_path / "big-5000x4000.png").unlink()
    assert load_image_folder(tmp_path, 28, 1).shape == (1, 1, 28, 28)


def test_a_training_folder_decodes_the_same_in_worker_processes(tmp_path):
    from vaegan.data import load_image_folder
    for i in range(70):  # more than one of the loader's batches of 64
        Image.fromarray(rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")
    alone = load_image_folder(tmp_path, 32, 3)
    assert alone.shape == (70, 3, 32, 32) and alone.dtype == torch.uint8
    assert torch.equal(load_image_folder(tmp_path, 32, 3, workers=2), alone)
