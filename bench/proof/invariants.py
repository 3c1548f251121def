"""The invariants every fault scenario must leave intact, checked from the database outwards.

1. Every ingestion item is done, or failed/skipped with a reason (code and message); no
   ingestion is left planning/running once the system is quiet.
2. Database objects == index ids, per embedding space: by the live API's ``/v1/index/check``
   when an API runs, and by a *fresh* ``IndexManager`` that starts from a copy of the data
   directory's snapshots and catches up from the database (what a restarted process sees).
3. No duplicates: ``(image_id, space_id, ordinal)`` unique among objects, no two images with
   the same content hash, and every image's object rows agree with its recorded object count
   (a half-written retry would show here).
4. Every acknowledged object is searchable: searching the index with the object's own stored
   vector returns the object (or an exact tie).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select

from bench.proof.results import Check
from shared.db.database import Database
from shared.db.models import (
    DetectedObject,
    EmbeddingSpace,
    Image,
    ImageEmbedding,
    Ingestion,
    IngestionItem,
    IngestionStatus,
    ItemStatus,
)
from shared.settings import Settings

FINISHED = {IngestionStatus.DONE, IngestionStatus.FAILED, IngestionStatus.CANCELLED}


@dataclass
class ItemAccount:
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    failed_without_reason: int = 0
    unfinished_ingestions: list[int] = field(default_factory=list)
    retried_items: int = 0  # items that needed more than one attempt

    @property
    def ok(self) -> bool:
        return (
            not self.pending and not self.failed_without_reason and not self.unfinished_ingestions
        )


def item_account(db: Database, ingestion_ids: Iterable[int] | None = None) -> ItemAccount:
    ids = list(ingestion_ids) if ingestion_ids is not None else None
    account = ItemAccount()
    with db.read() as session:
        query = select(IngestionItem.status, func.count()).group_by(IngestionItem.status)
        if ids is not None:
            query = query.where(IngestionItem.ingestion_id.in_(ids))
        counts = {str(status): int(n) for status, n in session.execute(query)}
        account.done = counts.get(ItemStatus.DONE, 0)
        account.failed = counts.get(ItemStatus.FAILED, 0)
        account.skipped = counts.get(ItemStatus.SKIPPED, 0)
        account.pending = counts.get(ItemStatus.PENDING, 0)
        account.total = account.done + account.failed + account.skipped + account.pending
        unreasoned = (
            select(func.count())
            .select_from(IngestionItem)
            .where(
                IngestionItem.status.in_([ItemStatus.FAILED, ItemStatus.SKIPPED]),
                (IngestionItem.error_code.is_(None))
                | (IngestionItem.error_code == "")
                | (IngestionItem.error_message.is_(None))
                | (IngestionItem.error_message == ""),
            )
        )
        retried = select(func.count()).select_from(IngestionItem).where(IngestionItem.attempts > 1)
        unfinished = select(Ingestion.id).where(Ingestion.status.not_in(list(FINISHED)))
        if ids is not None:
            unreasoned = unreasoned.where(IngestionItem.ingestion_id.in_(ids))
            retried = retried.where(IngestionItem.ingestion_id.in_(ids))
            unfinished = unfinished.where(Ingestion.id.in_(ids))
        account.failed_without_reason = int(session.scalar(unreasoned) or 0)
        account.retried_items = int(session.scalar(retried) or 0)
        account.unfinished_ingestions = [int(i) for i in session.scalars(unfinished)]
    return account


def wait_finished(db: Database, ingestion_ids: Sequence[int], timeout: float) -> float:
    """Wait until none of the ingestions has pending items; returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        account = item_account(db, ingestion_ids)
        if account.pending == 0 and not account.unfinished_ingestions:
            break
        time.sleep(0.5)
    return time.monotonic() - began


@dataclass
class Duplicates:
    object_keys: int = 0
    image_hashes: int = 0
    count_mismatches: int = 0

    @property
    def ok(self) -> bool:
        return not (self.object_keys or self.image_hashes or self.count_mismatches)


