"""Serve the web page: ``/`` is the page, ``/web/{name}`` its ES modules and stylesheet.

Only the files of ``api/web/static/`` listed in :data:`STATIC_FILES` (read once at import:
the page's own files, a fixed set) are served: no directory listing, no path traversal. The
paths in :data:`PUBLIC_EXACT` / :data:`PUBLIC_PREFIXES` must be public in
:class:`api.middleware.ApiKeyMiddleware`: the page loads without a key and then sends the key
the user entered with every API call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import not_found

WEB_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
STATIC_FILES: dict[str, str] = {
    path.name: MEDIA_TYPES[path.suffix]
    for path in sorted(WEB_DIR.iterdir())
    if path.is_file() and path.suffix in MEDIA_TYPES
}
PUBLIC_EXACT: frozenset[str] = frozenset({"/"})
PUBLIC_PREFIXES: tuple[str, ...] = ("/web/",)

# The report frame is a sandboxed srcdoc document, which inherits this policy: it allows the
# report's own inline styles and scripts, while the sandbox keeps them away from this page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-src 'self' blob: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag/Last-Modified make that cheap), so an upgraded server
    # never runs against a stale cached script.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file_response(name: str) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)


@router.get("/")
def index() -> FileResponse:
    """The single-page app."""
    return _file_response("index.html")


@router.get("/web/{name}")
def static_file(name: str) -> FileResponse:
    """One of the page's files; anything else is a 404 in the API's error format."""
    if name not in STATIC_FILES:
        raise not_found("file", name[:100])
    return _file_response(name)
