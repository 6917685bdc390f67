"""Issue 19, without a browser: directions of your own (Explorer, the builder's handlers, the
JSON file, the live route, the public /direction endpoint), links that restore a view (and 20
kinds of malformed ones), code files, and drawings. (The browser side: test_yours_browser.py.)"""
import io
import json
from urllib.parse import urlencode

import gradio as gr
import httpx
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import serving
from ui import links
from ui.components import SKETCH_SIDE, drawing
from ui.directions import FORMAT, read_directions
from ui.live import ROUTE, TRACK_ROUTE, decode_png
from ui.page import create_demo
from ui.tabs.explore import CODE_FORMAT, read_code_file
from vaegan import refine
from vaegan.explorer import MAX_GROUP, N_SLIDERS, YOURS


@pytest.fixture(scope="module")
def demo(explorer_tiny):
    return create_demo(explorer_tiny)


@pytest.fixture(scope="module")
def page(demo):
    return demo.vaegan_page


@pytest.fixture(scope="module")
def pictures(explorer_tiny, tmp_path_factory):
    """The test-set examples as real PNG files, by index."""
    folder = tmp_path_factory.mktemp("examples")
    paths = []
    for i, (im, _) in enumerate(explorer_tiny.examples):
        paths.append(folder / f"example-{i}.png")
        im.save(paths[-1])
    return paths


def _arr(im) -> np.ndarray:
    return np.asarray(im)


# ---- directions ------------------------------------------------------------------------------
def test_a_direction_is_the_difference_of_the_groups_mean_codes(explorer_tiny, pictures):
    ex = explorer_tiny
    these, those = pictures[:3], pictures[3:5]
    d = ex.direction(these, those, "  sleeves \n and more ")
    codes_a = torch.stack([ex.encode(Image.open(p)) for p in these])
    codes_b = torch.stack([ex.encode(Image.open(p)) for p in those])
    expected = codes_a.mean(0) - codes_b.mean(0)
    assert torch.allclose(torch.tensor(d["vector"]), expected, atol=1e-6)
    assert d["norm"] == pytest.approx(float(expected.norm()), rel=1e-5)
    assert (d["name"], d["these"], d["those"], d["model"]) == ("sleeves and more", 3, 2, ex.spec)
    # as a basis: one step adds the vector once
    basis = ex.custom_basis([d])
    assert basis.key == YOURS and basis.labels == ("sleeves and more",)
    origin = ex.seed_latent(3)
    z = ex.latent([1.5], basis, origin.tolist())
    assert torch.allclose(z, origin + 1.5 * expected, atol=1e-5)


def test_a_direction_needs_a_picture_on_each_side_and_at_most_a_full_group(explorer_tiny, pictures):
    with pytest.raises(ValueError, match=r"^those must hold 1 to 64 pictures, got 0: a direction "
                                         r"needs at least one picture on each side"):
        explorer_tiny.direction(pictures[:2], [])
    with pytest.raises(ValueError, match="these must hold 1 to 64 pictures, got 65"):
        explorer_tiny.direction([pictures[0]] * (MAX_GROUP + 1), pictures[:1])
    with pytest.raises(ValueError, match=r"^these\[1\]: the file could not be read as a picture"):
        explorer_tiny.direction([pictures[0], __file__], pictures[:1])


@pytest.mark.parametrize("directions, message", [
    ([], r"directions must be a list of 1 to 12 directions, got 0"),
    ([[0.0] * 8] * (N_SLIDERS + 1), r"directions must be a list of 1 to 12 directions, got 13"),
    ("not a list", r"directions must be a list of 1 to 12 directions, got str"),
    ([[1.0, 2.0]], r"directions\[0\] must have 8 numbers, got 2"),
    ([{"name": "x", "vector": [float("nan")] * 8}], r"directions\[0\] values must be finite"),
    ([[0.0] * 8, {"vector": "abc"}], r"directions\[1\] must be a list of 8 numbers"),
])
def test_bad_directions_get_a_sentence(explorer_tiny, directions, message):
    assert explorer_tiny.config.latent_dim == 8
    with pytest.raises(ValueError, match=message):
        explorer_tiny.custom_basis(directions)


