"""Issue 21: nothing assumes 28x28 or one channel. The whole Explorer on a random tiny model
of each shape, and the app (public API, live route, track, uploads) on a tiny 32x32 RGB model
listed beside the 28x28 grey one."""
import io

import httpx
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from ui.live import ROUTE, TRACK_HEADER, TRACK_ROUTE
from ui.models import Models
from ui.page import create_demo
from vaegan.data import to_tensor
from vaegan.explorer import SLIDER_POSITIONS, TRACK_COLUMNS, Explorer, load_explorer
from vaegan.hub import LoadedModel
from vaegan.model import VAEGAN, VAEGANConfig
from conftest import serving


def _colourful(a: np.ndarray) -> bool:
    """An RGB array (H, W, 3) whose channels differ somewhere (not grey in RGB clothing)."""
    return a.ndim == 3 and a.shape[2] == 3 and bool((np.ptp(a.astype(int), axis=2) > 8).any())


@pytest.fixture(scope="module")
def rgb(tiny_rgb_folder):
    ex = load_explorer(str(tiny_rgb_folder))
    yield ex
    ex.close()


def _bare(config: VAEGANConfig) -> Explorer:
    """A random model of that shape without explorer assets."""
    torch.manual_seed(0)
    return Explorer(LoadedModel(VAEGAN(config).eval(), f"random {config.image_size}", None, None))


SHAPES = {
    "grey 28 with assets": lambda request: request.getfixturevalue("explorer_tiny"),
    "rgb 32 with assets": lambda request: request.getfixturevalue("rgb"),
    "grey 16 bare": lambda request: _bare(VAEGANConfig(image_size=16, channels=1, latent_dim=4,
                                                       widths=(4, 8), disc_widths=(4,))),
    "rgb 24 bare": lambda request: _bare(VAEGANConfig(image_size=24, channels=3, latent_dim=5,
                                                      widths=(4, 8, 8), disc_widths=(4, 8))),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_whole_explorer_runs_on_a_model_of_each_shape(shape, request, tmp_path):
    ex = SHAPES[shape](request)
    c = ex.config
    mode, side = ("L" if c.channels == 1 else "RGB"), c.image_size
    px = side * ex.scale

    def check(im: Image.Image, size: tuple[int, int]) -> None:
        assert im.mode == mode and im.size == size

    grid = ex.sample(1, 1.0, 9)
    check(grid.image, grid.image.size)
    assert grid.z.shape == (9, c.latent_dim)
    # the grid click finds the cell whatever the picture's size
    s = ex._grid_scale(3)
    assert ex.grid_cell((2 + (side + 2) + 3) * s, 3 * s, 9) == 1
    for key, basis in ex.bases.items():
        k = basis.matrix.shape[1]
        check(ex.decode([1.0] * k, key, ex.seed_latent(2)), (px, px))
        sprite = ex.track([0.0] * k, k, key)
        check(sprite, (TRACK_COLUMNS * side, len(SLIDER_POSITIONS) // TRACK_COLUMNS * side))
    # an upload of the other kind: a colour picture for a grey model, a grey one for colour
    other = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3 if c.channels == 1 else 1)
                                                             ).astype(np.uint8).squeeze())
    path = tmp_path / "upload.png"
    other.save(path)
    rec = ex.reconstruct(str(path))
    for im in (rec.input, rec.reconstruction, rec.error):
        check(im, (px, px))
    assert 0 <= rec.mse and -1 <= rec.ssim <= 1 and rec.z.shape == (c.latent_dim,)
    inter = ex.interpolate(0, str(path), 5)
    assert len(inter.frames) == 5 and all(f.mode == mode for f in inter.frames)
    with Image.open(inter.gif) as g:
        assert g.n_frames == 5 and g.size == (px, px)
    if ex.map.available:
        assert ex.map_view("tsne").xy.shape[1] == 2
        check(ex.atlas(n=4), ex.atlas(n=4).size)
        assert 0 <= ex.realism(ex.seed_latent(1)).density_percentile <= 100
    assert f"{side}x{side}x{c.channels}" in ex.status


