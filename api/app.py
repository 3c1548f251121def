"""The FastAPI application factory.

``create_app(settings)`` wires routes, error handlers and middleware; the lifespan builds the
process's resources once (database, lazy model provider, index manager with its background
catch-up thread, job queue) into :class:`api.resources.Resources` on ``app.state.resources``
and releases them on shutdown. Nothing is built at import time.

Middleware, outermost first (each acts before the body is read):
Host allow-list → CORS (explicit allow-list) → metrics → cross-site refusal → API key →
stalled bodies / open bodies per client → body-size limit → search load shedding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request, Security
from starlette.middleware.cors import CORSMiddleware

from api.dependencies import api_key_scheme
from api.errors import install_error_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.middleware import (
    API_KEY_HEADER,
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    PublicPaths,
    SearchSheddingMiddleware,
)
from api.request_guards import BodyGuardMiddleware, HostGuardMiddleware, OriginGuardMiddleware
from api.resources import build_resources
from api.routes import (
    docs,
    evaluation,
    export,
    images,
    ingestions,
    model,
    objects,
    ops,
    reports,
    search,
)
from api.schemas import ErrorResponse
from api.web import routes as web_routes
from shared.settings import Settings

# Reachable without the API key: probes, the API's own documentation and its assets (they hold
# no data, and Swagger UI's "Authorize" button can only send the key once the page has loaded)
# and the web page's static files.
PUBLIC_PATHS = PublicPaths(
    exact=frozenset({"/healthz", "/readyz"}) | docs.PUBLIC_EXACT | web_routes.PUBLIC_EXACT,
    prefixes=docs.PUBLIC_PREFIXES + web_routes.PUBLIC_PREFIXES,
)
INGESTION_UPLOAD_PATH = "/v1/ingestions"


def _body_limit(settings: Settings, method: str, path: str) -> int:
    if method == "POST" and path.rstrip("/") == INGESTION_UPLOAD_PATH:
        return settings.max_upload_bytes
    return settings.max_query_image_bytes


def _is_search(method: str, path: str) -> bool:
    if method == "POST":
        return path in {"/v1/search", "/v1/search/examples"}
    return method == "GET" and path.startswith("/v1/objects/") and path.endswith("/similar")


def _schema_at_head(request: Request) -> None:
    """Data routes need the schema at head (503 ``schema_not_ready``; see api.schema_gate)."""
    request.app.state.resources.schema.require()


def create_app(settings: Settings, *, warm_model: bool = True) -> FastAPI:
    """Build the app. ``warm_model`` loads the model in the background at start-up."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await anyio.to_thread.run_sync(
            partial(build_resources, settings, metrics=metrics, warm_model=warm_model)
        )
        app.state.resources = resources
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(resources.close)

    error_responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
        422: {"model": ErrorResponse, "description": "Invalid request"},
    }
    app = FastAPI(
        title="roisearch",
        version="0.1.0",
        summary="Object-level similarity search for image archives.",
        description=(
            "Find objects like this one: by stored object id, by an uploaded image (optionally "
            f"with boxes drawn on it), or by examples. Send the API key in `{API_KEY_HEADER}` "
            "when the server has one. Every error has the body "
            '`{"error": {"code", "message", "details"}}`.'
        ),
        lifespan=lifespan,
        responses=error_responses,
        # Served by api.routes.docs from the package's own copy of the assets (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # The key (documented for the OpenAPI page; the middleware enforces it) and the schema.
    data_route = [Security(api_key_scheme), Depends(_schema_at_head)]
    app.include_router(ops.public_router)
    app.include_router(web_routes.router)
    app.include_router(docs.router)
    for module in (search, objects, images, ingestions, model, ops, reports, export, evaluation):
        app.include_router(module.router, dependencies=data_route)
    app.add_middleware(
        SearchSheddingMiddleware, limit=settings.max_concurrent_searches, is_search=_is_search
    )
    app.add_middleware(BodySizeLimitMiddleware, limit_for=partial(_body_limit, settings))
    app.add_middleware(
        BodyGuardMiddleware,
        stall_s=settings.body_stall_timeout_s,
        per_client=settings.max_open_bodies_per_client,
    )
    app.add_middleware(
        ApiKeyMiddleware,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        public=PUBLIC_PATHS,
    )
    app.add_middleware(OriginGuardMiddleware, allowed_origins=list(settings.cors_origins))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=False,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=[API_KEY_HEADER, "Content-Type"],
        max_age=600,
    )
    app.add_middleware(HostGuardMiddleware, allowed=settings.host_allow_list)
    return app
