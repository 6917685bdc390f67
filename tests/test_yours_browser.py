"""Issue 19 ("make it yours") in a real headless Chromium, used as a visitor would: links that
restore a view (Explore and Map), typed slider values, directions of your own, and drawing in
Reconstruct. Pictures are compared pixel for pixel with what the Explorer computes.

Every wait is on a condition (a picture equal to the expected one, a text, the page being
quiet); the timeouts are generous because the test machine is a shared, busy 2-core CPU."""
import io
import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_kit import browser, require_chromium, server  # noqa: F401 (fixtures)
from ui.live import ROUTE, TRACK_ROUTE

sync_api = require_chromium()

RUNS = Path(__file__).resolve().parent.parent / "runs"
WAIT_MS = 60_000  # for one server round trip on a starved CPU
LINK_WARNING = "This link could not be opened:"


def _open(browser, server, path: str = "/"):
    """A fresh page (its own context, clipboard allowed) that records every URL it asks for,
    every event it sends to the queue (by handler name) and the requests still in flight."""
    demo, url = server
    context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    context.demo = demo
    page.requests, page.joins, page.inflight = [], [], {}
    page.last_activity = time.monotonic()

    def on_request(request):
        page.requests.append(request.url)
        if "/heartbeat/" in request.url:  # (Gradio's: open as long as the page is)
            return
        page.inflight[id(request)] = request.url
        page.last_activity = time.monotonic()
        if "/queue/join" in request.url and request.post_data:
            page.joins.append(demo.fns[json.loads(request.post_data)["fn_index"]].name)

    def on_done(request):
        page.inflight.pop(id(request), None)
        page.last_activity = time.monotonic()
    page.on("request", on_request)
    page.on("requestfinished", on_done)
    page.on("requestfailed", on_done)
    page.goto(url + path, wait_until="load")
    page.get_by_role("tab", name="Explore").wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => window.vaeganLive", timeout=WAIT_MS)
    _settle(page)  # (the page's own load events, a link's included)
    return page


@pytest.fixture
def page(browser, server):
    page = _open(browser, server)
    yield page
    page.context.close()


@pytest.fixture
def opened(browser, server):
    """Opens more pages (links) in their own contexts; closes them at the end."""
    pages = []

    def open_path(path: str):
        pages.append(_open(browser, server, path))
        return pages[-1]
    yield open_path
    for p in pages:
        p.context.close()


# ---- helpers -------------------------------------------------------------------------------
def _settle(page, quiet_ms: int = 2000, timeout_ms: int = WAIT_MS) -> None:
    """Wait until nothing has been in flight for quiet_ms (chained events included)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        page.wait_for_timeout(200)
        if not page.inflight and time.monotonic() - page.last_activity > quiet_ms / 1000:
            return
    raise AssertionError(f"the page never went quiet; still in flight: {list(page.inflight.values())}")


def _src(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} img:not(.vaegan-live)").first.get_attribute("src") or ""


def _fetch(page, src: str) -> np.ndarray:
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)))


def _wait_picture(page, elem_id: str, expected, timeout_ms: int = WAIT_MS) -> np.ndarray | None:
    """Poll #elem_id's picture until it is pixel-equal to `expected`; the last one seen
    (or None if it never had one) when the time is up."""
    expected = np.asarray(expected)
    deadline = time.monotonic() + timeout_ms / 1000
    seen, last = None, None
    while True:
        src = _src(page, elem_id)
        if src and src != last:
            last, seen = src, _fetch(page, src)
            if seen.shape == expected.shape and np.array_equal(seen, expected):
                return seen
        if time.monotonic() > deadline:
            return seen
        page.wait_for_timeout(250)


def _assert_picture(page, elem_id: str, expected, what: str, timeout_ms: int = WAIT_MS):
    seen = _wait_picture(page, elem_id, expected, timeout_ms)
    expected = np.asarray(expected)
    assert seen is not None, f"{what}: #{elem_id} shows no picture"
    assert seen.shape == expected.shape and np.array_equal(seen, expected), (
        f"{what}: #{elem_id} is not pixel-equal to the expected picture "
        f"({int((seen != expected).sum()) if seen.shape == expected.shape else seen.shape} differ)")
    return seen


def _slider_values(page, n: int = 8) -> list[float]:
    return [float(page.locator(f"#slider-{i + 1} input[type=number]").input_value() or 0)
            for i in range(n)]


def _drag(page, slider: int, moves: int, pause_ms: int = 20, to: float = 0.3) -> None:
    """Press on the middle of a slider's track, move right by `to` of its width, release."""
    track = page.locator(f"#slider-{slider} input[type=range]")
    track.scroll_into_view_if_needed()
    box = track.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, moves + 1):
        page.mouse.move(x + k * box["width"] * to / moves, y)
        page.wait_for_timeout(pause_ms)
    page.mouse.up()


