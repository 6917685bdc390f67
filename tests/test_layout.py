"""The shape of the code that the architecture (README, "Architecture") promises: the model
package imports no web framework, app.py stays an entry point, web-layer functions stay
short, and handlers take values and return {component: value}, callable without a server."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from ui import live
from ui.models import Models
from ui.page import Page, create_demo
from ui.tabs import TABS

ROOT = Path(__file__).resolve().parents[1]
WEB = ("gradio", "starlette", "fastapi", "uvicorn")


def test_the_model_package_imports_no_web_framework():
    modules = sorted(p.stem for p in (ROOT / "vaegan").glob("*.py") if p.stem != "__init__")
    script = ("import sys\n" + "".join(f"import vaegan.{m}\n" for m in modules)
              + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB!r}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"vaegan/ pulled in {out.stdout.strip()}"


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_app_is_a_short_entry_point_and_web_functions_are_short():
    assert len((ROOT / "app.py").read_text().splitlines()) <= 150
    long = [f"{p.relative_to(ROOT)}:{name} ({n} lines)" for p in [ROOT / "app.py", *(ROOT / "ui").rglob("*.py")]
            for name, n in _functions(p) if n > 80]
    assert not long


def test_the_page_script_is_a_real_file_that_asks_for_the_routes_path():
    source = live.SCRIPT.read_text()
    assert f'const ROUTE = "{live.ROUTE}";' in source
    assert live.SCRIPT_ROUTE.lstrip("/") in live.HEAD and "<script src=" in live.HEAD


@pytest.fixture(scope="module")
def page(explorer_tiny) -> Page:
    return create_demo(explorer_tiny).vaegan_page


def test_each_tab_shows_exactly_what_it_declares_for_another_model(page, explorer_tiny):
    assert [type(t) for t in page.tabs.values()] == TABS
    for tab in page.tabs.values():
        shown = tab.show(explorer_tiny, {})
        assert set(shown) == set(tab.model_outputs()), tab.id


def test_handlers_take_values_and_return_components(page, explorer_tiny):
    sample, explore = page.tabs["sample"], page.tabs["explore"]
    out = sample.sample(3, 1.0, 9, None)
    assert set(out) == {sample.grid, sample.codes} and len(out[sample.codes]) == 9
    assert np.array_equal(np.asarray(out[sample.grid]), np.asarray(explorer_tiny.sample(3, 1.0, 9).image))
    z = out[sample.codes][4]
    opened = explore.open_at(z, "sample 5", None)
    assert set(opened) == set(explore.open_outputs())
    assert opened[explore.origin] == z and opened[explore.where] == "Starting point: sample 5"
    assert np.array_equal(np.asarray(opened[explore.image]), np.asarray(explorer_tiny.decode([], "kl", z)))
    with pytest.raises(gr.Error, match="Count must be a whole number between 1 and 64, got 0"):
        sample.sample(3, 1.0, 0, None)


def test_switching_to_a_model_that_cannot_be_had_keeps_the_page_and_says_why(explorer_tiny):
    page = Page(Models(explorer_tiny, ["org/gone"], loader=lambda spec: (_ for _ in ()).throw(
        ValueError("no such repo"))))
    page.build()
    values = {page.picker: "org/gone", page.model: explorer_tiny.spec}
    out = page.switch(values)
    assert set(out) == {page.picker, page.status}
    assert out[page.picker] == explorer_tiny.spec
    assert out[page.status].startswith("⚠️ Could not load `org/gone`: no such repo.")
    # an emptied seed box does not stop a switch: the defaults are used instead
    values = {page.picker: explorer_tiny.spec, page.model: explorer_tiny.spec,
              page.tabs["sample"].seed: None}
    assert page.switch(values)[page.tabs["explore"].where] == "Starting point: seed 0"


def test_a_click_on_the_grid_without_its_codes_uses_the_grid_its_boxes_draw(page, explorer_tiny):
    """A new page, or a session Gradio has let go (ui/server.SESSIONS): the State is None."""
    sample, explore = page.tabs["sample"], page.tabs["explore"]

    class Click:
        index = [60, 60]  # inside the first picture
    opened = sample.pick(None, 3, 1.0, 9, None, Click())
    assert opened[explore.origin] == explorer_tiny.sample(3, 1.0, 9).z[0].tolist()
    assert sample.pick([[0.0] * 8], 3, 1.0, 1, None, Click())[explore.origin] == [0.0] * 8
