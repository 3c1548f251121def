"""Fixtures of the web page tests: one real uvicorn server (real SQLite database, index,
in-process queue and model) with a small collection ingested through the API, shared by every
test of this package, and one headless Chromium."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from playwright import sync_api as playwright_sync

from api.app import create_app
from shared.db import migrations
from shared.settings import load_settings
from tests.api.live_server import LiveServer
from tests.api.web.pages import (
    API_KEY,
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    MAX_UPLOAD,
    Collection,
    MiB,
    PageRun,
    WebServer,
    ingest,
    open_page,
    wait_indexed,
    write_files,
)


@pytest.fixture(scope="package")
def web_server(
    tmp_path_factory: pytest.TempPathFactory, yolov7_fixtures: Path
) -> Iterator[WebServer]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("web")
    files = root / "files"
    files.mkdir()
    collection_zip = write_files(files, yolov7_fixtures)
    database_url = f"sqlite:///{root / 'roisearch.db'}"
    migrations.upgrade(database_url)
    settings = load_settings(
        data_dir=root / "data",
        database_url=database_url,
        redis_url=None,
        weights=yolov7_fixtures / "yolov7-tiny-random.pt",
        api_key=API_KEY,
        max_upload_bytes=MAX_UPLOAD,
        max_query_image_bytes=2 * MiB,
        torch_threads=1,
        index_poll_interval_s=0.05,
    )
    with LiveServer(create_app(settings, warm_model=True)) as server:
        ingestion_id = ingest(server.url, collection_zip)
        headers = {"X-API-Key": API_KEY}
        images = httpx.get(
            f"{server.url}/v1/images", headers=headers, params={"ingestion_id": ingestion_id}
        ).json()["images"]
        sample_sha = hashlib.sha256((yolov7_fixtures / "sample.png").read_bytes()).hexdigest()
        sample_id = next(i["id"] for i in images if i["sha256"] == sample_sha)
        wait_indexed(server.url, [i["id"] for i in images])
        yield WebServer(
            url=server.url,
            settings=settings,
            collection=Collection(ingestion_id, sample_id, len(images)),
            files=files,
        )


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install Debian's package: "
            "`apt-get update && apt-get install -y chromium` (never `playwright install`); "
            "or set ROISEARCH_TEST_CHROMIUM to the browser binary.",
            pytrace=False,
        )
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def laptop(browser: Any, web_server: WebServer) -> Iterator[PageRun]:
    run = open_page(browser, web_server, viewport=LAPTOP, key=API_KEY)
    yield run
    run.page.context.close()
    assert run.errors == [], f"uncaught script errors: {run.errors}"