def _share_url(page, elem_id: str) -> str:
    page.wait_for_function(
        "id => (document.querySelector(`#${id} textarea`)?.value || '').startsWith('http')",
        arg=elem_id, timeout=WAIT_MS)
    return page.locator(f"#{elem_id} textarea").input_value()


def _selected_tab(page) -> str:
    return page.locator("[role=tab][aria-selected=true]").first.inner_text().strip()


def _toasts(page, kind: str | None = None) -> list[str]:
    """The texts of Gradio 6's toasts (div[data-testid=toast-body].<kind>: the type is a class
    of the toast; its sentence is in [data-testid=toast-text])."""
    sel = "[data-testid=toast-body]" + (f".{kind}" if kind else "")
    return [t.inner_text() for t in page.locator(sel).all()]


def _error_toast(page, timeout_ms: int = 10_000) -> list[str]:
    """The error toasts that show within timeout_ms (they go away by themselves: read them
    while they are there); [] when none comes."""
    try:
        page.locator("[data-testid=toast-body].error").first.wait_for(timeout=timeout_ms)
    except sync_api.TimeoutError:
        return []
    return _toasts(page, "error")


def _error_badges(page) -> list[str]:
    """The elem_ids of components whose status tracker shows Gradio's red "Error" badge
    (what an event that fails on the server leaves on every one of its visible outputs)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid=status-tracker]')]
        .filter(t => t.offsetParent !== null && /\\bError\\b/.test(t.innerText))
        .map(t => t.parentElement.id || t.parentElement.className)""")


def _no_trace(page) -> None:
    html = page.content()
    assert "Traceback" not in html and 'File "' not in html


def _start_at_seed(page, seed: int) -> None:
    explore = page.locator("#tab-explore")
    box = explore.get_by_label("Seed")
    box.scroll_into_view_if_needed()
    box.fill(str(seed))
    page.wait_for_function("([el, v]) => el.value === v", arg=[box.element_handle(), str(seed)],
                           timeout=WAIT_MS)
    box.blur()
    explore.get_by_role("button", name="Start at this seed").click()
    try:
        page.locator("#origin-label", has_text=f"seed {seed}").wait_for(timeout=WAIT_MS)
    except sync_api.TimeoutError:
        raise AssertionError(f"'Start at this seed' ({seed}) did not start there: the label says "
                             f"{page.locator('#origin-label').inner_text()!r}, the box "
                             f"{box.input_value()!r}; events: {page.joins}") from None


def _type_value(page, slider: int, text: str, click: bool = True) -> None:
    """Click into a slider's number box (or focus it from the keyboard), select what it holds
    and type `text` key by key."""
    box = page.locator(f"#slider-{slider} input[type=number]")
    box.scroll_into_view_if_needed()
    if click:
        box.click()
    else:
        box.focus()
    box.press("Control+a")
    box.press_sequentially(text, delay=60)


def _overlay_pixels(page) -> np.ndarray | None:
    """The live overlay's frame (native size), if it is shown."""
    got = page.evaluate("""() => {
        const c = document.querySelector('#explore-image canvas.vaegan-live');
        if (!c || getComputedStyle(c).display === 'none') return null;
        return [c.width, c.height,
                Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""")
    if got is None:
        return None
    w, h, data = got
    return np.asarray(data, dtype=np.uint8).reshape(h, w, 4)[..., 0]


def _origin(explorer, seed: int) -> list[float]:
    return explorer.seed_latent(seed).tolist()


