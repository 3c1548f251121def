"""Query parameters of the listing routes (``/v1/images``, ``/v1/objects``): the search
filters (the selection of :mod:`shared.selection`, the same names as the searches) and the
paging, as a keyset cursor (``after`` / ``before``) or the 1-based ``page``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Query

from api.dependencies import FilterDep, GroupDep, PageDep
from api.errors import ApiError
from api.schemas import ListPage
from shared.listing import Listing, ObjectFilter, PageRequest
from shared.search.models import MAX_ID, GroupBy


@dataclass(frozen=True)
class ListingParams:
    filter: ObjectFilter
    request: PageRequest

    def with_filter(self, **changes: object) -> ListingParams:
        return ListingParams(replace(self.filter, **changes), self.request)  # type: ignore[arg-type]

    def page(self, listing: Listing) -> ListPage:
        return ListPage(
            page=self.request.page, page_size=self.request.page_size, total=listing.total
        )


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", message, {"loc": ["query", name]})


async def listing_params(
    page: PageDep,
    filters: FilterDep,
    group_by: GroupDep,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="Keyset cursor: the page after this id (``next``)"),
    ] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Keyset cursor: the page before this id (``prev``)"),
    ] = None,
) -> ListingParams:
    if after is not None and before is not None:
        raise _invalid("before", "give either after or before, not both")
    if (after is not None or before is not None) and page.page != 1:
        raise _invalid("page", "give either page or a cursor (after/before), not both")
    # Listings keep or drop objects; they have no similarity to cut or hits to group.
    if filters.min_similarity is not None:
        raise _invalid("min_similarity", "min_similarity applies to searches only")
    if filters.labelled:
        raise _invalid("origin", "origin and label_classes apply to searches, reports and export")
    if group_by is not GroupBy.object:
        raise _invalid("group_by", "group_by applies to searches only")
    return ListingParams(
        filter=ObjectFilter(
            classes=filters.classes,
            min_score=filters.min_score,
            ingestions=filters.ingestions,
            min_box_side=filters.min_box_side,
        ),
        request=PageRequest(page_size=page.page_size, page=page.page, after=after, before=before),
    )


ListingDep = Annotated[ListingParams, Depends(listing_params)]
