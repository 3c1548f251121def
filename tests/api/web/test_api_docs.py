"""/docs (Swagger UI) and /redoc work offline: their assets come from this app, not a CDN.

The browser test runs Debian's Chromium (the ``browser`` fixture of the web page's tests) with
every request to another host refused and recorded, so a page that still needed the network
would stay blank and fail here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.docs import ASSETS
from shared.settings import Settings, load_settings
from tests.api.conftest import api_settings
from tests.api.live_server import LiveServer

SIMILAR_PATH = "/v1/objects/{object_id}/similar"
EXTERNAL_URL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""")


@pytest.fixture
def docs_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return api_settings(load_settings(data_dir=tmp_path / "data", database_url=sqlite_url))


@pytest.fixture
def anonymous(docs_settings: Settings) -> Iterator[TestClient]:
    """A client without the API key: the docs must not need it."""
    with TestClient(create_app(docs_settings, warm_model=False)) as client:
        yield client


def _referenced(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_reference_no_other_host(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 200, response.text
    html = response.text
    assert EXTERNAL_URL.findall(html) == [], "the page refers to another host"
    # And the browser may not fetch from one (ReDoc's bundle would fetch its vendor's logo).
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data: blob:;" in policy
    assets = [url for url in _referenced(html) if url.startswith("/docs/assets/")]
    assert assets, html
    for url in assets:
        served = anonymous.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 1000, url


def test_every_listed_asset_is_served_and_nothing_else(anonymous: TestClient) -> None:
    for name, media_type in ASSETS.items():
        response = anonymous.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == media_type
    for name in ("core.py", "..%2F..%2Fapi%2Fapp.py", "swagger-ui.css.map"):
        response = anonymous.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] in {"file_not_found", "not_found"}
    # The spec the pages load is public too; the data routes still need the key.
    assert anonymous.get("/openapi.json").status_code == 200
    assert anonymous.get("/v1/images").status_code == 401


@pytest.fixture
def docs_server(docs_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(docs_settings, warm_model=False)) as server:
        yield server


def _offline_page(chromium: Any, server: LiveServer) -> tuple[Any, list[str], list[str]]:
    """A page that may only reach ``server``; returns it, refused URLs and page errors."""
    context = chromium.new_context()
    refused: list[str] = []
    errors: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(server.url) or url.startswith("data:"):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, refused, errors


@pytest.mark.browser
@pytest.mark.slow
def test_swagger_ui_renders_the_operations_offline(
    browser: Any,
    docs_server: LiveServer,
) -> None:
    page, refused, errors = _offline_page(browser, docs_server)
    page.goto(f"{docs_server.url}/docs")
    operation = page.locator(f'.opblock-summary-path[data-path="{SIMILAR_PATH}"]').first
    operation.wait_for(state="visible")
    assert page.locator(".opblock").count() >= 10
    operation.click()  # expands: its parameters render from the spec
    page.locator(".opblock.is-open .parameters").first.wait_for(state="visible")
    assert "object_id" in page.locator(".opblock.is-open").first.inner_text()
    assert refused == [] and errors == []
    page.context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_redoc_renders_offline(browser: Any, docs_server: LiveServer) -> None:
    page, refused, errors = _offline_page(browser, docs_server)
    page.goto(f"{docs_server.url}/redoc")
    page.get_by_text(SIMILAR_PATH, exact=False).first.wait_for(state="attached")
    title = page.locator("h1").first
    title.wait_for(state="visible")
    assert "roisearch" in title.inner_text()
    assert page.locator("[data-section-id^='operation/']").count() >= 10
    assert refused == [] and errors == []
    page.context.close()