# ---- 1. links that restore a view ------------------------------------------------------------
def test_a_copied_explore_link_restores_the_view(page, opened, explorer_tiny):
    page.get_by_role("tab", name="Explore").click()
    _start_at_seed(page, 5)
    page.locator("#basis").get_by_label("Principal directions").check()
    _settle(page)
    values = [0.0, 1.23, -0.5]
    for k, v in enumerate(values[1:], start=2):
        _type_value(page, k, str(v))
        page.locator("#origin-label").click()  # leave the box: the value is committed
    origin = _origin(explorer_tiny, 5)
    shown = _assert_picture(page, "explore-image", explorer_tiny.decode(values, "pca", origin),
                            "before the link is made")
    _settle(page)
    page.locator("#copy-link").click()
    url = _share_url(page, "share-url")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["tab"] == ["explore"] and query["basis"] == ["pca"], url
    assert [float(s) for s in query["s"][0].split(",")] == values, url
    assert page.evaluate("navigator.clipboard.readText()") == url  # copied, as the label says

    other = opened(url[url.index("/", len("http://")):])  # the same URL, in a new visitor's page
    other.locator("#origin-label", has_text="the one in the link").wait_for(timeout=WAIT_MS)
    assert _selected_tab(other) == "Explore"
    _assert_picture(other, "explore-image", shown, "the link's page")
    assert other.locator("#basis input:checked").get_attribute("value") == "pca"
    assert _slider_values(other) == values + [0.0] * 5
    _settle(other)
    assert not _toasts(other) and not _error_badges(other)


