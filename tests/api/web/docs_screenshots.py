"""The screenshots of docs/web.md: every view of the web page over a demo collection.

    ROISEARCH_DATA_DIR=/tmp/demo .venv/bin/roisearch demo
    .venv/bin/python -m tests.api.web.docs_screenshots --data-dir /tmp/demo

Serves the data dir with the real app (bundled demo detector, no API key) on a free port,
drives Debian's Chromium at 1280x800 (and 390x844 for the phone) and writes small PNGs
(palette-quantised) to docs/web/.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path
from typing import Any

import httpx
from PIL import Image as PILImage
from playwright import sync_api as playwright_sync

from api.app import create_app
from shared.settings import load_settings
from tests.api.live_server import LiveServer
from tests.api.web.pages import CHROMIUM, CHROMIUM_ARGS, wait_js
from tests.conftest import REPO_ROOT

OUT = REPO_ROOT / "docs" / "web"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def save(page: Any, name: str) -> None:
    """A viewport screenshot, quantised to 256 colours (a few hundred KB at most)."""
    png = page.screenshot(full_page=False)
    image = PILImage.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=PILImage.Quantize.MEDIANCUT).save(
        OUT / f"{name}.png", optimize=True
    )


def images_loaded(page: Any, selector: str) -> None:
    """Wait for the images on screen (lazy ones below the fold never load)."""
    page.wait_for_selector(selector)
    wait_js(
        page,
        f"[...document.querySelectorAll({selector!r})]"
        ".filter(i => i.getBoundingClientRect().top < innerHeight)"
        ".every(i => i.src && i.complete && i.naturalWidth)",
    )


def shoot(url: str, files: Path) -> None:
    api = httpx.Client(base_url=url, timeout=60)
    images = api.get("/v1/images", params={"page_size": 60}).json()["images"]
    busy = max(images, key=lambda i: i["object_count"])
    detail = api.get(f"/v1/images/{busy['id']}").json()
    obj = detail["objects"][0]
    query = files / "query.jpg"
    query.write_bytes(api.get(busy["file_url"]).content)
    ingestion = api.get("/v1/ingestions").json()["ingestions"][-1]
    report = next(iter(api.get("/v1/reports").json()["reports"]), None)

    with playwright_sync.sync_playwright() as p:
        browser: Any = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(60_000)

        page.goto(f"{url}/")
        page.wait_for_url("**#/browse")
        images_loaded(page, "#browse-grid img")
        save(page, "browse-images")

        page.goto(f"{url}/#/browse?mode=objects&classes={obj['class_name']}")
        page.wait_for_selector("#browse-grid .object-tile")
        images_loaded(page, "#browse-grid img")
        save(page, "browse-objects")

        page.goto(f"{url}/#/image/{busy['id']}")
        page.wait_for_selector("#image-overlay .box")
        images_loaded(page, "#view-image img")
        save(page, "image")

        page.goto(f"{url}/#/search")
        with page.expect_response(lambda r: "/v1/search" in r.url):
            page.set_input_files("#query-file", str(query))
        page.wait_for_selector("#query-overlay .box")
        page.locator("#query-overlay .box[data-kind='detection']").last.click()
        page.wait_for_selector("#results .hit")
        images_loaded(page, "#results img")
        save(page, "search")

        page.goto(f"{url}/#/similar/{obj['id']}?k=24")
        page.wait_for_selector("#results .hit")
        images_loaded(page, "#results img")
        save(page, "similar")

        page.goto(f"{url}/#/collection/{ingestion['id']}")
        page.wait_for_selector("#ingestion-detail table.items")
        save(page, "collection")

        if report is not None:
            page.goto(f"{url}/#/reports/{report['id']}")
            wait_js(page, "(document.querySelector('#report-frame').srcdoc || '').length > 1000")
            page.wait_for_timeout(500)
            save(page, "reports")

        phone = browser.new_context(viewport=PHONE).new_page()
        phone.goto(f"{url}/#/browse?mode=objects")
        phone.wait_for_selector("#browse-grid .object-tile")
        images_loaded(phone, "#browse-grid img")
        save(phone, "phone-browse")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir=args.data_dir, redis_url=None, api_key=None)
    with (
        LiveServer(create_app(settings, warm_model=True)) as server,
        tempfile.TemporaryDirectory(prefix="shots-") as tmp,
    ):
        shoot(server.url, Path(tmp))
    for png in sorted(OUT.glob("*.png")):
        print(f"{png.relative_to(REPO_ROOT)}  {png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
