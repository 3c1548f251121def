"""Paged listings of the collection's images and objects, filtered like a search.

Two ways to page, both ordered by id:

- **keyset** (``after=<id>`` / ``before=<id>``): the rows next to a cursor, found through the
  primary key; a deep page costs what the first one does (``bench/browse.py`` measures both);
- **offset** (``page``): kept for existing callers; its cost grows with the page number.

Offset pages also give the number of matching rows (``total``); keyset pages do not, since
counting visits every matching row. Every listing also returns the cursors of the neighbouring
pages (``next``: the last id of this page when more rows follow; ``prev``: the first id when rows
precede it), so a caller can switch from offset to keyset paging at any page.

The filters (:class:`ObjectFilter`) are the search filters' (classes, detector score,
ingestions, box side). An image matches when it has at least one matching object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from shared.db.models import DetectedObject, Image, IngestionItem


@dataclass(frozen=True)
class ObjectFilter:
    """Which objects (and, through them, which images) a listing keeps; empty keeps all.

    ``classes``: class names, or class ids given as digits (``"3"``); ``ingestions``: objects of
    images that belong to any of these ingestions; ``min_box_side``: the shorter box side in
    original-image pixels."""

    classes: tuple[str, ...] = ()
    min_score: float | None = None
    ingestions: tuple[int, ...] = ()
    min_box_side: float | None = None
    image_id: int | None = None
    space_id: int | None = None

    @property
    def on_objects(self) -> bool:
        """True if an image is kept only for some of its objects."""
        return bool(
            self.classes
            or self.min_score is not None
            or self.min_box_side is not None
            or self.space_id is not None
        )


@dataclass(frozen=True)
class PageRequest:
    """``after`` / ``before``: keyset cursors (at most one); otherwise the 1-based ``page``."""

    page_size: int
    page: int = 1
    after: int | None = None
    before: int | None = None


@dataclass(frozen=True)
class Listing:
    ids: list[int]
    total: int | None  # None on keyset pages: counting costs a scan of the matching rows
    next: int | None
    prev: int | None


def _class_condition(classes: Sequence[str]) -> ColumnElement[bool]:
    names = [c for c in classes if not c.isdigit()]
    ids = [int(c) for c in classes if c.isdigit()]
    if names and ids:
        return DetectedObject.class_name.in_(names) | DetectedObject.class_id.in_(ids)
    if ids:
        return DetectedObject.class_id.in_(ids)
    return DetectedObject.class_name.in_(names)


def _ingestion_images(ingestions: Sequence[int]) -> Select[Any]:
    return select(IngestionItem.image_id).where(
        IngestionItem.ingestion_id.in_(list(ingestions)), IngestionItem.image_id.is_not(None)
    )


def object_conditions(flt: ObjectFilter) -> list[ColumnElement[bool]]:
    """SQL conditions on :class:`DetectedObject` for ``flt``."""
    conditions: list[ColumnElement[bool]] = []
    if flt.classes:
        conditions.append(_class_condition(flt.classes))
    if flt.min_score is not None:
        conditions.append(DetectedObject.score >= flt.min_score)
    if flt.min_box_side is not None:
        conditions.append(DetectedObject.x2 - DetectedObject.x1 >= flt.min_box_side)
        conditions.append(DetectedObject.y2 - DetectedObject.y1 >= flt.min_box_side)
    if flt.space_id is not None:
        conditions.append(DetectedObject.space_id == flt.space_id)
    if flt.image_id is not None:
        conditions.append(DetectedObject.image_id == flt.image_id)
    if flt.ingestions:
        conditions.append(DetectedObject.image_id.in_(_ingestion_images(flt.ingestions)))
    return conditions


def image_conditions(flt: ObjectFilter) -> list[ColumnElement[bool]]:
    """SQL conditions on :class:`Image`: in the ingestions, with a matching object."""
    conditions: list[ColumnElement[bool]] = []
    if flt.image_id is not None:
        conditions.append(Image.id == flt.image_id)
    if flt.ingestions:
        conditions.append(Image.id.in_(_ingestion_images(flt.ingestions)))
    if flt.on_objects:
        per_object = object_conditions(
            ObjectFilter(
                classes=flt.classes,
                min_score=flt.min_score,
                min_box_side=flt.min_box_side,
                space_id=flt.space_id,
            )
        )
        conditions.append(exists().where(DetectedObject.image_id == Image.id, *per_object))
    return conditions


def _page(
    session: Session,
    key: InstrumentedAttribute[int],
    conditions: list[ColumnElement[bool]],
    request: PageRequest,
) -> Listing:
    """One page of ``key`` values (ascending) under ``conditions``, with its cursors.

    The total is counted for offset pages only: a count visits every matching row, which is
    what keyset paging avoids (a client keeps the total of the first page)."""
    keyset = request.after is not None or request.before is not None
    total = (
        None
        if keyset
        else session.scalar(select(func.count()).select_from(key.class_).where(*conditions)) or 0
    )
    size = request.page_size
    if request.before is not None:
        rows = session.scalars(
            select(key)
            .where(*conditions, key < request.before)
            .order_by(key.desc())
            .limit(size + 1)
        ).all()
        more_before = len(rows) > size
        ids = sorted(rows[:size])
        prev = ids[0] if ids and more_before else None
        nxt = ids[-1] if ids and _exists(session, key, conditions, key > ids[-1]) else None
        return Listing(ids=ids, total=total, next=nxt, prev=prev)
    query = select(key).where(*conditions).order_by(key)
    if request.after is not None:
        query = query.where(key > request.after)
    else:
        query = query.offset((request.page - 1) * size)
    rows = session.scalars(query.limit(size + 1)).all()
    ids = list(rows[:size])
    nxt = ids[-1] if len(rows) > size else None
    first_page = request.after is None and request.page == 1
    prev = (
        ids[0]
        if ids and not first_page and _exists(session, key, conditions, key < ids[0])
        else None
    )
    return Listing(ids=ids, total=total, next=nxt, prev=prev)


def _exists(
    session: Session,
    key: InstrumentedAttribute[int],
    conditions: list[ColumnElement[bool]],
    bound: ColumnElement[bool],
) -> bool:
    return session.scalar(select(key).where(*conditions, bound).limit(1)) is not None


def list_objects(session: Session, flt: ObjectFilter, request: PageRequest) -> Listing:
    """Ids of the objects matching ``flt``, one page of them, ordered by id."""
    return _page(session, DetectedObject.id, object_conditions(flt), request)


def list_images(session: Session, flt: ObjectFilter, request: PageRequest) -> Listing:
    """Ids of the images matching ``flt``, one page of them, ordered by id."""
    return _page(session, Image.id, image_conditions(flt), request)