def _shown(gallery: gr.Gallery) -> list:
    """A gallery update's pictures as the next event gets them: [(path, caption)]."""
    return [(item["image"]["path"], item.get("caption")) for item in gallery.value]


def test_the_builder_makes_a_direction_from_its_groups_and_shows_it_as_yours(page, explorer_tiny,
                                                                             pictures):
    tab = page.tabs["explore"]
    b = tab.yours
    origin = explorer_tiny.seed_latent(1).tolist()
    # "Add the picture shown above" from two starting points, then make it
    out = b.add_current("these", None, None, "kl", origin, [], *[0.0] * N_SLIDERS, None)
    assert out[b.groups["these"]].label == "These (1 picture)"
    these = _shown(out[b.groups["these"]])
    out = b.add_current("those", these, None, "kl", explorer_tiny.seed_latent(2).tolist(), [],
                        *[0.0] * N_SLIDERS, None)
    those = _shown(out[b.groups["those"]])
    assert len(these) == 1 and len(those) == 1
    made = b.make_direction(these, those, "lighter", [], origin, None)
    mine = made[b.mine]
    assert [d["name"] for d in mine] == ["lighter"] and made[tab.basis] == YOURS
    assert "Made **lighter** from 1 and 1 pictures" in made[b.note]
    assert made[tab.sliders[0]].label == "lighter" and made[tab.sliders[1]].visible is False
    expected = explorer_tiny.direction([these[0][0]], [those[0][0]], "lighter")["vector"]
    assert mine[0]["vector"] == pytest.approx(expected, abs=1e-6)
    # the release decode and the realism line use it
    want = explorer_tiny.decode([2.0], explorer_tiny.custom_basis(mine), origin)
    got = tab.decode(YOURS, origin, None, mine, **{f"slider_{i + 1}": 2.0 if i == 0 else 0.0
                                                    for i in range(N_SLIDERS)})[tab.image]
    assert np.array_equal(_arr(got), _arr(want))
    # "Yours" with none made: a sentence (API), the first basis and the builder opened (page)
    with pytest.raises(gr.Error, match="You have no directions of your own yet"):
        tab.decode(YOURS, origin, None, [], **{f"slider_{i + 1}": 0.0 for i in range(N_SLIDERS)})
    back = tab.set_basis(YOURS, origin, [], None)
    assert back[tab.basis] == "kl" and back[b.box].open is True
    # an empty side: a sentence
    with pytest.raises(gr.Error, match="Those must hold 1 to 64 pictures, got 0"):
        b.make_direction(these, [], "x", [], origin, None)


def _file(update: gr.File) -> str:
    """The path a gr.File update offers for download."""
    return update.value["path"] if isinstance(update.value, dict) else update.value


