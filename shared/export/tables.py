"""Row formats of an export: the metadata columns, as Arrow tables and CSV rows.

Columns, in order: ``object_id``, ``image_id``, ``class_id``, ``class_name``, ``score``
(detector), ``x1``, ``y1``, ``x2``, ``y2`` (box in original-image pixels after EXIF
orientation), ``origin`` (``detection``, or ``label`` for a box of an annotation file) and
``label`` (a labelled box's class in the dataset's own vocabulary, else empty: with
``origin=label`` this is the "train a classifier on my boxes" table), then ``split``
(``train``/``val``/``test``) when a split was asked for. Parquet
adds ``vector`` (``fixed_size_list<float32>[dim]``, L2-normalised as stored). CSV files carry
no vectors: row ``i`` of ``objects.csv`` is row ``i`` of ``vectors.npy``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from shared.export.splits import SPLIT_NAMES
from shared.reports.selection import ObjectBatch

META_COLUMNS = (
    "object_id",
    "image_id",
    "class_id",
    "class_name",
    "score",
    "x1",
    "y1",
    "x2",
    "y2",
    "origin",
    "label",
)


def columns(*, with_split: bool) -> list[str]:
    return [*META_COLUMNS, "split"] if with_split else list(META_COLUMNS)


def arrow_schema(dim: int, *, with_split: bool, with_vectors: bool) -> pa.Schema:
    fields = [
        ("object_id", pa.int64()),
        ("image_id", pa.int64()),
        ("class_id", pa.int32()),
        ("class_name", pa.string()),
        ("score", pa.float64()),
        ("x1", pa.float64()),
        ("y1", pa.float64()),
        ("x2", pa.float64()),
        ("y2", pa.float64()),
        ("origin", pa.string()),
        ("label", pa.string()),
    ]
    if with_split:
        fields.append(("split", pa.string()))
    if with_vectors:
        fields.append(("vector", pa.list_(pa.float32(), dim)))
    return pa.schema(fields)


def arrow_table(
    batch: ObjectBatch, splits: np.ndarray | None, schema: pa.Schema, dim: int
) -> pa.Table:
    """The batch as a table of ``schema``; ``splits``: int8 [n] split index or None."""
    data: dict[str, pa.Array] = {
        "object_id": pa.array(batch.ids, pa.int64()),
        "image_id": pa.array(batch.image_ids, pa.int64()),
        "class_id": pa.array(batch.class_ids, pa.int32()),
        "class_name": pa.array(batch.class_names, pa.string()),
        "score": pa.array(batch.scores, pa.float64()),
        "x1": pa.array(batch.boxes[:, 0], pa.float64()),
        "y1": pa.array(batch.boxes[:, 1], pa.float64()),
        "x2": pa.array(batch.boxes[:, 2], pa.float64()),
        "y2": pa.array(batch.boxes[:, 3], pa.float64()),
        "origin": pa.array(origins(batch), pa.string()),
        "label": pa.array(labels(batch), pa.string()),
    }
    if "split" in schema.names:
        assert splits is not None
        data["split"] = pa.array([SPLIT_NAMES[s] for s in splits.tolist()], pa.string())
    if "vector" in schema.names:
        assert batch.vectors is not None
        flat = pa.array(np.ascontiguousarray(batch.vectors, dtype=np.float32).ravel())
        data["vector"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.table(data, schema=schema)


def origins(batch: ObjectBatch) -> list[str]:
    """Per row: ``label`` for a labelled box (negative class id), else ``detection``."""
    return ["label" if c < 0 else "detection" for c in batch.class_ids.tolist()]


def labels(batch: ObjectBatch) -> list[str]:
    """Per row: a labelled box's label class (its class name), else ``""``."""
    return [
        n if c < 0 else "" for c, n in zip(batch.class_ids.tolist(), batch.class_names, strict=True)
    ]


def csv_rows(batch: ObjectBatch, splits: np.ndarray | None) -> Iterator[list[object]]:
    """CSV rows (without header) in :data:`META_COLUMNS` order, plus ``split`` if given."""
    boxes = batch.boxes.tolist()
    names = None if splits is None else [SPLIT_NAMES[s] for s in splits.tolist()]
    row_origins, row_labels = origins(batch), labels(batch)
    for i, (object_id, image_id, class_id, score) in enumerate(
        zip(
            batch.ids.tolist(),
            batch.image_ids.tolist(),
            batch.class_ids.tolist(),
            batch.scores.tolist(),
            strict=True,
        )
    ):
        row: list[object] = [
            object_id,
            image_id,
            class_id,
            batch.class_names[i],
            repr(score),
            *(repr(v) for v in boxes[i]),
            row_origins[i],
            row_labels[i],
        ]
        if names is not None:
            row.append(names[i])
        yield row