def test_uploads_become_what_the_model_takes():
    grey = Image.new("L", (50, 20), 200)
    colour = Image.new("RGB", (20, 50), (250, 40, 10))
    assert to_tensor(grey, 32, 3).shape == (1, 3, 32, 32)
    assert to_tensor(colour, 28, 1).shape == (1, 1, 28, 28)
    # a colour picture keeps its colour, and is padded to a square with its border's colour
    x = to_tensor(colour, 32, 3)[0]
    assert torch.allclose(x[:, 16, 16], torch.tensor([250, 40, 10]) / 255, atol=1 / 255)
    on_white = Image.new("RGB", (40, 20), "white")
    on_white.paste((255, 0, 0), (15, 5, 25, 15))
    y = to_tensor(on_white, 32, 3)[0]
    assert torch.equal(y[:, 0, 0], torch.ones(3)) and torch.equal(y[:, -1, -1], torch.ones(3))


def test_the_emoji_assets_give_groups_and_skin_tone(rgb):
    assert rgb.bases["class"].labels[:2] == ("more Smileys & Emotion", "more People & Body")
    tone = rgb.bases["attribute"]
    assert tone.title == "Skin tone" and tone.labels[0].startswith("darker skin")
    assert tone.labels[1:] == tuple(f"{n} skin tone" for n in
                                    ("light", "medium-light", "medium", "medium-dark", "dark"))
    # the first direction is the dark one minus the light one
    m = tone.matrix
    assert torch.allclose(m[:, 0], m[:, 5] - m[:, 1], atol=1e-5)
    assert [name for _, name in rgb.examples][:3] == ["Smileys & Emotion", "People & Body",
                                                      "Animals & Nature"]
    assert rgb.examples[0][0].mode == "RGB"


