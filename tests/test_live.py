"""The live slider route (ui/live.py) over real HTTP on 127.0.0.1: exact pictures, and a
400 with a sentence naming the argument for every kind of bad query."""
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from ui.page import create_demo
from conftest import serving
from ui.live import MAX_NUMBERS, ROUTE, decode_png
from ui.models import Models


@pytest.fixture(scope="module")
def url(explorer_tiny):
    with serving(create_demo(Models(explorer_tiny)), trailing_slash=False) as u:
        yield u + ROUTE


def _png(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "no-store"
    return np.asarray(Image.open(io.BytesIO(r.content)))


def _q(z) -> str:
    return ",".join(repr(float(v)) for v in z)


def test_a_frame_is_the_exact_decode_at_native_size(url, explorer_tiny):
    origin = explorer_tiny.seed_latent(3).tolist()
    for basis, values in (("kl", [1.5, -0.5]), ("pca", [0.25]), ("class", [0, 0, 1])):
        got = _png(httpx.get(url, params={"values": _q(values), "basis": basis, "origin": _q(origin)}))
        want = np.asarray(explorer_tiny.decode(values, basis, origin, scale=1))
        assert got.shape == (28, 28) and np.array_equal(got, want), basis
    # the Gradio image shows the same pixels, upscaled
    big = np.asarray(explorer_tiny.decode([1.5, -0.5], "kl", origin))
    assert np.array_equal(big[:: explorer_tiny.scale, :: explorer_tiny.scale],
                          np.asarray(explorer_tiny.decode([1.5, -0.5], "kl", origin, scale=1)))


def test_defaults_and_scale(url, explorer_tiny):
    got = _png(httpx.get(url))  # no values, the default basis, the origin z = 0, default model
    assert np.array_equal(got, np.asarray(explorer_tiny.decode([], "kl", None, scale=1)))
    got = _png(httpx.get(url, params={"values": "1", "scale": "4"}))
    assert np.array_equal(got, np.asarray(explorer_tiny.decode([1.0], "kl", None, scale=4)))


@pytest.mark.parametrize("params,needle", [
    ({"values": "nan"}, "values[0] must be a number between -3 and 3"),
    ({"values": "0,inf"}, "values[1] must be a number between -3 and 3"),
    ({"values": "0,3.5"}, "values[1] must be a number between -3 and 3"),
    ({"values": "1,abc"}, "values must be comma-separated numbers"),
    ({"values": ",".join(["0"] * 13)}, "values may hold at most 12 numbers"),
    ({"basis": "nope"}, "basis must be one of"),
    ({"origin": "1,2"}, "origin must have 8 numbers, got 2"),
    ({"origin": ",".join(["1e9"] * 8)}, "origin values must be finite and between -100 and 100"),
    ({"origin": ",".join(["0"] * (MAX_NUMBERS + 1))}, f"origin may hold at most {MAX_NUMBERS} numbers"),
    ({"model": "org/unknown"}, "model must be one of"),
    ({"scale": "0"}, "scale must be a whole number between 1 and 16"),
    ({"scale": "x"}, "scale must be a whole number between 1 and 16"),
])
def test_bad_queries_get_a_400_naming_the_argument(url, params, needle):
    r = httpx.get(url, params=params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert needle.lower() in err.lower(), err
    assert err[0].isupper() and "Traceback" not in err


def test_decode_png_is_what_the_route_serves(explorer_tiny):
    png = decode_png(explorer_tiny, "0.5,0.5", "kl", "", 2)
    want = np.asarray(explorer_tiny.decode([0.5, 0.5], "kl", None, scale=2))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), want)