def _pick_on_the_map_and_copy_its_link(page):
    """Click a place of the map; returns (the link, the picked picture, the map before and
    after the click)."""
    page.get_by_role("tab", name="Map").click()
    page.locator("#map-image img").wait_for(timeout=WAIT_MS)
    _settle(page)
    unmarked = _fetch(page, _src(page, "map-image"))
    box = page.locator("#map-image img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.4)
    page.wait_for_function("() => (document.querySelector('#map-realism')?.innerText || '')"
                           ".includes('Real?')", timeout=WAIT_MS)
    _settle(page)
    picked, marked = (_fetch(page, _src(page, e)) for e in ("map-picked", "map-image"))
    assert picked.shape[:2] == (336, 336) and picked.std() > 0
    assert not np.array_equal(marked, unmarked)  # the click marks the place on the map
    page.locator("#map-link").click()
    url = _share_url(page, "map-share-url")
    assert page.evaluate("navigator.clipboard.readText()") == url
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["tab"] == ["map"] and query["pick"], url
    return url[url.index("/", len("http://")):], picked, unmarked, marked


def test_a_copied_map_link_restores_the_picked_picture(page, opened):
    path, picked, _, _ = _pick_on_the_map_and_copy_its_link(page)
    other = opened(path)
    other.locator("#map-picked img").wait_for(timeout=WAIT_MS)
    assert _selected_tab(other) == "Map"
    _assert_picture(other, "map-picked", picked, "the map link's page")
    _settle(other)
    assert not _toasts(other) and not _error_badges(other)
    assert other.locator("#map-realism").inner_text() == page.locator("#map-realism").inner_text()


def test_a_map_link_shows_its_picked_place_marked_on_the_map(page, opened):
    """The picked picture comes back; so should the mark of its place on the map."""
    path, _, unmarked, marked = _pick_on_the_map_and_copy_its_link(page)
    other = opened(path)
    other.locator("#map-picked img").wait_for(timeout=WAIT_MS)
    _settle(other)  # (every event the link's page sends, the Map tab's own included)
    shown = _fetch(other, _src(other, "map-image"))
    assert not np.array_equal(shown, unmarked), (
        f"the map on the link's page has no mark of the picked place; events: {other.joins}")
    mark = (marked != unmarked).any(-1).sum()
    assert (shown != marked).any(-1).sum() <= 0.1 * mark


@pytest.mark.parametrize("kind", ["unknown model", "truncated z", "slider out of range"])
def test_a_malformed_link_opens_the_default_page_with_a_warning(opened,
                                                                explorer_tiny, kind):
    from ui.links import code_text
    z = code_text(_origin(explorer_tiny, 0))
    spec = urllib.parse.quote(explorer_tiny.spec, safe="")
    path = "/" + {"unknown model": "?model=weights/nope&z=AAAA",
                  "truncated z": f"?model={spec}&tab=explore&basis=kl&z={z[:-7]}&s=1",  # cut short
                  "slider out of range": f"?model={spec}&tab=explore&basis=kl&z={z}&s=9"}[kind]
    page = opened(path)
    page.locator("[data-testid=toast-body].warning", has_text=LINK_WARNING).wait_for(timeout=WAIT_MS)
    _settle(page)
    text = _toasts(page, "warning")[0]
    assert "Here is the usual first view instead." in text, text
    _no_trace(page)
    assert not _toasts(page, "error"), _toasts(page)
    assert _selected_tab(page) == "Sample"  # the default page
    # ... and it is the default page as it normally looks: nothing marked as failed
    assert not _error_badges(page), (
        f"the page shows Gradio's red 'Error' on {_error_badges(page)} after the warning "
        f"(events: {page.joins})")
    assert page.locator("#sample-grid img").first.is_visible()


def test_someone_elses_query_string_opens_the_page_as_usual(opened):
    """Gradio's own ?__theme=dark (or a Space's parameters) is not a link of this app: the page
    opens as usual, without a warning and without errors."""
    page = opened("/?__theme=dark")
    _settle(page)
    assert not _toasts(page)
    assert not _error_badges(page), (
        f"?__theme=dark leaves Gradio's red 'Error' on {_error_badges(page)} (events: {page.joins})")
    assert page.locator("#sample-grid img").first.is_visible()


# ---- 2. typed values ---------------------------------------------------------------------------
def _typed_counts(page, joins_before: int, requests_before: int) -> dict:
    asked = page.requests[requests_before:]
    return {"frame route": sum(ROUTE + "?" in u for u in asked),
            "track route": sum(TRACK_ROUTE + "?" in u for u in asked),
            "queue joins": page.joins[joins_before:]}


def test_a_typed_value_then_enter_shows_its_exact_picture(page, explorer_tiny):
    """Type 1.23 into slider 1's number box and press Enter: the picture (Gradio's, the one
    Download and the realism line go by) must become the exact decode of 1.23, once."""
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    box = page.locator("#slider-1 input[type=number]")
    box.click()  # (a click on the box is a pointerup: Gradio's `release`, at the old value)
    _settle(page)
    clicked = list(page.joins)
    joins, requests = len(page.joins), len(page.requests)
    box.press("Control+a")
    box.press_sequentially("1.23", delay=60)
    box.press("Enter")
    origin = _origin(explorer_tiny, 0)
    expected = explorer_tiny.decode([1.23], "kl", origin)
    seen = _wait_picture(page, "explore-image", expected, timeout_ms=20_000)
    _settle(page)
    counts = _typed_counts(page, joins, requests)
    overlay = _overlay_pixels(page)
    overlay_exact = overlay is not None and np.array_equal(
        overlay, np.asarray(explorer_tiny.decode([1.23], "kl", origin, scale=1)))
    print(f"\ntyped 1.23 + Enter: {counts}; clicking into the box sent {clicked}; "
          f"live overlay shows the exact frame: {overlay_exact}")
    assert box.input_value() == "1.23"
    exact = seen is not None and np.array_equal(seen, expected)
    assert exact, (
        f"Enter does not commit a typed value: no `decode` was sent ({counts}); Gradio's picture "
        f"is still the old one (the live overlay shows the exact frame: {overlay_exact}), so the "
        "realism line, the mini-map and Download are stale")
    assert counts["queue joins"].count("decode") == 1, counts


def test_a_typed_value_is_decoded_once_when_the_box_is_left(page, explorer_tiny):
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    box = page.locator("#slider-1 input[type=number]")
    box.click()
    _settle(page)
    clicked = list(page.joins)
    joins, requests = len(page.joins), len(page.requests)
    box.press("Control+a")
    box.press_sequentially("1.23", delay=60)
    page.locator("#origin-label").click()  # leave the box
    origin = _origin(explorer_tiny, 0)
    _assert_picture(page, "explore-image", explorer_tiny.decode([1.23], "kl", origin),
                    "after typing 1.23 and leaving the box")
    _settle(page)
    counts = _typed_counts(page, joins, requests)
    print(f"\ntyped 1.23 + blur: {counts}; clicking into the box sent {clicked}")
    assert _slider_values(page) == [1.23] + [0.0] * 7
    assert counts["queue joins"].count("decode") == 1, counts
    assert counts["track route"] == 0, counts  # a typed value is off the track's positions
    assert 1 <= counts["frame route"] <= len("1.23"), counts  # at most one per keystroke
    assert page.evaluate("window.vaeganLive.errors") == 0
    assert not _toasts(page) and not _error_badges(page)


def test_a_typed_value_beyond_the_range_is_clamped_and_its_picture_shown(page, explorer_tiny):
    """Typing 5 (the sliders go from -3 to 3): the box shows 3, so the picture must be the
    decode of 3, without an error. (The box is focused from the keyboard here, so that no
    event of the click into it is still on its way: see the next test for that.)"""
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    box = page.locator("#slider-1 input[type=number]")
    box.focus()
    box.press("Control+a")
    box.press_sequentially("5", delay=60)
    page.locator("#origin-label").click()
    errors = _error_toast(page)
    origin = _origin(explorer_tiny, 0)
    _assert_picture(page, "explore-image", explorer_tiny.decode([3.0], "kl", origin),
                    "after typing 5 and leaving the box")
    _settle(page)
    assert box.input_value() == "3"
    assert not errors and not _toasts(page, "error"), errors
    assert not _error_badges(page), _error_badges(page)


def test_an_emptied_box_left_shows_the_picture_of_what_the_box_then_says(page, explorer_tiny):
    """Select what a number box holds, delete it and click elsewhere: Gradio puts 0 back in the
    box, so the picture must be the one at 0, without an error."""
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    origin = _origin(explorer_tiny, 0)
    _type_value(page, 1, "1.5", click=False)
    page.locator("#origin-label").click()
    _assert_picture(page, "explore-image", explorer_tiny.decode([1.5], "kl", origin),
                    "after typing 1.5")
    _settle(page)
    box = page.locator("#slider-1 input[type=number]")
    box.focus()
    box.press("Control+a")
    box.press("Backspace")
    page.locator("#origin-label").click()
    errors = _error_toast(page)
    _settle(page)
    shown = box.input_value()
    seen = _wait_picture(page, "explore-image",
                         explorer_tiny.decode([float(shown or 0)], "kl", origin), timeout_ms=15_000)
    consistent = np.array_equal(seen, np.asarray(
        explorer_tiny.decode([float(shown or 0)], "kl", origin)))
    still = np.array_equal(seen, np.asarray(explorer_tiny.decode([1.5], "kl", origin)))
    assert not errors and consistent, (
        f"emptied and left: the box says {shown!r}, the picture is "
        f"{'still the one at 1.5' if still else 'neither'}; error toasts: {errors}; "
        f"events: {page.joins}")


@pytest.mark.parametrize("typed, committed", [("5", 3.0), ("-", 0.0)])
def test_typing_while_an_earlier_picture_is_on_its_way_raises_no_error(page, explorer_tiny,
                                                                       typed, committed):
    """The click into a number box is a `release` (a decode at the old value); its realism line
    (where_now) is asked for when that picture arrives, with every slider as it is then. On a
    busy server the visitor is typing by then: a value beyond the range, or a lone "-", must not
    make that request fail. Here the click's decode is held until `typed` is typed; leaving the
    box then commits `committed` (Gradio puts an empty box back at 0)."""
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    held, holding = [], [True]

    def hold_the_decode(route):
        body = json.loads(route.request.post_data or "{}")
        name = page.context.demo.fns[body["fn_index"]].name if "fn_index" in body else ""
        if holding[0] and name == "decode":
            held.append(route)
        else:
            route.continue_()
    page.route("**/gradio_api/queue/join*", hold_the_decode)
    box = page.locator("#slider-1 input[type=number]")
    box.click()  # Gradio's release: a decode at 0, held
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held, f"the click into the box sent no decode ({page.joins})"
    box.press("Control+a")
    box.press_sequentially(typed, delay=60)
    holding[0] = False
    held[0].continue_()  # the picture at 0 arrives while the box holds `typed`; its realism follows
    deadline = time.monotonic() + WAIT_MS / 1000
    while "where_now" not in page.joins and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    errors = _error_toast(page, timeout_ms=5_000)
    page.locator("#origin-label").click()  # then the visitor leaves the box
    errors = list(dict.fromkeys(errors + _error_toast(page, timeout_ms=5_000)))
    origin = _origin(explorer_tiny, 0)
    _assert_picture(page, "explore-image", explorer_tiny.decode([committed], "kl", origin),
                    f"after typing {typed!r} and leaving the box")
    _settle(page)
    assert not errors, (f"an event sent while the box held {typed!r} failed: {errors} "
                        f"(events: {page.joins})")
    assert not _error_badges(page), _error_badges(page)


def test_a_negative_value_typed_key_by_key_sends_no_broken_request(page, explorer_tiny):
    """Typing -0.5 passes through "-", which the number box holds as no value at all: the page
    must not send that to the server (a frame request with an empty value is refused, 400)."""
    page.get_by_role("tab", name="Explore").click()
    _settle(page)
    requests = len(page.requests)
    _type_value(page, 2, "-0.5", click=False)  # (no click: see the test above)
    page.locator("#origin-label").click()
    origin = _origin(explorer_tiny, 0)
    _assert_picture(page, "explore-image", explorer_tiny.decode([0, -0.5], "kl", origin),
                    "after typing -0.5 and leaving the box")
    _settle(page)
    sent = [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query, keep_blank_values=True)
            .get("values", [""])[0] for u in page.requests[requests:] if ROUTE + "?" in u]
    broken = [v for v in sent if "" in v.split(",")]
    errors = page.evaluate("window.vaeganLive.errors")
    assert not broken and errors == 0, (
        f"frame requests with an empty value: {broken} ({errors} refused); all sent: {sent}")
    assert not _toasts(page, "error") and not _error_badges(page)


