"""The app in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
dragging a slider changes the picture, and the last picture matches the last slider value."""
import io
import json
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from browser_kit import browser, require_chromium, server  # noqa: F401 (fixtures)
from ui.live import ROUTE, TRACK_ROUTE
from ui.page import create_demo
from conftest import serving
from vaegan.explorer import Explorer
from vaegan.hub import load_model

sync_api = require_chromium()


@pytest.fixture
def page(browser, server):
    demo, url = server
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.requests, page.joins = [], []  # every URL asked for; every event sent to the queue

    def on_request(request):
        page.requests.append(request.url)
        if "/queue/join" in request.url and request.post_data:
            fn = demo.fns[json.loads(request.post_data)["fn_index"]]
            page.joins.append(fn.name)
    page.on("request", on_request)
    page.goto(url + "/", wait_until="load")
    page.get_by_role("tab", name="Explore").wait_for()
    yield page
    page.close()


def _src(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} img").first.get_attribute("src") or ""


def _wait_src_change(page, elem_id: str, old: str) -> str:
    page.wait_for_function(
        "([id, old]) => { const i = document.querySelector(`#${id} img`); return i && i.src && i.src !== old; }",
        arg=[elem_id, old], timeout=15000)
    return _src(page, elem_id)


def _fetch(page, src: str) -> np.ndarray:
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)))


def _slider_values(page, n: int) -> list[float]:
    """The first n sliders' values (the tiny model's bases have 8 directions, so 8 are shown)."""
    return [float(page.locator(f"#slider-{i + 1} input[type=number]").input_value() or 0)
            for i in range(n)]


def _asked(page, route: str) -> int:
    return sum(route + "?" in u for u in page.requests)


def _drag(page, slider: int, moves: int, pause_ms: int = 0, to: float = 0.45) -> None:
    """Press on the middle of a slider's track, move right by `to` of its width in `moves`
    moves `pause_ms` apart, release."""
    box = page.locator(f"#slider-{slider} input[type=range]").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, moves + 1):
        page.mouse.move(x + k * box["width"] * to / moves, y)
        if pause_ms:
            page.wait_for_timeout(pause_ms)
    page.mouse.up()


def _overlay_pixels(page) -> np.ndarray:
    """What the live overlay (a canvas at the picture's native size) holds, grey."""
    w, h, data = page.evaluate("""() => {
        const c = document.querySelector('#explore-image canvas.vaegan-live');
        return [c.width, c.height,
                Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""")
    px = np.asarray(data, dtype=np.uint8).reshape(h, w, 4)
    assert (px[..., :3] == px[..., :1]).all() and (px[..., 3] == 255).all()
    return px[..., 0]


OVERLAY_HIDDEN = ("() => { const o = document.querySelector('#explore-image .vaegan-live'); "
                  "return !o || getComputedStyle(o).display === 'none'; }")


def test_dragging_a_slider_changes_the_picture(page, explorer_tiny, server):
    page.get_by_role("tab", name="Explore").click()
    before = _src(page, "explore-image")
    assert before
    first = _fetch(page, before)
    _drag(page, 1, moves=20)
    after = _wait_src_change(page, "explore-image", before)
    page.wait_for_timeout(1500)  # let always_last deliver the final decode
    after = _src(page, "explore-image")
    shown = _fetch(page, after)
    assert shown.shape == first.shape == (336, 336)
    assert not np.array_equal(shown, first)
    values = _slider_values(page, 8)
    assert values[0] > 1.0 and values[1:] == [0.0] * 7
    assert not page.locator("#slider-9").is_visible()  # only as many sliders as directions
    # the last picture is the decode of the last slider position (no stale frame wins)
    origin = explorer_tiny.seed_latent(0).tolist()
    assert np.array_equal(shown, np.asarray(explorer_tiny.decode(values, "kl", origin)))
    # while dragging, frames came from the live route, not the queue: one queued decode, on release
    assert page.joins.count("decode") == 1, page.joins
    live = page.evaluate("window.vaeganLive")
    assert len(live["shown"]) >= 2 and live["errors"] == 0
    # one track for the drag; frames from the frame route only until it came
    assert _asked(page, TRACK_ROUTE) == live["tracks"] == 1
    assert _asked(page, ROUTE) >= sum(f["source"] == "frame" for f in live["shown"])
    assert len({round(float(f["values"][0]), 2) for f in live["shown"]}) >= 2  # distinct positions
    # the last live frame showed the final position, and Gradio's picture replaced it on release
    assert float(live["shown"][-1]["values"][0]) == values[0]
    assert not page.locator("#explore-image .vaegan-live").is_visible()


