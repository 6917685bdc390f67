"""The Map tab in a real headless Chromium: a click on the map decodes that place beside it,
and "Open in Explore" lands there with that code."""
import json

import numpy as np
import pytest
from PIL import Image

from browser_kit import CHROMIUM, CHROMIUM_ARGS, require_chromium
from conftest import serving
from ui.page import create_demo

sync_api = require_chromium()


@pytest.fixture(scope="module")
def page(explorer_tiny):
    demo = create_demo(explorer_tiny)
    with serving(demo, trailing_slash=False) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/", wait_until="load")
        page.get_by_role("tab", name="Map").click()
        page.locator("#map-image img").wait_for(timeout=30000)
        yield page
        browser.close()


def _pixels(page, selector: str) -> np.ndarray:
    src = page.locator(selector).first.get_attribute("src")
    from io import BytesIO
    return np.asarray(Image.open(BytesIO(page.request.get(src).body())))


def test_a_click_on_the_map_decodes_that_place_and_opens_in_explore(page, explorer_tiny):
    box = page.locator("#map-image img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.4)
    page.locator("#map-picked img").wait_for(timeout=30000)
    page.wait_for_function("() => (document.querySelector('#map-realism')?.innerText || '')"
                           ".includes('Real?')", timeout=30000)
    picked = _pixels(page, "#map-picked img")
    assert picked.shape[:2] == (336, 336) and picked.std() > 0
    page.locator("#map-open").click()
    page.wait_for_function("() => (document.querySelector('#origin-label')?.innerText || '')"
                           ".includes('a place picked on the map')", timeout=30000)
    page.wait_for_function("() => { const s = document.querySelector('#explore-image img'); "
                           "return s && s.complete; }", timeout=30000)
    explored = _pixels(page, "#explore-image img:not(.vaegan-live)")
    assert np.array_equal(explored, picked)  # Explore starts at exactly the picked code
    errors = page.locator(".toast-body.error")
    assert errors.count() == 0
