"""Issue 21 in a real headless Chromium: a page that switches from the grey model to a colour
one (a tiny 32x32 RGB model with emoji assets) and back. Every tab's picture is the colour
model's, Skin tone is offered and its sliders work (frames from the live route in colour), and
the page goes back to grey without a stale label or basis. Pictures are compared pixel for pixel
with what the Explorer computes."""
import numpy as np
import pytest

from browser_kit import browser, require_chromium  # noqa: F401 (fixture)
from test_yours_browser import WAIT_MS, _assert_picture, _drag, _error_badges, _no_trace, _open, _settle, _toasts
from ui.live import ROUTE, TRACK_ROUTE

sync_api = require_chromium()


@pytest.fixture(scope="module")
def rgb(tiny_rgb_folder):
    from vaegan.explorer import load_explorer
    ex = load_explorer(str(tiny_rgb_folder))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def two_models(explorer_tiny, rgb):
    """(demo, url) of an app whose Model list holds the grey tiny model (default) and the RGB one."""
    from conftest import serving
    from ui.models import Models
    from ui.page import create_demo
    demo = create_demo(Models(explorer_tiny, [rgb.spec], loader=lambda spec: rgb))
    with serving(demo, trailing_slash=False) as url:
        yield demo, url


@pytest.fixture
def page(browser, two_models):
    page = _open(browser, two_models)
    yield page
    page.context.close()


def _pick_model(page, spec: str) -> None:
    page.locator("#model-picker input").click()
    page.get_by_role("option", name=spec, exact=True).click()


def _basis_options(page) -> list[str]:
    return [t.strip() for t in page.locator("#basis label").all_inner_texts()]


def test_switching_to_the_colour_model_and_back(page, rgb, explorer_tiny):
    _pick_model(page, rgb.spec)
    page.locator("#status", has_text="32x32x3 images").wait_for(timeout=WAIT_MS)
    _settle(page)
    origin = rgb.seed_latent(0).tolist()
    _assert_picture(page, "sample-grid", rgb.sample(0, 1.0, 16).image, "Sample on the colour model")
    page.get_by_role("tab", name="Explore").click()
    _assert_picture(page, "explore-image", rgb.decode([], "kl", origin), "Explore's start")
    assert "Skin tone" in _basis_options(page)

    # the skin-tone basis: its sliders, a drag drawn from the live route, then the exact picture
    page.locator("#basis label", has_text="Skin tone").click()
    page.locator("#slider-1", has_text="darker skin").wait_for(timeout=WAIT_MS)
    _settle(page)
    page.requests.clear()
    _drag(page, 1, moves=12)
    _settle(page)
    value = float(page.locator("#slider-1 input[type=number]").input_value())
    assert value > 0
    _assert_picture(page, "explore-image", rgb.decode([value], "attribute", origin), "after the drag")
    live = [u for u in page.requests if ROUTE in u or TRACK_ROUTE in u]
    assert live and all("basis=attribute" in u for u in live), live
    frame = np.asarray(_fetch_any(page, live[-1]))
    assert frame.ndim == 3 and frame.shape[2] == 3  # colour frames (a sprite or one frame)

    page.get_by_role("tab", name="Reconstruct").click()
    page.get_by_text("What the model sees (32x32 colour input)").wait_for(timeout=WAIT_MS)
    assert not _toasts(page, "error") and not _error_badges(page)

    # back to the grey model: its pictures, its bases, its label
    _pick_model(page, explorer_tiny.spec)
    page.locator("#status", has_text="28x28x1 images").wait_for(timeout=WAIT_MS)
    _settle(page)
    page.get_by_text("What the model sees (28x28 grey input)").wait_for(timeout=WAIT_MS)
    page.get_by_role("tab", name="Explore").click()
    assert "Skin tone" not in _basis_options(page)
    _assert_picture(page, "explore-image",
                    explorer_tiny.decode([], "kl", explorer_tiny.seed_latent(0).tolist()), "grey again")
    assert not _toasts(page, "error") and not _error_badges(page)
    _no_trace(page)


def _fetch_any(page, url: str):
    import io

    from PIL import Image
    return Image.open(io.BytesIO(page.request.get(url).body()))