def test_a_coloured_drawing_stays_coloured_for_the_rgb_model_and_inverted_for_grey(rgb, explorer_tiny):
    from PIL import ImageDraw

    from ui.components import SKETCH_SIDE, drawing
    im = Image.new("RGB", (SKETCH_SIDE, SKETCH_SIDE), "white")
    ImageDraw.Draw(im).ellipse((60, 60, 220, 220), fill="#fbbc04", outline="black", width=8)
    picture = drawing({"composite": im})
    seen_rgb = np.asarray(rgb.reconstruct(picture).input)
    assert tuple(seen_rgb[0, 0]) == (255, 255, 255)  # white ground kept
    centre = seen_rgb[seen_rgb.shape[0] // 2, seen_rgb.shape[1] // 2]
    assert abs(int(centre[0]) - 0xfb) <= 3 and abs(int(centre[2]) - 0x04) <= 3  # yellow kept
    seen_grey = np.asarray(explorer_tiny.reconstruct(picture).input)
    assert seen_grey.ndim == 2 and seen_grey[0, 0] == 0  # inverted: a dark ground, as the data


# ---- the app, with both shapes in its Model list -----------------------------------------------
@pytest.fixture(scope="module")
def app(explorer_tiny, rgb, tiny_rgb_folder):
    models = Models(explorer_tiny, [rgb.spec], loader=lambda spec: rgb)
    with serving(create_demo(models), trailing_slash=False) as url:
        yield url


@pytest.fixture
def client(app, tmp_path):
    return Client(app + "/", verbose=False, download_files=str(tmp_path), analytics_enabled=False)


def _array(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(im.mode))


def test_the_public_api_serves_colour_for_the_rgb_model_and_grey_for_the_other(client, rgb, explorer_tiny,
                                                                               tmp_path):
    colour = _array(client.predict(3, 1.0, 4, rgb.spec, api_name="/sample"))
    assert colour.ndim == 3 and np.array_equal(colour, np.asarray(rgb.sample(3, 1.0, 4).image))
    assert _colourful(colour)
    grey = _array(client.predict(3, 1.0, 4, api_name="/sample"))  # the default model, after it
    assert grey.ndim == 2 and np.array_equal(grey, np.asarray(explorer_tiny.sample(3, 1.0, 4).image))
    k = rgb.bases["attribute"].matrix.shape[1]
    origin = rgb.seed_latent(1).tolist()
    got = _array(client.predict("attribute", origin, 1.5, directions=None, model=rgb.spec,
                                api_name="/decode"))
    assert np.array_equal(got, np.asarray(rgb.decode([1.5] + [0.0] * (k - 1), "attribute", origin)))
    # a grey upload reconstructed by the colour model: RGB in, RGB out, an RGB error map
    upload = tmp_path / "grey.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (40, 1))).save(upload)
    seen, rec, err, metrics, z = client.predict(handle_file(upload), model=rgb.spec, api_name="/reconstruct")
    assert all(_array(p).shape == (320, 320, 3) for p in (seen, rec, err)) and len(z) == 8
    strip, gif = client.predict("Seed", 1, None, "Seed", 2, None, 4, "slerp", rgb.spec,
                                api_name="/interpolate")
    with Image.open(gif) as g:
        assert g.n_frames == 4 and g.convert("RGB").size == (320, 320)
        assert _colourful(np.asarray(g.convert("RGB")))


def test_the_live_route_and_the_track_serve_rgb(app, rgb):
    origin = ",".join(repr(v) for v in rgb.seed_latent(4).tolist())
    r = httpx.get(app + ROUTE, params={"values": "0.5,-1", "basis": "pca", "origin": origin,
                                       "model": rgb.spec})
    assert r.status_code == 200, r.text
    frame = np.asarray(Image.open(io.BytesIO(r.content)))
    assert frame.shape == (32, 32, 3)
    assert np.array_equal(frame, np.asarray(rgb.decode([0.5, -1.0], "pca", rgb.seed_latent(4).tolist(),
                                                       scale=1)))
    r = httpx.get(app + TRACK_ROUTE, params={"slider": 1, "values": "0", "basis": "attribute",
                                             "origin": origin, "model": rgb.spec})
    assert r.status_code == 200, r.text
    assert "width=32; height=32" in r.headers[TRACK_HEADER]
    sprite = np.asarray(Image.open(io.BytesIO(r.content)))
    assert sprite.shape == (11 * 32, 11 * 32, 3)
    want = np.asarray(rgb.decode([SLIDER_POSITIONS[-1]], "attribute", rgb.seed_latent(4).tolist(), scale=1))
    assert np.array_equal(sprite[-32:, -32:], want)  # the last frame: the slider at +3


def test_no_literal_28_in_the_app_or_explorer_code():
    """The package stays general: sizes come from the model's config, never a literal 28 (or
    784 = 28 x 28) in code; docstrings and comments may name the shipped model's size."""
    import re
    import tokenize
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    py = [root / "app.py", root / "vaegan" / "explorer.py", root / "vaegan" / "latent_map.py",
          root / "vaegan" / "realism.py", *sorted((root / "ui").rglob("*.py"))]
    for f in py:
        with f.open("rb") as fh:
            for tok in tokenize.tokenize(fh.readline):
                assert not (tok.type == tokenize.NUMBER and tok.string in ("28", "784")), \
                    f"{f.name}:{tok.start[0]}: {tok.line.strip()}"
        # nor in what the page says (labels, messages); docstrings may name the shipped size
        import ast
        tree = ast.parse(f.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                assert not re.search(r"\b28 ?x ?28\b|\b1 channel", node.value), f"{f.name}:{node.lineno}"
    js = root / "ui" / "live.js"
    for n, line in enumerate(js.read_text().splitlines(), 1):
        code = line.split("//")[0]
        assert not re.search(r"(?<![\w.])(28|784)(?![\w.])", code), f"live.js:{n}: {line.strip()}"


def test_the_mini_map_event_of_a_switch_skips_the_other_models_inputs(explorer_tiny):
    """After a switch the page may read the basis or the starting point before the switch's
    values land: another model's basis, a code of another length. The switch drew the meter."""
    import gradio as gr
    tab = create_demo(explorer_tiny).vaegan_page.tabs["explore"]
    zeros = [0.0] * 12
    for basis, origin in (("attribute", None), ("kl", [0.0] * 64)):
        out = tab.where_now(basis, origin, None, *zeros, explorer_tiny.spec)
        assert list(out) == [tab.meter] and isinstance(out[tab.meter], type(gr.skip()))
    out = tab.where_now("kl", [0.0] * 8, None, *zeros, explorer_tiny.spec)
    assert "Real?" in out[tab.meter]
