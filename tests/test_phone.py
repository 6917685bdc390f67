"""The page on a phone (issue 17): Chromium's mobile emulation at 390 x 844 (touch, 3 device
pixels per CSS pixel), the tiny model and a second entry in the Model list so that the whole
header shows. Measured with element boxes, not pixels:

- the header (title, intro, status line, Model list) ends above the tab bar, whose top is
  within the first third of the screen;
- no visible text block (the header's and the Explore tab's paragraphs, the status line) is
  narrower than 200 px, and nothing is wider than the screen;
- "visible together": once the tab bar is scrolled to the top of the screen (the header
  scrolled away), the decoded picture and the range inputs of sliders 1 and 2 lie whole
  within that one screen;
- a touch drag on slider 1 (CDP touch events) draws frames from the live overlay while the
  finger moves, and after release the Gradio picture is the server's exact decode.
"""
import io

import numpy as np
import pytest
from PIL import Image

from browser_kit import CHROMIUM, CHROMIUM_ARGS, require_chromium
from conftest import serving
from ui.models import Models
from ui.page import create_demo
from ui.tabs import TABS
from vaegan.hub import ModelLoadError

sync_api = require_chromium()

W, H = 390, 844
MIN_TEXT_WIDTH = 200
OTHER = "someone/fashion-mnist-vae"  # listed only, never loaded: the Model list shows
MEASURED: dict = {}  # the figures, printed at the end (pytest -s) for the record


def _never(spec):
    raise ModelLoadError(f"{spec}: not loaded in this test")


@pytest.fixture(scope="module")
def page(explorer_tiny):
    demo = create_demo(Models(explorer_tiny, [OTHER], loader=_never))
    with serving(demo, trailing_slash=False) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": W, "height": H}, device_scale_factor=3,
                                      is_mobile=True, has_touch=True)
        page = context.new_page()
        page.goto(url + "/", wait_until="load")
        page.get_by_role("tab", name="Explore").wait_for(timeout=30000)
        page.locator("#model-picker").wait_for(timeout=30000)
        yield page
        browser.close()
    print("\nmeasured at 390 x 844:", MEASURED)


BOX = "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"


def _box(page, selector: str) -> tuple[float, float, float, float]:
    """(left, top, width, height) in CSS pixels, relative to the viewport."""
    return tuple(page.locator(selector).first.evaluate(BOX))


def _open_explore(page) -> None:
    page.get_by_role("tab", name="Explore").tap()
    page.locator("#slider-2 input[type=range]").wait_for(timeout=15000)
    page.wait_for_function("() => { const i = document.querySelector('#explore-image img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=15000)


def test_the_header_takes_at_most_a_third_of_the_first_screen(page, explorer_tiny):
    page.evaluate("window.scrollTo(0, 0)")
    tabs = _box(page, "[role=tablist]")
    assert tabs[1] <= H / 3, f"the tab bar starts at {tabs[1]:.0f} px, below {H / 3:.0f}"
    for part in ("#header h1", "#header p", "#status", "#model-picker"):
        left, top, width, height = _box(page, part)
        assert width > 0 and height > 0, part
        assert 0 <= top and top + height <= tabs[1], (part, top, height)
        assert left >= 0 and left + width <= W, (part, left, width)
    assert page.evaluate("document.documentElement.scrollWidth") <= W  # no sideways scrolling
    MEASURED["tab bar top (header height)"] = round(tabs[1])
    MEASURED["status line"] = [round(v) for v in _box(page, "#status")]
    # the Model list still opens on a tap
    page.locator("#model-picker input").tap()
    page.get_by_role("option", name=OTHER).wait_for(timeout=15000)
    page.keyboard.press("Escape")
    page.get_by_role("option", name=OTHER).wait_for(state="hidden", timeout=15000)
    assert page.locator("#model-picker input").input_value() == explorer_tiny.spec


def test_no_text_column_is_narrower_than_200px(page):
    _open_explore(page)
    widths = page.evaluate("""() => {
        const out = [];
        for (const e of document.querySelectorAll(
                '#header p, #header h1, #status, #status p, #tab-explore p, #tab-explore li')) {
            const r = e.getBoundingClientRect();
            if (r.width > 0 && r.height > 0 && e.innerText.trim())
                out.push([e.innerText.trim().slice(0, 40), r.width, r.right]);
        }
        return out; }""")
    assert len(widths) >= 6, widths  # title, intro, status, Explore's paragraphs
    narrow = [w for w in widths if w[1] < MIN_TEXT_WIDTH]
    assert not narrow, narrow
    assert all(right <= W for _, _, right in widths), widths
    MEASURED["narrowest text column"] = round(min(w for _, w, _ in widths))


def test_the_picture_and_the_first_sliders_fit_in_one_screen_below_the_tab_bar(page):
    _open_explore(page)
    # scroll the header away: the tab bar at the top of the screen
    page.evaluate("() => window.scrollTo(0, document.querySelector('[role=tablist]')"
                  ".getBoundingClientRect().top + window.scrollY)")
    page.wait_for_timeout(200)
    assert abs(_box(page, "[role=tablist]")[1]) <= 1
    picture = _box(page, "#explore-image")
    img = _box(page, "#explore-image img")
    ranges = [_box(page, f"#slider-{i} input[type=range]") for i in (1, 2)]
    for name, (left, top, width, height) in [("picture", picture), ("slider-1", ranges[0]),
                                              ("slider-2", ranges[1])]:
        assert 0 <= top and top + height <= H, (name, top, height)
        assert 0 <= left and left + width <= W, (name, left, width)
    assert min(img[2], img[3]) >= 200, img  # still a picture, not a thumbnail
    assert picture[1] + picture[3] <= ranges[0][1]  # the sliders come after the picture
    MEASURED.update({"picture box": [round(v) for v in picture],
                     "picture drawn": [round(v) for v in img],
                     "slider-1 range": [round(v) for v in ranges[0]],
                     "slider-2 range": [round(v) for v in ranges[1]]})


OVERLAY_HIDDEN = ("() => { const o = document.querySelector('#explore-image .vaegan-live'); "
                  "return !o || getComputedStyle(o).display === 'none'; }")


def _touch(cdp, kind: str, x: float | None = None, y: float | None = None) -> None:
    points = [] if x is None else [{"x": x, "y": y, "radiusX": 4, "radiusY": 4, "id": 0}]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def _fetch(page, src: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))