def duplicates(db: Database) -> Duplicates:
    with db.read() as session:
        keys = (
            select(DetectedObject.image_id)
            .group_by(DetectedObject.image_id, DetectedObject.space_id, DetectedObject.ordinal)
            .having(func.count() > 1)
            .subquery()
        )
        hashes = select(Image.sha256).group_by(Image.sha256).having(func.count() > 1).subquery()
        counted = (
            select(DetectedObject.image_id, DetectedObject.space_id, func.count().label("n"))
            .group_by(DetectedObject.image_id, DetectedObject.space_id)
            .subquery()
        )
        mismatches = (
            select(func.count())
            .select_from(ImageEmbedding)
            .outerjoin(
                counted,
                (counted.c.image_id == ImageEmbedding.image_id)
                & (counted.c.space_id == ImageEmbedding.space_id),
            )
            .where(func.coalesce(counted.c.n, 0) != ImageEmbedding.object_count)
        )
        return Duplicates(
            object_keys=int(session.scalar(select(func.count()).select_from(keys)) or 0),
            image_hashes=int(session.scalar(select(func.count()).select_from(hashes)) or 0),
            count_mismatches=int(session.scalar(mismatches) or 0),
        )


def _plain(value: Any) -> dict[str, Any]:
    """A consistency report as a dict: the API's JSON as it is, an ``IndexCheck`` by field."""
    if isinstance(value, dict):
        return value
    return dataclasses.asdict(value)


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return len(value)
    except TypeError:
        return 0


def discrepancies(check: Any) -> dict[str, int]:
    """Missing/extra/duplicate id counts from a consistency report, whatever its shape.

    Counts (``missing_count``) are preferred over id lists, which may be truncated samples.
    """
    plain = _plain(check)
    out: dict[str, int] = {}
    for kind in ("missing", "extra", "duplicate", "deleted_served"):
        keys = [k for k in plain if kind in k.lower()]
        counts = [k for k in keys if any(w in k.lower() for w in ("count", "n_", "num"))]
        chosen = counts or keys
        if chosen:
            out[kind] = max(_count(plain[k]) for k in chosen)
    return out


def space_ids(db: Database) -> list[int]:
    with db.read() as session:
        return [
            int(i) for i in session.scalars(select(EmbeddingSpace.id).order_by(EmbeddingSpace.id))
        ]


def api_index_check(url: str, api_key: str, timeout: float = 60) -> dict[int, dict[str, int]]:
    """The live API's view: ``/v1/index/check`` per space (missing/extra counts)."""
    response = httpx.get(url + "/v1/index/check", headers={"X-API-Key": api_key}, timeout=timeout)
    response.raise_for_status()
    return {
        int(space["space_id"]): discrepancies(space["status"])
        for space in response.json()["spaces"]
    }


def wait_api_consistent(
    url: str, api_key: str, timeout: float
) -> tuple[dict[int, dict[str, int]], float]:
    """Poll ``/v1/index/check`` until it reports no discrepancy (the index catches up)."""
    began = time.monotonic()
    result: dict[int, dict[str, int]] = {}
    while time.monotonic() - began < timeout:
        result = api_index_check(url, api_key)
        if all(not any(v.values()) for v in result.values()):
            break
        time.sleep(0.5)
    return result, time.monotonic() - began


@dataclass
class FreshIndex:
    per_space: dict[int, dict[str, int]]
    not_searchable: int
    checked_objects: int
    start_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.not_searchable == 0 and all(
            not any(v.values()) for v in self.per_space.values()
        )


def fresh_index_check(
    settings: Settings, db: Database, scratch: Path, *, sample: int | None = None
) -> FreshIndex:
    """Start a new ``IndexManager`` from a copy of the snapshots, catch up, compare, search.

    The copy keeps this process from writing snapshots into a data directory that a live
    API owns.
    """
    from shared.index import IndexManager

    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if settings.index_dir.exists():
        shutil.copytree(settings.index_dir, scratch / settings.index_dir.name)
    local = settings.model_copy(update={"data_dir": scratch})
    began = time.monotonic()
    manager = IndexManager(local, db)
    manager.start()
    try:
        deadline = time.monotonic() + 300
        while not getattr(manager, "ready", True) and time.monotonic() < deadline:
            time.sleep(0.1)
        manager.sync_once()
        start_s = time.monotonic() - began
        spaces = space_ids(db)
        per_space = {sid: discrepancies(manager.check(sid)) for sid in spaces}
        not_found, checked = _searchability(manager, db, spaces, sample)
    finally:
        manager.stop()
    return FreshIndex(per_space, not_found, checked, start_s)


