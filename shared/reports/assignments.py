"""Object → cluster assignments, streamed to CSV and Parquet as batches arrive.

Columns (both files, one row per selected object, ordered by object id): ``object_id``,
``image_id``, ``class_id``, ``class_name``, ``cluster`` (-1: noise, density method only) and
``similarity`` (cosine similarity to the cluster's centre; to the nearest centre for noise).
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shared.reports.selection import ObjectBatch

ASSIGNMENTS_CSV = "assignments.csv"
ASSIGNMENTS_PARQUET = "assignments.parquet"
COLUMNS = ("object_id", "image_id", "class_id", "class_name", "cluster", "similarity")
SCHEMA = pa.schema(
    [
        ("object_id", pa.int64()),
        ("image_id", pa.int64()),
        ("class_id", pa.int32()),
        ("class_name", pa.string()),
        ("cluster", pa.int32()),
        ("similarity", pa.float32()),
    ]
)


class AssignmentWriter:
    """Writes ``assignments.csv`` and ``assignments.parquet`` into ``directory``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._csv_file = (directory / ASSIGNMENTS_CSV).open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(COLUMNS)
        self._parquet = pq.ParquetWriter(directory / ASSIGNMENTS_PARQUET, SCHEMA)
        self.rows = 0

    def write(self, batch: ObjectBatch, labels: np.ndarray, sims: np.ndarray) -> None:
        """One batch: ``labels`` int [n] cluster per row, ``sims`` float32 [n]."""
        table = pa.table(
            {
                "object_id": pa.array(batch.ids, pa.int64()),
                "image_id": pa.array(batch.image_ids, pa.int64()),
                "class_id": pa.array(batch.class_ids, pa.int32()),
                "class_name": pa.array(batch.class_names, pa.string()),
                "cluster": pa.array(labels.astype(np.int32), pa.int32()),
                "similarity": pa.array(sims.astype(np.float32), pa.float32()),
            },
            schema=SCHEMA,
        )
        self._parquet.write_table(table)
        self._csv.writerows(
            zip(
                batch.ids.tolist(),
                batch.image_ids.tolist(),
                batch.class_ids.tolist(),
                batch.class_names,
                labels.tolist(),
                [f"{s:.6f}" for s in sims.tolist()],
                strict=True,
            )
        )
        self.rows += len(batch)

    def close(self) -> None:
        self._parquet.close()
        self._csv_file.close()

    def __enter__(self) -> AssignmentWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