def test_a_touch_drag_on_a_slider_draws_the_picture_live(page, explorer_tiny):
    _open_explore(page)
    page.locator("#slider-1 input[type=range]").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    before = page.locator("#explore-image img").first.get_attribute("src")
    left, top, width, height = _box(page, "#slider-1 input[type=range]")
    x, y = left + width / 2, top + height / 2  # the thumb, at 0 in the middle
    cdp = page.context.new_cdp_session(page)
    shown = lambda: page.evaluate("window.vaeganLive.shown.length")  # noqa: E731
    start, tracks = shown(), page.evaluate("window.vaeganLive.tracks")
    scrolled = page.evaluate("scrollY")
    _touch(cdp, "touchStart", x, y)
    moves = 30
    for k in range(1, moves + 1):
        _touch(cdp, "touchMove", x + k * width * 0.4 / moves, y)
        page.wait_for_timeout(30)
    page.wait_for_function(f"() => window.vaeganLive.shown.length > {start}", timeout=15000)
    during = shown()  # frames drawn while the finger is still down
    assert page.evaluate("scrollY") == scrolled  # the finger moved the slider, not the page
    _touch(cdp, "touchEnd")
    page.wait_for_function(
        "old => { const i = document.querySelector('#explore-image img:not(.vaegan-live)');"
        " return i && i.src && i.src !== old; }", arg=before, timeout=15000)
    page.wait_for_function(OVERLAY_HIDDEN, timeout=15000)  # Gradio's picture is back
    page.wait_for_timeout(1000)  # always_last: the final decode
    live = page.evaluate("window.vaeganLive")
    value = float(page.locator("#slider-1 input[type=number]").input_value())
    assert during - start >= 2 and live["errors"] == 0, (during, start, live["errors"])
    assert value > 0.5, value  # the finger moved it right
    assert live["tracks"] == tracks + 1  # the touch grabbed the slider: one track for the drag
    assert float(live["shown"][-1]["values"][0]) == value  # the last frame drawn was the final one
    values = [value] + [0.0] * 7
    origin = explorer_tiny.seed_latent(0).tolist()
    src = page.locator("#explore-image img:not(.vaegan-live)").first.get_attribute("src")
    assert np.array_equal(_fetch(page, src), np.asarray(explorer_tiny.decode(values, "kl", origin)))
    MEASURED["touch drag"] = {"frames while moving": during - start,
                              "frames in all": len(live["shown"]) - start, "final value": value}


def test_no_tab_is_wider_than_the_screen(page):
    """Every tab fits the screen's width (a wider one makes a phone zoom the whole page out)."""
    for title in [cls.title for cls in TABS]:
        tab = [t for t in page.get_by_role("tab", name=title, exact=True).all() if _on_screen(t)]
        if not tab:  # behind the tab bar's "More tabs" button
            page.get_by_role("button", name="More tabs").tap()
            tab = [page.get_by_role("button", name=title, exact=True).first]
        tab[0].tap()
        page.wait_for_timeout(800)
        assert page.evaluate("document.documentElement.scrollWidth") <= W, title
        assert page.evaluate("window.innerWidth") == W, title  # not zoomed out


def _on_screen(locator) -> bool:
    """Gradio keeps 1-px copies of the tabs, and clips the tab bar at the screen's edge."""
    box = locator.bounding_box()
    return bool(box) and box["height"] > 2 and box["x"] + box["width"] <= W