def test_far_from_the_server_a_drag_is_drawn_from_one_track(page, explorer_tiny):
    """150 ms of added latency per request: one track request, a few frame requests while it
    comes, then every position drawn from it; the picture after release is the exact decode."""
    page.get_by_role("tab", name="Explore").click()
    before = _src(page, "explore-image")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 150,
                                                  "downloadThroughput": -1, "uploadThroughput": -1})
    page.requests.clear()
    _drag(page, 2, moves=60, pause_ms=25)  # about 2 s
    _wait_src_change(page, "explore-image", before)
    page.wait_for_function(OVERLAY_HIDDEN, timeout=15000)  # Gradio's picture is back
    live = page.evaluate("window.vaeganLive")
    values = _slider_values(page, 8)
    assert values[1] > 1.0 and values[0] == 0.0 and live["errors"] == 0
    assert _asked(page, TRACK_ROUTE) == 1
    frames = [f for f in live["shown"] if f["source"] == "frame"]
    from_track = [f for f in live["shown"] if f["source"] == "track"]
    assert len(frames) <= _asked(page, ROUTE) <= 9  # at most ui/live.js's MAX_WAITING + 1
    assert len(from_track) >= 20 and len(from_track) > 3 * len(frames), (len(from_track), len(frames))
    delays = sorted(f["shown"] - f["input"] for f in from_track[1:])
    assert delays[len(delays) // 2] < 50, delays  # drawn at once, with no request
    assert float(live["shown"][-1]["values"][1]) == values[1]
    # the last frame drawn was exact, and so is Gradio's picture that replaced it
    origin = explorer_tiny.seed_latent(0).tolist()
    assert np.array_equal(_overlay_pixels(page),
                          np.asarray(explorer_tiny.decode(values, "kl", origin, scale=1)))
    assert np.array_equal(_fetch(page, _src(page, "explore-image")),
                          np.asarray(explorer_tiny.decode(values, "kl", origin)))
    assert page.joins.count("decode") == 1, page.joins
    # grabbing it again at the same place needs no new track
    page.requests.clear()
    _drag(page, 2, moves=5, pause_ms=25, to=-0.2)
    page.wait_for_timeout(500)
    assert _asked(page, TRACK_ROUTE) == 0


def test_grabbing_a_slider_asks_for_its_track_before_it_moves(page):
    page.get_by_role("tab", name="Explore").click()
    page.wait_for_timeout(300)
    page.locator("#slider-3 input[type=range]").dispatch_event("pointerdown")
    page.wait_for_function("() => window.vaeganLive.tracks === 1", timeout=15000)
    asked = [u for u in page.requests if TRACK_ROUTE in u]
    assert len(asked) == 1 and "slider=3&" in asked[0] and _asked(page, ROUTE) == 0
    page.locator("#slider-3 input[type=range]").dispatch_event("pointerdown")  # again: known
    page.wait_for_timeout(300)
    assert _asked(page, TRACK_ROUTE) == 1


def test_a_mouse_resting_on_a_slider_fetches_its_track_and_one_passing_by_does_not(page):
    page.get_by_role("tab", name="Explore").click()
    page.wait_for_timeout(300)
    box = lambda k: page.locator(f"#slider-{k} input[type=range]").bounding_box()  # noqa: E731
    for k in (4, 6):  # passing over: shorter than the dwell
        b = box(k)
        page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        page.wait_for_timeout(30)
    page.mouse.move(5, 5)
    page.wait_for_timeout(400)
    assert _asked(page, TRACK_ROUTE) == 0
    b = box(5)
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)  # resting
    page.wait_for_function("() => window.vaeganLive.tracks === 1", timeout=15000)
    asked = [u for u in page.requests if TRACK_ROUTE in u]
    assert len(asked) == 1 and "slider=5&" in asked[0] and _asked(page, ROUTE) == 0


def test_when_the_track_fails_the_frame_route_draws_the_drag(page, explorer_tiny):
    page.route("**/vaegan/track.png?*", lambda route: route.fulfill(status=503, body="busy"))
    page.get_by_role("tab", name="Explore").click()
    before = _src(page, "explore-image")
    _drag(page, 1, moves=20, pause_ms=20, to=-0.3)
    _wait_src_change(page, "explore-image", before)
    page.wait_for_timeout(1000)
    live = page.evaluate("window.vaeganLive")
    assert live["tracks"] == 1 and live["errors"] == 1  # asked once, not again for this state
    assert len(live["shown"]) >= 5 and all(f["source"] == "frame" for f in live["shown"])
    values = _slider_values(page, 8)
    assert values[0] < -1.0 and float(live["shown"][-1]["values"][0]) == values[0]
    origin = explorer_tiny.seed_latent(0).tolist()
    assert np.array_equal(_fetch(page, _src(page, "explore-image")),
                          np.asarray(explorer_tiny.decode(values, "kl", origin)))


