"""Take the README's screenshot from the real app in headless Chromium.

    python docs/screenshot.py [--model weights/fashion-mnist] [--tab Explore] [--out docs/screenshot.png]
    python docs/screenshot.py --phone        # docs/screenshot-phone.png

Starts the app on a free 127.0.0.1 port, opens it with Playwright driving Debian's
/usr/bin/chromium, and saves a PNG of the page (all tabs with --all-tabs, for review). With
--phone the page is a phone's (390 x 844, mobile, touch, 2 device pixels per CSS pixel) and
the PNG is its top: the first screen, and for Explore down to the second slider.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TABS = ["Sample", "Explore", "Map", "Reconstruct", "Interpolate", "Compare"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="weights folder (default: the app's default)")
    p.add_argument("--tab", default="Explore", choices=TABS)
    p.add_argument("--all-tabs", action="store_true", help="also save <out>-<tab>.png for every tab")
    p.add_argument("--out", type=Path, default=None,
                   help="default docs/screenshot.png (--phone: docs/screenshot-phone.png)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--phone", action="store_true", help="390 x 844, mobile, touch (not --width)")
    args = p.parse_args()
    if args.out is None:
        args.out = Path(__file__).parent / ("screenshot-phone.png" if args.phone else "screenshot.png")

    from playwright.sync_api import sync_playwright

    from ui.models import open_models
    from ui.page import create_demo
    from ui.server import launch
    demo = create_demo(open_models(args.model))
    port = free_port()
    launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(**(PHONE if args.phone else
                                       {"viewport": {"width": args.width, "height": 900},
                                        "device_scale_factor": 1}))
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.get_by_role("tab", name="Sample").wait_for()
            tabs = TABS if args.all_tabs else []
            shots = [(t, args.out.with_name(f"{args.out.stem}-{t.lower()}.png")) for t in tabs]
            for tab, target in shots + [(args.tab, args.out)]:
                _open_tab(page, tab)
                if tab == "Reconstruct":  # show a worked example rather than empty boxes
                    page.locator(".gallery-item, button.thumbnail-item").first.click()
                    page.locator("#recon-output img").wait_for(timeout=60000)
                if tab == "Interpolate":
                    page.get_by_role("button", name="Interpolate", exact=True).click()
                if tab == "Map":  # the map, a picked place, and an atlas
                    page.locator("#map-image img").wait_for(timeout=60000)
                    box = page.locator("#map-image img").bounding_box()
                    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.35)
                    page.locator("#map-picked img").wait_for(timeout=60000)
                    page.get_by_role("button", name="Paint the atlas").click()
                    page.locator("#atlas-image img").wait_for(timeout=60000)
                if tab == "Compare":
                    page.locator("#tab-compare .gallery-item, #tab-compare button.thumbnail-item").first.click()
                    page.get_by_role("button", name="Reconstruct the picture").click()
                    page.locator("#compare-b img").wait_for(timeout=60000)
                page.wait_for_timeout(1500)
                clip = _phone_clip(page, tab) if args.phone else None
                page.screenshot(path=str(target), full_page=True, clip=clip)
                print(f"wrote {target}", file=sys.stderr)
            browser.close()
    finally:
        demo.close()
    return 0


def _open_tab(page, tab: str) -> None:
    """Click a tab; on a phone the last ones are behind the tab bar's "More tabs" button."""
    width = page.viewport_size["width"]  # (Gradio keeps 1-px copies, and clips the bar)
    shown = [b for b in page.get_by_role("tab", name=tab).all() if (box := b.bounding_box())
             and box["height"] > 2 and box["x"] + box["width"] <= width]
    if not shown:
        page.get_by_role("button", name="More tabs").click()
        shown = [page.get_by_role("button", name=tab, exact=True).first]
    shown[0].click()


def _phone_clip(page, tab: str) -> dict:
    """The top of the page: the first screen, or for Explore down to its second slider."""
    page.evaluate("window.scrollTo(0, 0)")
    height = PHONE["viewport"]["height"]
    if tab == "Explore":
        height = max(height, page.locator("#slider-2").evaluate(
            "e => e.getBoundingClientRect().bottom + window.scrollY + 12"))
    return {"x": 0, "y": 0, "width": PHONE["viewport"]["width"], "height": height}


if __name__ == "__main__":
    sys.exit(main())
