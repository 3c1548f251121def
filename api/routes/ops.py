"""Operations: liveness, readiness, Prometheus metrics, index status/check/rebuild."""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select, text

from api.dependencies import ResourcesDep
from api.errors import ApiError
from api.resources import Resources
from api.schemas import (
    CheckState,
    ErrorResponse,
    IndexSpaceStatus,
    IndexStatusResponse,
    Readiness,
    RebuildResponse,
)
from shared.db.models import EmbeddingSpace
from shared.model_identity import model_name

public_router = APIRouter(tags=["operations"])
router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@public_router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_db(resources: Resources) -> CheckState:
    try:
        with resources.db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return CheckState(ok=False, detail=f"database unreachable ({type(exc).__name__})")
    if not resources.schema.ready:  # names the command to run (roisearch db upgrade)
        return CheckState(ok=False, detail=f"{resources.db.dialect}: {resources.schema.message()}")
    return CheckState(ok=True, detail=resources.db.dialect)


def _check_redis(resources: Resources) -> CheckState:
    if resources.redis is None:
        return CheckState(ok=True, detail="not configured (embedded mode)")
    try:
        ok = bool(resources.redis.ping())
    except Exception as exc:
        return CheckState(ok=False, detail=f"redis unreachable ({type(exc).__name__})")
    return CheckState(ok=ok, detail="ok" if ok else "redis did not answer")


def _check_model(resources: Resources) -> CheckState:
    state = resources.model_state
    name = model_name(resources.settings.weights)
    if resources.models.loaded:
        return CheckState(ok=True, detail=f"loaded: {name}")
    if state.state == "failed":
        return CheckState(ok=False, detail=f"failed to load {name}: {state.error}")
    if state.state == "loading":
        return CheckState(ok=False, detail=f"loading: {name}")
    return CheckState(ok=True, detail=f"lazy: {name} loads on the first query-by-image")


def _check_index(resources: Resources) -> CheckState:
    try:
        ready = bool(resources.index.ready)
    except Exception as exc:
        return CheckState(ok=False, detail=f"index error ({type(exc).__name__})")
    return CheckState(ok=ready, detail="caught up" if ready else "catching up with the database")


@public_router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Readiness: database, Redis (if configured), model and index",
)
def readyz(resources: ResourcesDep, response: Response) -> Readiness:
    checks = {
        "database": _check_db(resources),
        "redis": _check_redis(resources),
        "model": _check_model(resources),
        "index": _check_index(resources),
    }
    ready = all(c.ok for c in checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    summary="Prometheus metrics",
)
def metrics(resources: ResourcesDep) -> Response:
    return Response(generate_latest(resources.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _space_ids(resources: Resources, space_id: int | None) -> list[int]:
    with resources.db.read() as session:
        ids = list(session.scalars(select(EmbeddingSpace.id).order_by(EmbeddingSpace.id)))
    if space_id is None:
        return ids
    if space_id not in ids:
        raise ApiError(404, "space_not_found", f"embedding space {space_id} does not exist")
    return [space_id]


def _plain(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        result: dict[str, Any] = dump()
        return result
    return {"value": str(value)}


SpaceQuery = Annotated[
    int | None, Query(ge=1, le=2**62, description="One embedding space (default: all)")
]


@router.get(
    "/v1/index/status",
    response_model=IndexStatusResponse,
    responses={404: {"model": ErrorResponse}},
    summary="Index size vs the database, last snapshot",
)
def index_status(resources: ResourcesDep, space_id: SpaceQuery = None) -> IndexStatusResponse:
    return IndexStatusResponse(
        spaces=[
            IndexSpaceStatus(space_id=sid, status=_plain(resources.index.status(sid)))
            for sid in _space_ids(resources, space_id)
        ]
    )


@router.get(
    "/v1/index/check",
    response_model=IndexStatusResponse,
    responses={404: {"model": ErrorResponse}},
    summary="Compare the index with the database (missing / extra ids)",
)
def index_check(resources: ResourcesDep, space_id: SpaceQuery = None) -> IndexStatusResponse:
    return IndexStatusResponse(
        spaces=[
            IndexSpaceStatus(space_id=sid, status=_plain(resources.index.check(sid)))
            for sid in _space_ids(resources, space_id)
        ]
    )


@router.post(
    "/v1/index/rebuild",
    response_model=list[RebuildResponse],
    status_code=202,
    responses={404: {"model": ErrorResponse}},
    summary="Rebuild the index from the database (in the background)",
)
def index_rebuild(resources: ResourcesDep, space_id: SpaceQuery = None) -> list[RebuildResponse]:
    out: list[RebuildResponse] = []
    for sid in _space_ids(resources, space_id):
        out.append(resources.start_rebuild(sid))
    return out
