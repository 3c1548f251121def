"""What an export contains: a selection, an optional split, optionally one part of it.

Rows come ordered by object id in batches of at most ``batch_size`` (see
:func:`shared.reports.selection.iter_batches`), each with its split index when a split is
given; with ``part`` only that part's rows come.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.db.database import Database
from shared.export.splits import SPLIT_NAMES, SplitSpec
from shared.reports.errors import ReportError
from shared.reports.selection import (
    DEFAULT_BATCH,
    ObjectBatch,
    ResolvedSelection,
    count_objects,
    iter_batches,
)


@dataclass(frozen=True)
class ExportSpec:
    selection: ResolvedSelection
    split: SplitSpec | None = None
    part: int | None = None  # index into SPLIT_NAMES; only with a split

    def __post_init__(self) -> None:
        if self.part is not None and self.split is None:
            raise ReportError("invalid_split", "a split part was asked for without a split")

    @property
    def with_split_column(self) -> bool:
        return self.split is not None

    def parts(self) -> list[int]:
        """The split parts written as separate outputs (all three, or the one asked for)."""
        if self.split is None:
            return []
        return [self.part] if self.part is not None else list(range(len(SPLIT_NAMES)))

    def describe(self) -> dict[str, Any]:
        return {
            "selection": self.selection.describe(),
            "split": None if self.split is None else self.split.describe(),
            "part": None if self.part is None else SPLIT_NAMES[self.part],
        }


def iter_rows(
    db: Database,
    spec: ExportSpec,
    *,
    batch_size: int = DEFAULT_BATCH,
    with_vectors: bool = True,
) -> Iterator[tuple[ObjectBatch, np.ndarray | None]]:
    """(batch, int8 [n] split index or None), non-empty batches only."""
    for batch in iter_batches(db, spec.selection, batch_size=batch_size, with_vectors=with_vectors):
        if spec.split is None:
            yield batch, None
            continue
        splits = spec.split.assign(batch.image_ids)
        if spec.part is not None:
            keep = np.flatnonzero(splits == spec.part)
            if keep.size == 0:
                continue
            batch, splits = batch.take(keep), splits[keep]
        yield batch, splits


def count_rows(db: Database, spec: ExportSpec, *, batch_size: int = DEFAULT_BATCH) -> int:
    """Rows the export will have: counted in SQL, or by a metadata pass for one split part."""
    if spec.part is None:
        with db.read() as session:
            return count_objects(session, spec.selection)
    total = 0
    for batch, _ in iter_rows(db, spec, batch_size=batch_size, with_vectors=False):
        total += len(batch)
    return total
