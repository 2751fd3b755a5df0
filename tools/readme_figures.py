"""The README's pictures: faces at several sizes on one canvas annotated by the embedded model, and the
browser page after reading a photo (headless Chromium, web/serve.py; needs `npm run build` in web/).

    python tools/readme_figures.py          # writes docs/annotated.jpg and docs/browser.png
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import astronaut_canvas  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402


def annotated(canvas) -> None:
    EmotionRecognizer.from_pretrained().annotate(canvas).save(ROOT / "docs" / "annotated.jpg", quality=85)


def browser_screenshot(canvas) -> None:
    from playwright.sync_api import sync_playwright

    from benchmarks.common import CHROMIUM_FLAGS, data_url
    from web.serve import LOCAL_PAGE, serve

    server = serve(0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(f"http://127.0.0.1:{server.server_address[1]}{LOCAL_PAGE}")
        page.evaluate("window.ferDemo.ready")
        page.evaluate("(url) => window.ferDemo.analyze(url)", data_url(canvas))
        page.wait_for_function("[...document.querySelectorAll('#examples img')].every((img) => img.complete)")  # after ready
        page.screenshot(path=str(ROOT / "docs" / "browser.png"))
        browser.close()
    server.shutdown()


def main() -> None:
    canvas, _ = astronaut_canvas((1280, 640), [70, 110, 160, 200, 90], seed=21)
    annotated(canvas)
    browser_screenshot(canvas)


if __name__ == "__main__":
    main()