# ---- 3. your own directions --------------------------------------------------------------------
def _open_the_builder(page):
    page.get_by_role("tab", name="Explore").click()
    page.locator("#yours").get_by_text("Your own directions").first.click()
    page.locator("#add-current").wait_for(state="visible", timeout=WAIT_MS)


def _add_shown_picture(page, side: str) -> None:
    """Choose the side, click "Add the picture shown above", wait for its thumbnail."""
    group = page.locator(f"#group-{side.lower()} img")
    before = group.count()
    page.locator("#yours").get_by_label(side, exact=True).check()
    page.locator("#add-current").click()
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n",
                           arg=[f"#group-{side.lower()} img", before], timeout=WAIT_MS)


def test_adding_the_picture_shown_counts_it_in_its_group(page):
    _open_the_builder(page)
    _add_shown_picture(page, "These")
    _settle(page)
    label = page.locator("#group-these [data-testid=block-label]").inner_text().strip()
    assert label == "These (1 picture)", (
        f"the group holds 1 picture but is labelled {label!r} (events: {page.joins})")


def test_your_own_direction_from_two_pictures_drives_slider_1(page, explorer_tiny):
    _open_the_builder(page)
    _add_shown_picture(page, "These")  # seed 0's picture
    _start_at_seed(page, 3)
    _settle(page)
    _add_shown_picture(page, "Those")  # seed 3's picture
    page.locator("#direction-name textarea, #direction-name input").first.fill("darker")
    page.joins.clear()
    page.locator("#make-direction").click()
    page.locator("#yours-note", has_text="Made").wait_for(timeout=WAIT_MS)
    _settle(page)
    assert "darker" in page.locator("#yours-note").inner_text()
    assert page.locator("#basis input:checked").get_attribute("value") == "yours"
    assert page.locator("#slider-1 label").first.inner_text().strip() == "darker"
    assert not page.locator("#slider-2").is_visible()  # one direction, one slider
    origin = _origin(explorer_tiny, 3)
    _assert_picture(page, "explore-image", explorer_tiny.decode([], "kl", origin),
                    "the Yours basis at 0")

    # drag slider 1: live frames, on the visitor's own basis (its vector in the URL)
    page.requests.clear()
    shown_before = page.evaluate("window.vaeganLive.shown.length")
    _drag(page, 1, moves=20)
    page.wait_for_function("n => window.vaeganLive.shown.length > n + 1", arg=shown_before,
                           timeout=WAIT_MS)
    _settle(page)
    live = page.evaluate("window.vaeganLive")
    assert len(live["shown"]) - shown_before >= 2 and live["errors"] == 0, live["errors"]
    asked = [u for u in page.requests if ROUTE + "?" in u or TRACK_ROUTE + "?" in u]
    assert asked
    queries = [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query) for u in asked]
    assert all(q["basis"] == ["yours"] and q.get("dirs") for q in queries), asked[0]
    # the page's own direction (its hidden JSON, sent as dirs=): what the server decodes with
    vector = [float(x) for x in queries[0]["dirs"][0].split(",")]
    assert len(vector) == explorer_tiny.config.latent_dim
    # ... and the difference of the two pictures' codes, recomputed from the same pictures
    these = explorer_tiny.decode([], "kl", _origin(explorer_tiny, 0), scale=1)
    those = explorer_tiny.decode([], "kl", origin, scale=1)
    made = explorer_tiny.direction([these], [those], "darker")
    np.testing.assert_allclose(vector, made["vector"], rtol=0, atol=1e-6)
    value = _slider_values(page, 1)[0]
    assert value > 0.5
    expected = explorer_tiny.decode([value], explorer_tiny.custom_basis([vector]), origin)
    _assert_picture(page, "explore-image", expected, f"after the drag to {value}")
    assert page.joins.count("decode") == 1, page.joins
    assert not _toasts(page, "error") and not _error_badges(page)
    RUNS.mkdir(exist_ok=True)
    page.locator("#yours").scroll_into_view_if_needed()
    page.screenshot(path=str(RUNS / "yours.png"), full_page=True)