def test_reset_sets_every_slider_with_one_request(page, explorer_tiny):
    page.get_by_role("tab", name="Explore").click()
    for i in (1, 2):
        page.locator(f"#slider-{i} input[type=number]").fill("1.5")
        page.locator(f"#slider-{i} input[type=number]").press("Enter")
    page.locator("#origin-label").click()  # blur the number box (leaving it also decodes)
    page.wait_for_timeout(1500)
    moved = _src(page, "explore-image")
    assert _slider_values(page, 2) == [1.5, 1.5]
    page.joins.clear()
    page.locator("#reset").click()
    _wait_src_change(page, "explore-image", moved)
    page.wait_for_timeout(1000)
    assert _slider_values(page, 8) == [0.0] * 8
    # one request sets the picture (no decode per slider); then one updates its realism meter
    assert page.joins in (["reset"], ["reset", "where_now"]), page.joins
    origin = explorer_tiny.seed_latent(0).tolist()
    assert np.array_equal(_fetch(page, _src(page, "explore-image")),
                          np.asarray(explorer_tiny.decode([], "kl", origin)))


def test_clicking_a_sample_opens_it_in_explore(page, explorer_tiny):
    grid = page.locator("#sample-grid img").first
    page.wait_for_function("() => { const i = document.querySelector('#sample-grid img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=15000)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)  # first cell
    page.locator("#origin-label", has_text="sample 1 of the Sample tab").wait_for(timeout=15000)
    z = explorer_tiny.sample(0, 1.0, 16).z[0].tolist()
    page.wait_for_timeout(500)
    assert np.array_equal(_fetch(page, _src(page, "explore-image")),
                          np.asarray(explorer_tiny.decode([], "kl", z)))


def test_a_bad_upload_shows_a_sentence_and_no_trace(page, tmp_path):
    page.get_by_role("tab", name="Reconstruct").click()
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    page.get_by_text("That file could not be read as a picture").first.wait_for(timeout=15000)
    assert "Traceback" not in page.content()


def test_the_page_only_talks_to_this_server(page, server):
    page.wait_for_timeout(500)
    _, url = server
    foreign = [u for u in page.requests if not u.startswith((url, "data:", "blob:"))]
    assert not foreign, foreign


def test_example_then_edit_in_explore_starts_at_its_code(page, explorer_tiny):
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("button.thumbnail-item").nth(7).click()  # the Sneaker
    page.get_by_text("MSE").first.wait_for(timeout=15000)
    page.wait_for_timeout(500)
    seen, rec = (_fetch(page, _src(page, elem_id)) for elem_id in ("recon-input", "recon-output"))
    assert np.array_equal(seen, np.asarray(explorer_tiny.reconstruct(explorer_tiny.example(7)).input))
    page.get_by_role("button", name="Edit in Explore").click()
    page.locator("#origin-label", has_text="the reconstructed picture").wait_for(timeout=15000)
    page.wait_for_timeout(500)
    assert np.array_equal(_fetch(page, _src(page, "explore-image")), rec)  # decode(z) at sliders 0


def test_the_refine_slider_sets_how_the_code_is_fitted(page, explorer_tiny):
    """Picking an example refines by the slider's 50 steps by default; typed 0 in its box, the
    next pick shows the encoder's own code, pixel for pixel what Explorer gives."""
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("#tab-reconstruct button.thumbnail-item").nth(3).click()
    page.locator("#tab-reconstruct", has_text="after 50 refining steps").wait_for(timeout=30000)
    box = page.locator("#recon-steps input[type=number]")
    box.fill("0")
    box.press("Enter")
    page.locator("#tab-reconstruct button.thumbnail-item").nth(3).click()
    page.locator("#tab-reconstruct", has_text="(the encoder's code)").wait_for(timeout=30000)
    page.wait_for_timeout(500)
    want = explorer_tiny.reconstruct(explorer_tiny.example(3), 0)
    assert np.array_equal(_fetch(page, _src(page, "recon-output")), np.asarray(want.reconstruction))
    assert f"MSE {want.mse:.4f} · SSIM {want.ssim:.3f} (the encoder's code)" in \
        page.locator("#tab-reconstruct").inner_text()
    assert "Traceback" not in page.content()


def test_changing_the_basis_relabels_the_sliders_with_one_request(page, explorer_tiny):
    page.get_by_role("tab", name="Explore").click()
    page.joins.clear()
    page.get_by_label("Class attributes").check()
    page.locator("#slider-8", has_text="more Sneaker").wait_for(timeout=15000)
    page.wait_for_timeout(1000)
    assert page.joins in (["set_basis"], ["set_basis", "where_now"]), page.joins  # (+ its meter)
    assert page.locator("#slider-10").is_visible()  # ten classes, ten sliders
    origin = explorer_tiny.seed_latent(0).tolist()
    assert np.array_equal(_fetch(page, _src(page, "explore-image")),
                          np.asarray(explorer_tiny.decode([], "class", origin)))


# ---- several models: the Model list ---------------------------------------------------------
HUB_REPO = "org/tiny"


@pytest.fixture(scope="module")
def hub_explorer(tiny_repo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub-copy")
    for name, data in tiny_repo.items():
        (folder / name).write_bytes(data)
    ex = Explorer(load_model(str(folder)))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def fake_hub(tiny_repo, tmp_path_factory):
    """The fake Hub holding HUB_REPO, huggingface_hub pointed at it (a fresh cache)."""
    from conftest import hub_at
    from fake_hub import FakeHub
    fake = FakeHub()
    fake.commit(HUB_REPO, tiny_repo)
    with fake.serving(), hub_at(fake.url, tmp_path_factory.mktemp("hf-cache")):
        yield fake


@contextmanager
def _serving(models):
    try:
        with serving(create_demo(models), trailing_slash=False) as url:
            yield url
    finally:
        models.close(timeout=60)


@pytest.fixture(scope="module")
def models_server(explorer_tiny, fake_hub):
    """The tiny model as the default, plus a Hub model served by the fake Hub and one that is
    not on it."""
    from ui.models import Models
    models = Models(explorer_tiny, [HUB_REPO, "org/missing"])
    with _serving(models) as url:
        yield url, models


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url + "/", wait_until="load")
    page.get_by_role("tab", name="Explore").wait_for()
    return page


def _pick_model(page, spec: str) -> None:
    page.locator("#model-picker input").click()
    page.get_by_role("option", name=spec, exact=True).click()


def test_picking_a_hub_model_changes_this_page_only(browser, models_server, explorer_tiny, hub_explorer):
    url, _ = models_server
    a, b = _open(browser, url), _open(browser, url)
    try:
        before = _src(a, "sample-grid")
        _pick_model(a, HUB_REPO)
        a.locator("#status", has_text=f"Model {HUB_REPO}").wait_for(timeout=30000)
        grid = _fetch(a, _wait_src_change(a, "sample-grid", before))
        assert np.array_equal(grid, np.asarray(hub_explorer.sample(0, 1.0, 16).image))
        a.get_by_role("tab", name="Explore").click()
        origin = hub_explorer.seed_latent(0).tolist()
        assert np.array_equal(_fetch(a, _src(a, "explore-image")),
                              np.asarray(hub_explorer.decode([], "kl", origin)))
        # the other visitor still has the default model, for new requests too
        assert b.locator("#status").inner_text().startswith(f"Model {explorer_tiny.spec}")
        b.locator("input[type=number]").first.fill("5")
        old = _src(b, "sample-grid")
        b.get_by_role("button", name="Sample", exact=True).click()
        assert np.array_equal(_fetch(b, _wait_src_change(b, "sample-grid", old)),
                              np.asarray(explorer_tiny.sample(5, 1.0, 16).image))
    finally:
        a.close()
        b.close()


def test_a_model_that_cannot_be_had_is_named_with_its_reason(browser, models_server, explorer_tiny):
    url, _ = models_server
    page = _open(browser, url)
    try:
        _pick_model(page, "org/missing")
        status = page.locator("#status", has_text="Could not load org/missing")
        status.wait_for(timeout=30000)
        text = status.inner_text()
        assert "org/missing: repository not found on the Hub" in text
        assert f"Still showing {explorer_tiny.spec}" in text and "Traceback" not in page.content()
        assert page.locator("#model-picker input").input_value() == explorer_tiny.spec
    finally:
        page.close()


def test_a_hub_model_given_as_the_model_opens_on_new_pages_once_loaded(browser, fake_hub, explorer_tiny,
                                                                       hub_explorer):
    from ui.models import Models
    models = Models(explorer_tiny, preferred=HUB_REPO)
    with _serving(models) as url:
        fake_hub.requests.clear()
        page = _open(browser, url)  # the first page starts the load and is told so
        page.locator("#status", has_text=f"{HUB_REPO} is still loading").wait_for(timeout=15000)
        page.close()
        models.wait(60)
        assert models.ready(HUB_REPO) and fake_hub.requests
        page = _open(browser, url)
        try:
            page.locator("#status", has_text=f"Model {HUB_REPO}").wait_for(timeout=15000)
            assert page.locator("#model-picker input").input_value() == HUB_REPO
            page.wait_for_timeout(500)
            assert np.array_equal(_fetch(page, _src(page, "sample-grid")),
                                  np.asarray(hub_explorer.sample(0, 1.0, 16).image))
        finally:
            page.close()