def _searchability(
    manager: Any, db: Database, spaces: list[int], sample: int | None
) -> tuple[int, int]:
    """Search each (sampled) object's own vector; count objects the index does not return."""
    not_found = checked = 0
    for sid in spaces:
        with db.read() as session:
            query = select(DetectedObject.id, DetectedObject.vector).where(
                DetectedObject.space_id == sid
            )
            if sample is not None:
                total = int(
                    session.scalar(select(func.count()).where(DetectedObject.space_id == sid)) or 0
                )
                step = max(1, total // sample)
                query = query.where(DetectedObject.id % step == 0)
            rows = session.execute(query.order_by(DetectedObject.id)).all()
        for start in range(0, len(rows), 256):
            batch = rows[start : start + 256]
            vectors = np.stack([np.frombuffer(r.vector, "<f4") for r in batch]).astype(np.float32)
            results = manager.search(sid, vectors, 10, None)
            for row, vector, hits in zip(batch, vectors, results, strict=True):
                checked += 1
                ids = [int(h.object_id) for h in hits]
                if int(row.id) in ids:
                    continue
                own = float(np.dot(vector, vector))
                # An exact tie (two objects with the same vector) may rank the other first.
                if not hits or min(float(h.score) for h in hits) < own - 1e-4:
                    not_found += 1
    return not_found, checked


def checks(
    section: str,
    scenario: str,
    settings: Settings,
    db: Database,
    scratch: Path,
    *,
    ingestion_ids: Sequence[int] | None = None,
    api: tuple[str, str] | None = None,
    sample: int | None = None,
) -> list[Check]:
    """All four invariants as table rows for one scenario."""
    out: list[Check] = []
    account = item_account(db, ingestion_ids)
    out.append(
        Check(
            section,
            f"{scenario}: items accounted for",
            f"{account.done} done, {account.failed} failed, {account.skipped} skipped, "
            f"{account.pending} lost/pending, "
            f"{account.failed_without_reason} failed w/o reason, "
            f"{len(account.unfinished_ingestions)} unfinished ingestions; "
            f"{account.retried_items} retried",
            "0 lost, 0 without reason",
            account.ok and account.total > 0,
            dataclasses.asdict(account),
        )
    )
    dup = duplicates(db)
    out.append(
        Check(
            section,
            f"{scenario}: no duplicates",
            f"{dup.object_keys} dup object keys, {dup.image_hashes} dup image hashes, "
            f"{dup.count_mismatches} object-count mismatches",
            "0 / 0 / 0",
            dup.ok,
            dataclasses.asdict(dup),
        )
    )
    if api is not None:
        try:
            live, waited = wait_api_consistent(api[0], api[1], timeout=30)
            bad = {sid: v for sid, v in live.items() if any(v.values())}
            out.append(
                Check(
                    section,
                    f"{scenario}: live index == DB",
                    f"{len(live)} space(s), discrepancies {bad or 'none'} (after {waited:.1f} s)",
                    "missing 0, extra 0",
                    not bad and bool(live),
                    {"per_space": live, "waited_s": waited},
                )
            )
        except Exception as exc:
            out.append(Check(section, f"{scenario}: live index == DB", f"error: {exc}", "", False))
    try:
        fresh = fresh_index_check(settings, db, scratch, sample=sample)
        bad = {sid: v for sid, v in fresh.per_space.items() if any(v.values())}
        out.append(
            Check(
                section,
                f"{scenario}: fresh index == DB",
                f"{len(fresh.per_space)} space(s), discrepancies {bad or 'none'}; "
                f"start+catch-up {fresh.start_s:.1f} s",
                "missing 0, extra 0",
                not bad,
                {"per_space": fresh.per_space, "start_s": fresh.start_s},
            )
        )
        out.append(
            Check(
                section,
                f"{scenario}: acknowledged objects searchable",
                f"{fresh.checked_objects - fresh.not_searchable}/{fresh.checked_objects} found "
                "by their own vector",
                "all",
                fresh.not_searchable == 0 and fresh.checked_objects > 0,
                {"not_searchable": fresh.not_searchable, "checked": fresh.checked_objects},
            )
        )
    except Exception as exc:
        out.append(
            Check(
                section,
                f"{scenario}: fresh index == DB, objects searchable",
                f"could not run: {type(exc).__name__}: {str(exc)[:200]}",
                "",
                False,
            )
        )
    return out
