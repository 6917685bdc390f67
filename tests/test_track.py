"""The track route (ui/live.py, Explorer.track): every position of one slider as one sprite of
exact frames, over real HTTP on 127.0.0.1; bad input gets a 400 sentence, a stale model
version a 409; the version follows the weights."""
import io

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import serving
from ui import live
from ui.models import Models
from ui.page import create_demo
from vaegan.explorer import MAX_TRACK_BYTES, SLIDER_POSITIONS, TRACK_COLUMNS, Explorer
from vaegan.hub import load_model


@pytest.fixture(scope="module")
def url(explorer_tiny):
    with serving(create_demo(Models(explorer_tiny)), trailing_slash=False) as u:
        yield u + live.TRACK_ROUTE


def _q(z) -> str:
    return ",".join(repr(float(v)) for v in z)


def _frames(sheet: np.ndarray, size: int) -> list[np.ndarray]:
    return [sheet[(i // TRACK_COLUMNS) * size:(i // TRACK_COLUMNS + 1) * size,
                  (i % TRACK_COLUMNS) * size:(i % TRACK_COLUMNS + 1) * size]
            for i in range(len(SLIDER_POSITIONS))]


@pytest.mark.parametrize("basis,slider,values", [
    ("kl", 1, [0.0, -0.5]), ("kl", 3, [1.25, 0.0, 0.0, -2.0]), ("pca", 2, []), ("class", 10, [0.5])])
def test_every_frame_is_the_exact_decode_of_its_position(url, explorer_tiny, basis, slider, values):
    origin = explorer_tiny.seed_latent(3).tolist()
    version = live.track_version(explorer_tiny)
    r = httpx.get(url, params={"slider": slider, "values": _q(values), "basis": basis,
                               "origin": _q(origin), "v": version})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == live.TRACK_CACHE  # versioned: the browser may keep it
    assert r.headers[live.TRACK_HEADER] == ("frames=121; columns=11; width=28; height=28; "
                                            "first=-3; step=0.05")
    sheet = np.asarray(Image.open(io.BytesIO(r.content)))
    assert sheet.shape == (11 * 28, 11 * 28)
    vals = values + [0.0] * (slider - len(values))
    for position, frame in zip(SLIDER_POSITIONS, _frames(sheet, 28)):
        vals[slider - 1] = position
        want = np.asarray(explorer_tiny.decode(vals, basis, origin, scale=1))
        assert np.array_equal(frame, want), (basis, slider, position)


def test_positions_are_the_sliders_steps_as_a_browser_gives_them():
    assert len(SLIDER_POSITIONS) == 121 and SLIDER_POSITIONS[0] == -3 and SLIDER_POSITIONS[-1] == 3
    assert SLIDER_POSITIONS[72] == 0.6 and SLIDER_POSITIONS[60] == 0.0  # not 0.6000000000000005


def test_without_a_version_the_answer_is_not_stored(url):
    r = httpx.get(url, params={"slider": "1"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("params,needle", [
    ({}, "slider must be a whole number between 1 and 8"),
    ({"slider": "0"}, "slider must be a whole number between 1 and 8"),
    ({"slider": "9"}, "slider must be a whole number between 1 and 8, got '9'"),
    ({"slider": "1.5"}, "slider must be a whole number between 1 and 8"),
    ({"slider": "1", "values": "nan"}, "values[0] must be a number between -3 and 3"),
    ({"slider": "1", "values": "0,3.5"}, "values[1] must be a number between -3 and 3"),
    ({"slider": "1", "values": "0,x"}, "values must be comma-separated numbers"),
    ({"slider": "1", "values": ",".join(["0"] * 13)}, "values may hold at most 12 numbers"),
    ({"slider": "1", "basis": "nope"}, "basis must be one of"),
    ({"slider": "1", "origin": "1,2"}, "origin must have 8 numbers, got 2"),
    ({"slider": "1", "origin": ",".join(["nan"] * 8)}, "origin values must be finite"),
    ({"slider": "1", "model": "org/unknown"}, "model must be one of"),
])
def test_bad_queries_get_a_400_naming_the_argument(url, params, needle):
    r = httpx.get(url, params=params)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert needle.lower() in err.lower(), err
    assert err[0].isupper() and "Traceback" not in err


def test_a_stale_version_gets_a_409_that_says_reload(url):
    r = httpx.get(url, params={"slider": "1", "v": "0123456789abcdef"})
    assert r.status_code == 409
    assert "reload the page" in r.json()["error"]


def test_the_version_is_the_weights_and_bases_not_the_object(tiny_folder, explorer_tiny):
    same = Explorer(load_model(str(tiny_folder)))
    other = Explorer(load_model(str(tiny_folder)))
    try:
        assert live.track_version(same) == live.track_version(explorer_tiny)
        assert len(live.track_version(same)) == 16
        with torch.no_grad():
            next(other.model.decoder.parameters()).add_(1e-3)  # new weights, same spec
        assert live.track_version(other) != live.track_version(same)
    finally:
        same.close()
        other.close()


def test_a_model_too_large_for_a_track_has_none(explorer, monkeypatch):
    assert explorer.track_bytes() == 121 * 28 * 28 < MAX_TRACK_BYTES
    monkeypatch.setattr(explorer, "track_bytes", lambda: MAX_TRACK_BYTES + 1)
    assert live.track_version(explorer) == ""  # the page asks for no track: frames only
    with pytest.raises(ValueError, match="too large for a track"):
        explorer.track([], 1)


def test_track_png_is_what_the_route_serves(explorer_tiny):
    png = live.track_png(explorer_tiny, "2", "0.5", "kl", "")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))),
                          np.asarray(explorer_tiny.track([0.5], 2, "kl", None)))


def test_the_page_script_asks_for_the_track_route():
    assert f'const TRACK_ROUTE = "{live.TRACK_ROUTE}";' in live.SCRIPT.read_text()
    assert f'"{live.TRACK_HEADER}"' in live.SCRIPT.read_text()
