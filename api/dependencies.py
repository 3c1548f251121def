"""Typed FastAPI dependencies: the process's resources, bounded paging/k parameters and the
selection (:class:`shared.selection.Selection`) parsed from query parameters.

They are ``async def`` on purpose: they never block, and FastAPI would run a plain ``def``
dependency in the thread pool (one thread hop per dependency per request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from api.middleware import API_KEY_HEADER
from api.resources import Resources
from api.schemas import DbId
from shared.db.database import Database
from shared.db.models import ObjectOrigin
from shared.search.models import GroupBy
from shared.selection import Selection, selection_from
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.index import IndexManager

# Declares the header in the OpenAPI document (Swagger's "Authorize" button); the check itself
# happens in ApiKeyMiddleware, before any body is read.
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required on every route but /healthz, /readyz and the docs when "
    "ROISEARCH_API_KEY is set.",
)


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_database(resources: ResourcesDep) -> Database:
    return resources.db


async def get_index(resources: ResourcesDep) -> IndexManager:
    return resources.index


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
IndexDep = Annotated["IndexManager", Depends(get_index)]


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


DEFAULT_PAGE_SIZE = 50
DEFAULT_K = 10


async def page_params(
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    page_size: Annotated[
        int | None,
        Query(
            ge=1,
            description=f"Items per page (default {DEFAULT_PAGE_SIZE}, at most "
            "ROISEARCH_MAX_PAGE_SIZE)",
        ),
    ] = None,
) -> PageParams:
    if page_size is None:
        page_size = min(DEFAULT_PAGE_SIZE, settings.max_page_size)
    if page_size > settings.max_page_size:
        raise ApiError(
            422,
            "validation_error",
            f"page_size {page_size} is over the limit of {settings.max_page_size}",
            {"loc": ["query", "page_size"], "max": settings.max_page_size},
        )
    return PageParams(page=page, page_size=page_size)


PageDep = Annotated[PageParams, Depends(page_params)]


async def k_param(
    settings: SettingsDep,
    k: Annotated[
        int | None,
        Query(
            ge=1, description=f"Number of neighbours (default {DEFAULT_K}, at most ROISEARCH_MAX_K)"
        ),
    ] = None,
) -> int:
    if k is None:
        return min(DEFAULT_K, settings.max_k)
    if k > settings.max_k:
        raise ApiError(
            422,
            "validation_error",
            f"k={k} is over the limit of {settings.max_k}",
            {"loc": ["query", "k"], "max": settings.max_k},
        )
    return k


KDep = Annotated[int, Depends(k_param)]


async def filter_params(
    classes: Annotated[
        list[str] | None,
        Query(
            description="Class names or ids; repeat the parameter or separate with commas.",
            max_length=1000,
        ),
    ] = None,
    min_score: Annotated[
        float | None, Query(ge=0.0, le=1.0, description="Minimum detector score")
    ] = None,
    ingestions: Annotated[
        list[DbId] | None,
        Query(description="Only objects from these ingestions", max_length=1000),
    ] = None,
    min_box_side: Annotated[
        float | None,
        Query(ge=0.0, le=1e6, description="Minimum box side (shorter side) in pixels"),
    ] = None,
    min_similarity: Annotated[
        float | None,
        Query(ge=-1.0, le=1.0, description="Minimum cosine similarity (maximum distance)"),
    ] = None,
    origin: Annotated[
        ObjectOrigin | None,
        Query(description="Only detections, or only labelled boxes (from annotation files)"),
    ] = None,
    label_classes: Annotated[
        list[str] | None,
        Query(
            description="Label class names (the annotation files' vocabulary): only labelled "
            "boxes of these classes; repeat the parameter or separate with commas.",
            max_length=1000,
        ),
    ] = None,
) -> Selection:
    """The query parameters of a selection: the one place the API parses them."""
    return selection_from(
        classes=classes,
        ingestions=ingestions,
        min_score=min_score,
        min_box_side=min_box_side,
        min_similarity=min_similarity,
        origin=None if origin is None else origin.value,
        label_classes=label_classes,
    )


FilterDep = Annotated[Selection, Depends(filter_params)]


async def group_by_param(
    group_by: Annotated[
        GroupBy, Query(description="'image' rolls object hits up to their images")
    ] = GroupBy.object,
) -> GroupBy:
    return group_by


GroupDep = Annotated[GroupBy, Depends(group_by_param)]