def test_directions_download_and_load_again(page, explorer_tiny, pictures, tmp_path):
    b = page.tabs["explore"].yours
    mine = [explorer_tiny.direction(pictures[:2], pictures[2:4], "one"),
            explorer_tiny.direction(pictures[4:5], pictures[5:6], "two")]
    file = _file(b.download(mine, None))
    data = json.loads(open(file).read())
    assert data["format"] == FORMAT and data["model"] == explorer_tiny.spec
    loaded = read_directions(file, explorer_tiny)
    assert [d["name"] for d in loaded] == ["one", "two"]
    for a, b_ in zip(loaded, mine):
        assert a["vector"] == b_["vector"] and (a["these"], a["those"]) == (b_["these"], b_["those"])
    shown = b.upload(file, [], explorer_tiny.seed_latent(0).tolist(), None)
    assert len(shown[b.mine]) == 2 and shown[page.tabs["explore"].basis] == YOURS
    # files that are not ours, or not for this model
    bad = tmp_path / "bad.json"
    for text, message in [("{", "not a directions file"), ('{"format": "x"}', "not a directions file"),
                          (json.dumps({"format": FORMAT, "directions": [{"vector": [0.0] * 5}]}),
                           r"directions\[0\] must have 8 numbers, got 5"),
                          ("x" * 300_000, "larger than 256 KiB")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_directions(str(bad), explorer_tiny)
    with pytest.raises(gr.Error, match="That makes 15 directions; there are 12 sliders"):
        b.upload(file, mine * 6 + [mine[0]], None, None)


def test_the_live_route_draws_your_directions_exactly(demo, explorer_tiny, pictures):
    ex = explorer_tiny
    d = ex.direction(pictures[:2], pictures[2:4], "d")
    origin = ex.seed_latent(4).tolist()
    dirs = ",".join(repr(v) for v in d["vector"])
    png = decode_png(ex, "1.25", YOURS, ",".join(repr(v) for v in origin), 1, dirs)
    want = ex.decode([1.25], ex.custom_basis([d]), origin, scale=1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(want))
    with serving(demo, trailing_slash=False) as url:
        q = {"values": "1.25", "basis": YOURS, "origin": ",".join(map(repr, origin))}
        r = httpx.get(url + ROUTE, params=q, timeout=60)  # no dirs
        assert r.status_code == 400 and r.json()["error"].startswith("Dirs must hold 1 to 12 directions")
        r = httpx.get(url + ROUTE, params={**q, "dirs": "1,2"}, timeout=60)
        assert r.status_code == 400 and r.json()["error"] == "Directions[0] must have 8 numbers, got 2"
        r = httpx.get(url + TRACK_ROUTE, params={**q, "dirs": dirs, "slider": "1"}, timeout=60)
        assert r.status_code == 200
        sprite = np.asarray(Image.open(io.BytesIO(r.content)))
        first = np.asarray(ex.decode([-3.0], ex.custom_basis([d]), origin, scale=1))
        size = ex.config.image_size  # (the sprite's first frame: position -3)
        assert np.array_equal(sprite[:size, :size], first)


def test_the_public_direction_endpoint_takes_two_lists_of_pictures(demo, explorer_tiny, pictures):
    from gradio_client import Client, handle_file
    with serving(demo) as url:
        client = Client(url, verbose=False)
        info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/direction"]
        assert [p["parameter_name"] for p in info["parameters"]] == ["these", "those", "name", "model"]
        out = client.predict([{"image": handle_file(str(p))} for p in pictures[:2]],
                             [{"image": handle_file(str(pictures[5]))}], "mine",
                             api_name="/direction")
        want = explorer_tiny.direction(pictures[:2], pictures[5:6], "mine")
        assert out["name"] == "mine" and (out["these"], out["those"]) == (2, 1)
        assert out["vector"] == pytest.approx(want["vector"], abs=1e-6)
        with pytest.raises(Exception, match="Those must hold 1 to 64 pictures, got 0"):
            client.predict([{"image": handle_file(str(pictures[0]))}], [], "x", api_name="/direction")
        client.close()


# ---- links -----------------------------------------------------------------------------------
def test_a_link_round_trips_to_the_same_picture(page, explorer_tiny):
    ex, tab = explorer_tiny, page.tabs["explore"]
    origin = (ex.seed_latent(9) * 1.2345678).tolist()
    values = [0.35, -1.2, 0.0, 2.95] + [0.0] * (N_SLIDERS - 4)
    shown = ex.decode(values, "pca", origin)
    q = tab.make_link("pca", origin, [], *values, None)[tab.share_query]
    assert q.startswith("?model=") and "&s=0.35%2C-1.2%2C0%2C2.95" in q and len(q) < 200
    out = page.open_link({page.link: q, page.model: ex.spec})
    assert out[tab.origin] == torch.tensor(origin).tolist()  # float32-exact
    assert [out[s].value for s in tab.sliders] == values
    assert np.array_equal(_arr(out[tab.image]), _arr(shown))
    assert out[page.tab_box].selected == "explore"


def test_a_link_on_your_directions_holds_the_code_itself(page, explorer_tiny, pictures):
    ex, tab = explorer_tiny, page.tabs["explore"]
    mine = [ex.direction(pictures[:1], pictures[1:2], "d")]
    origin = ex.seed_latent(2).tolist()
    values = [1.5] + [0.0] * (N_SLIDERS - 1)
    shown = ex.decode(values, ex.custom_basis(mine), origin)
    q = tab.make_link(YOURS, origin, mine, *values, None)[tab.share_query]
    out = page.open_link({page.link: q, page.model: ex.spec})
    assert np.array_equal(_arr(out[tab.image]), _arr(shown))
    assert all(out[s].value == 0 for s in tab.sliders)


def test_a_map_link_round_trips_the_view_and_the_picked_place(page, explorer_tiny):
    ex, tab = explorer_tiny, page.tabs["map"]
    origin = ex.seed_latent(5).tolist()
    view = ex.map_view("plane", origin, "pca", 1, 2)
    pick = ex.map_code(view, 0.7, -0.4).tolist()
    q = tab.make_link("plane", "pca", 1, 2, False, origin, None, pick)[tab.share_query]
    out = page.open_link({page.link: q, page.model: ex.spec})
    assert out[page.tab_box].selected == "map" and out[tab.code] == pick
    assert np.array_equal(_arr(out[tab.picked]), _arr(ex.decode([], "kl", pick)))
    assert out[tab.picture] is not None and out[page.tabs["explore"].origin] == origin


def NOTHING(page) -> dict:
    """What a handler returns to change nothing (an empty dict would be an error to Gradio)."""
    return {page.status: gr.skip()}


def _z(ex, n=None, value=0.25) -> str:
    return links.code_text([value] * (n or ex.config.latent_dim))


MALFORMED = [  # (what, query, part of the sentence)
    ("truncated z", lambda ex: f"?model={ex.spec}&z={_z(ex)[:-7]}", "z holds 27 bytes; codes of"),
    ("z of another length", lambda ex: f"?model={ex.spec}&z={_z(ex, 16)}",
     "z holds 64 bytes; codes of"),
    ("z not base64", lambda ex: f"?model={ex.spec}&z=%%%%", "not a code written by this app"),
    ("NaN in z", lambda ex: f"?model={ex.spec}&z={links.code_text([float('nan')] * 8)}",
     "not finite"),
    ("infinity in z", lambda ex: f"?model={ex.spec}&z={links.code_text([float('inf')] * 8)}",
     "not finite"),
    ("huge z", lambda ex: f"?model={ex.spec}&z={_z(ex, value=1e6)}", "beyond ±100"),
    ("unknown model", lambda ex: f"?model=someone/else&z={_z(ex)}", "is not one this app offers"),
    ("no model", lambda ex: f"?z={_z(ex)}", "the link has no model"),
    ("no z", lambda ex: f"?model={ex.spec}&s=1", "the link has no z"),
    ("oversized", lambda ex: f"?model={ex.spec}&z={_z(ex)}&s=" + "0," * 3000, "at most 4,096"),
    ("unknown basis", lambda ex: f"?model={ex.spec}&basis=evil&z={_z(ex)}", "basis must be one of"),
    ("slider NaN", lambda ex: f"?model={ex.spec}&z={_z(ex)}&s=nan", "s[0] must be a number between"),
    ("slider out of range", lambda ex: f"?model={ex.spec}&z={_z(ex)}&s=0,7", "s[1] must be a number"),
    ("slider not a number", lambda ex: f"?model={ex.spec}&z={_z(ex)}&s=abc", "s[0] is not a number"),
    ("too many sliders", lambda ex: f"?model={ex.spec}&z={_z(ex)}&s=" + ",".join(["0"] * 13),
     "s holds 13 slider values"),
    ("more sliders than the basis has", lambda ex: f"?model={ex.spec}&basis=class&z={_z(ex)}&s="
     + ",".join(["0.5"] * 12), "has 10 directions"),
    ("unknown tab", lambda ex: f"?model={ex.spec}&tab=admin&z={_z(ex)}", "tab must be one of"),
    ("unknown field", lambda ex: f"?model={ex.spec}&z={_z(ex)}&exec=1", "field this app does not know"),
    ("field twice", lambda ex: f"?model={ex.spec}&z={_z(ex)}&z={_z(ex)}", "gives z 2 times"),
    ("bad map direction", lambda ex: f"?model={ex.spec}&tab=map&z={_z(ex)}&i=0", "i must be a whole number"),
    ("bad projection", lambda ex: f"?model={ex.spec}&tab=map&z={_z(ex)}&proj=umap", "proj must be one of"),
    ("bad pick", lambda ex: f"?model={ex.spec}&tab=map&z={_z(ex)}&pick={_z(ex)[:5]}",
     "pick is not a code written by this app"),
]


@pytest.mark.parametrize("what, make, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_link_opens_the_default_view_with_a_sentence(page, explorer_tiny, what, make,
                                                                 message):
    q = make(explorer_tiny)
    with pytest.raises(ValueError) as caught:
        links.read(q, page.models.specs, lambda spec: page.models.get(spec, 0))
    text = str(caught.value)
    assert message in text and "\n" not in text and len(text) < 300, text
    with pytest.warns(UserWarning, match="This link could not be opened: ") as warned:
        assert page.open_link({page.link: q, page.model: explorer_tiny.spec}) == NOTHING(page)
    assert message in str(warned[0].message)


def test_other_query_strings_are_left_alone(page, explorer_tiny):
    for q in ("", "?", "?__theme=dark", "?utm_source=x&ref=y"):
        assert links.read(q, page.models.specs, None) is None
        assert page.open_link({page.link: q, page.model: explorer_tiny.spec}) == NOTHING(page)


def test_links_are_short_for_the_shipped_model_size():
    # 32 float32 numbers: 171 characters of base64url
    assert len(links.code_text([0.1] * 32)) == 171
    assert len(urlencode({"z": links.code_text([0.1] * 32)})) == 173


# ---- code files and drawings -------------------------------------------------------------------
def test_a_code_file_round_trips_and_bad_ones_get_a_sentence(page, explorer_tiny, tmp_path):
    tab = page.tabs["explore"]
    origin = explorer_tiny.seed_latent(6).tolist()
    values = [1.0, -0.5] + [0.0] * (N_SLIDERS - 2)
    path = _file(tab.save_code("pca", origin, [], *values, None))
    z = explorer_tiny.latent(values, "pca", origin)
    opened = tab.load_code(path, None)
    assert opened[tab.origin] == z.tolist() and opened[tab.where] == "Starting point: a loaded code"
    assert np.array_equal(_arr(opened[tab.image]), _arr(explorer_tiny.decode(values, "pca", origin)))
    bad = tmp_path / "code.json"
    for text, message in [("[1, 2]", "not a code file of this app"),
                          (json.dumps({"format": CODE_FORMAT, "z": [1.0] * 3}), "z must have 8 numbers, got 3"),
                          (json.dumps({"format": CODE_FORMAT, "z": [1e9] * 8}), "z values must be finite and between")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_code_file(str(bad), explorer_tiny)
        with pytest.raises(gr.Error):
            tab.load_code(str(bad), None)


def _sketch(strokes: bool) -> dict:
    im = Image.new("RGB", (SKETCH_SIDE, SKETCH_SIDE), "white")
    if strokes:
        ImageDraw.Draw(im).rectangle((100, 60, 160, 200), outline="black", width=12)
    return {"background": im, "layers": [], "composite": im}


def test_a_drawing_is_cropped_to_its_strokes_and_reconstructed_like_an_upload(page, explorer_tiny):
    picture = drawing(_sketch(True))
    assert picture.size == (83, 163)  # strokes 61 x 141 px, with 8% of 141 on every side
    assert picture.getpixel((0, 0)) == (255, 255, 255) and picture.getpixel((11, 81)) == (0, 0, 0)
    tab = page.tabs["reconstruct"]
    out = tab.reconstruct_drawing(_sketch(True), model=None)
    want = explorer_tiny.reconstruct(picture, refine.STEPS)  # refined by default, as an upload
    assert np.array_equal(_arr(out[tab.recon]), _arr(want.reconstruction))
    assert _arr(out[tab.seen]).std() > 0
    for sketch, message in [(_sketch(False), "The canvas is empty"), (None, "Nothing is drawn yet")]:
        with pytest.raises(gr.Error, match=message):
            tab.reconstruct_drawing(sketch, model=None)
