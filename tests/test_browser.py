"""The app in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
dragging a slider changes the picture, and the last picture matches the last slider value."""
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ui.page import create_demo
from conftest import serving
from vaegan.explorer import Explorer
from vaegan.hub import load_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]

if not CHROMIUM.exists():
    if os.environ.get("VAEGAN_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} is missing and VAEGAN_REQUIRE_BROWSER=1: "
                           "apt-get install chromium chromium-driver")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium chromium-driver); "
                "browser tests skipped", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(explorer_tiny):
    demo = create_demo(explorer_tiny)
    with serving(demo, trailing_slash=False) as url:
        yield demo, url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


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


def test_dragging_a_slider_changes_the_picture(page, explorer_tiny, server):
    page.get_by_role("tab", name="Explore").click()
    before = _src(page, "explore-image")
    assert before
    first = _fetch(page, before)
    track = page.locator("#slider-1 input[type=range]")
    box = track.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    for k in range(1, 21):  # drag to the right in 20 moves
        page.mouse.move(box["x"] + box["width"] / 2 + k * box["width"] * 0.45 / 20, y)
    page.mouse.up()
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
    assert sum("/vaegan/decode.png?" in u for u in page.requests) >= len(live["shown"])
    assert len({round(float(f["values"][0]), 2) for f in live["shown"]}) >= 2  # distinct positions
    # the last live frame showed the final position, and Gradio's picture replaced it on release
    assert float(live["shown"][-1]["values"][0]) == values[0]
    assert not page.locator("#explore-image img.vaegan-live").is_visible()


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
    assert page.joins == ["reset"], page.joins  # one request: no decode per slider
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


def test_changing_the_basis_relabels_the_sliders_with_one_request(page, explorer_tiny):
    page.get_by_role("tab", name="Explore").click()
    page.joins.clear()
    page.get_by_label("Class attributes").check()
    page.locator("#slider-8", has_text="more Sneaker").wait_for(timeout=15000)
    page.wait_for_timeout(1000)
    assert page.joins == ["set_basis"], page.joins
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
