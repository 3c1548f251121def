"""The API's own documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), offline.

FastAPI's default pages load their scripts from a CDN, so on an air-gapped archive server they
are blank. Here the pages load the same tools from the ``fastapi-offline`` package, served by
this app under ``/docs/assets/`` (only the files listed in :data:`ASSETS`; no directory
listing). Nothing on the pages refers to another host: Swagger UI's online validator badge is
off and ReDoc does not load web fonts.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import not_found

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PREFIX = "/docs/assets/"
OPENAPI_PATH = "/openapi.json"
# The files this app serves, and their media types (fastapi-offline ships exactly these).
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Reachable without the API key (see api.app.PUBLIC_PATHS): they hold no data.
PUBLIC_EXACT: frozenset[str] = frozenset(
    {DOCS_PATH, REDOC_PATH, OAUTH2_REDIRECT_PATH, OPENAPI_PATH}
)
PUBLIC_PREFIXES: tuple[str, ...] = (ASSETS_PREFIX,)

# The pages' only inline code is their start-up script (and ReDoc's generated styles); every
# file comes from this app. ReDoc's bundle shows a logo from its vendor's CDN: with img-src
# 'self' the browser never asks for it (the image hides itself when it does not load), so an
# air-gapped server's pages make no request to the outside at all. Its search runs in a worker
# built from a blob.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _secured(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(SECURITY_HEADERS)
    return page


def assets_dir() -> Path:
    """Where the installed ``fastapi-offline`` package keeps Swagger UI's and ReDoc's files."""
    return Path(fastapi_offline.__file__).parent / "static"


def _asset_url(request: Request, name: str) -> str:
    # root_path: the app may be mounted under a prefix behind a proxy.
    return f"{request.scope.get('root_path', '')}{ASSETS_PREFIX}{name}"


@router.get(DOCS_PATH)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: every operation, with "Try it out"."""
    root = request.scope.get("root_path", "")
    return _secured(
        get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            swagger_js_url=_asset_url(request, "swagger-ui-bundle.js"),
            swagger_css_url=_asset_url(request, "swagger-ui.css"),
            swagger_favicon_url=_asset_url(request, "favicon.png"),
            # The validator badge would send the spec's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT_PATH)
def swagger_ui_redirect() -> HTMLResponse:
    return _secured(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_PATH)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same reference, as one readable page."""
    root = request.scope.get("root_path", "")
    return _secured(
        get_redoc_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=_asset_url(request, "redoc.standalone.js"),
            redoc_favicon_url=_asset_url(request, "favicon.png"),
            with_google_fonts=False,
        )
    )


@router.get(ASSETS_PREFIX + "{name}")
def asset(name: str) -> FileResponse:
    """One of the listed files; anything else is a 404 in the API's error format."""
    if name not in ASSETS:
        raise not_found("file", name[:100])
    return FileResponse(
        assets_dir() / name, media_type=ASSETS[name], headers={"X-Content-Type-Options": "nosniff"}
    )