# ---- 4. the sketchpad --------------------------------------------------------------------------
def _open_the_sketchpad(page):
    page.get_by_role("tab", name="Reconstruct").click()
    page.get_by_text("Or draw one").click()
    canvas = page.locator("#recon-sketch canvas").first
    canvas.wait_for(state="visible", timeout=WAIT_MS)
    canvas.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('#recon-sketch canvas').width > 0",
                           timeout=WAIT_MS)
    return canvas


def test_a_drawing_is_reconstructed(page):
    canvas = _open_the_sketchpad(page)
    _settle(page)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for stroke in ([(-60, -70), (60, -70), (60, 80), (-60, 80), (-60, -70)],  # a T-shirt
                   [(-60, -70), (-100, -20)], [(60, -70), (100, -20)]):
        page.mouse.move(cx + stroke[0][0], cy + stroke[0][1])
        page.mouse.down()
        for dx, dy in stroke[1:]:
            page.mouse.move(cx + dx, cy + dy, steps=8)
        page.mouse.up()
    page.joins.clear()
    page.locator("#recon-drawing").click()
    page.get_by_text("MSE").first.wait_for(timeout=WAIT_MS)
    _settle(page)
    assert page.joins == ["reconstruct_drawing"], page.joins
    seen, rec, err = (_fetch(page, _src(page, e)) for e in ("recon-input", "recon-output",
                                                             "recon-error"))
    assert seen.shape == rec.shape == err.shape == (336, 336)
    assert seen.std() > 0 and (seen > 200).any() and (seen < 30).any()  # light on dark
    assert np.abs(np.abs(seen.astype(int) - rec) - err).max() <= 1  # the error map is |in - out|
    assert not _toasts(page) and not _error_badges(page)
    RUNS.mkdir(exist_ok=True)
    page.screenshot(path=str(RUNS / "sketch.png"), full_page=True)


def test_reconstructing_with_nothing_drawn_says_so(page):
    _open_the_sketchpad(page)
    _settle(page)
    page.locator("#recon-drawing").click()
    toast = page.locator("[data-testid=toast-body]")
    toast.first.wait_for(timeout=WAIT_MS)
    text = " ".join(_toasts(page)).lower()
    assert "nothing is drawn yet" in text or "the canvas is empty" in text, text
    _no_trace(page)
