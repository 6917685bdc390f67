"""What the browser tests share: Debian's Chromium, its flags, and the rule that a missing
Chromium skips them, except where VAEGAN_REQUIRE_BROWSER=1 (CI) makes it an error."""
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def require_chromium():
    """Playwright's sync API, or the module is skipped (an error under VAEGAN_REQUIRE_BROWSER=1)."""
    if not CHROMIUM.exists():
        if os.environ.get("VAEGAN_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"{CHROMIUM} is missing and VAEGAN_REQUIRE_BROWSER=1: "
                               "apt-get install chromium chromium-driver")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium chromium-driver); "
                    "browser tests skipped", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(explorer_tiny):
    """(demo, url) of the tiny model's app, for one test module."""
    from conftest import serving
    from ui.page import create_demo
    demo = create_demo(explorer_tiny)
    with serving(demo, trailing_slash=False) as url:
        yield demo, url


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
