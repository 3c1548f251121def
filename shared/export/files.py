"""Export to a directory (the CLI's ``roisearch export``): ``.npy`` + CSV + Parquet.

Layout without a split::

    out/vectors.npy       float32 [n, dim], row i = row i of objects.csv
    out/objects.csv       metadata columns (see shared.export.tables)
    out/objects.parquet   metadata columns + vector
    out/manifest.json     counts, dim, classes, selection, split, columns

With a split, the same three files per part in ``out/train/``, ``out/val/``, ``out/test/``
(or only the part asked for). One pass over the database; memory is one batch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow.parquet as pq

from shared.db.database import Database
from shared.export.npy import NpyFileWriter
from shared.export.rows import ExportSpec, iter_rows
from shared.export.splits import SPLIT_NAMES
from shared.export.tables import arrow_schema, arrow_table, columns, csv_rows
from shared.reports.selection import DEFAULT_BATCH, ObjectBatch

VECTORS_NPY = "vectors.npy"
OBJECTS_CSV = "objects.csv"
OBJECTS_PARQUET = "objects.parquet"
MANIFEST = "manifest.json"
FILE_FORMATS = ("npy", "csv", "parquet")


@dataclass
class _PartWriters:
    directory: Path
    npy: NpyFileWriter | None
    csv_file: TextIO | None
    csv: Any
    parquet: pq.ParquetWriter | None
    rows: int = 0


def export_directory(
    db: Database,
    spec: ExportSpec,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = FILE_FORMATS,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export; returns the manifest (also written as ``manifest.json``).

    ``on_batch(rows)`` is called after each batch (progress display).
    """
    unknown = sorted(set(formats) - set(FILE_FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; use {', '.join(FILE_FORMATS)}")
    selection = spec.selection
    dim = selection.dim
    with_split = spec.with_split_column
    schema = arrow_schema(dim, with_split=with_split, with_vectors=True)
    header = columns(with_split=with_split)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        writers: dict[int | None, _PartWriters] = {}
        parts: list[int | None] = [*spec.parts()] or [None]
        for part in parts:
            directory = out_dir if part is None else out_dir / SPLIT_NAMES[part]
            directory.mkdir(parents=True, exist_ok=True)
            npy = (
                stack.enter_context(NpyFileWriter(directory / VECTORS_NPY, np.float32, (dim,)))
                if "npy" in formats
                else None
            )
            csv_file = (
                stack.enter_context(
                    (directory / OBJECTS_CSV).open("w", newline="", encoding="utf-8")
                )
                if "csv" in formats
                else None
            )
            writer = csv.writer(csv_file) if csv_file is not None else None
            if writer is not None:
                writer.writerow(header)
            parquet = (
                pq.ParquetWriter(directory / OBJECTS_PARQUET, schema)
                if "parquet" in formats
                else None
            )
            if parquet is not None:
                stack.callback(parquet.close)
            writers[part] = _PartWriters(directory, npy, csv_file, writer, parquet)
        for batch, splits in iter_rows(db, spec, batch_size=batch_size):
            if splits is None:
                _write(writers[None], batch, None, schema, dim)
            else:
                for part in np.unique(splits).tolist():
                    rows = np.flatnonzero(splits == part)
                    _write(writers[part], batch.take(rows), splits[rows], schema, dim)
            if on_batch is not None:
                on_batch(len(batch))
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **spec.describe(),
        "dim": dim,
        "class_names": list(selection.class_names),
        "columns": header,
        "formats": list(formats),
        "files": {
            "vectors": VECTORS_NPY if "npy" in formats else None,
            "csv": OBJECTS_CSV if "csv" in formats else None,
            "parquet": OBJECTS_PARQUET if "parquet" in formats else None,
        },
        "rows": {
            ("all" if part is None else SPLIT_NAMES[part]): w.rows for part, w in writers.items()
        },
        "vector_note": "float32, L2-normalised; row i of vectors.npy is row i of objects.csv",
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _write(
    writers: _PartWriters, batch: ObjectBatch, splits: np.ndarray | None, schema: Any, dim: int
) -> None:
    if writers.npy is not None:
        assert batch.vectors is not None
        writers.npy.append(batch.vectors)
    if writers.csv is not None:
        writers.csv.writerows(csv_rows(batch, splits))
    if writers.parquet is not None:
        writers.parquet.write_table(arrow_table(batch, splits, schema, dim))
    writers.rows += len(batch)
