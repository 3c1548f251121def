"""Exports as byte streams for HTTP responses, in bounded memory.

Formats:

- ``csv``: the metadata columns (+ ``split``), no vectors.
- ``parquet``: metadata + ``vector`` column, one row group per batch.
- ``npy``: the vectors only, float32 [n, dim], rows in the order of the CSV export with the same
  parameters. The header needs the row count first: a metadata-only counting pass runs before.
- ``npz``: a zip of ``.npy`` arrays that ``numpy.load`` opens: ``vectors``, ``object_ids``,
  ``image_ids``, ``class_ids``, ``scores``, ``boxes`` and ``class_names``; with a split and no
  part, each array once per part, prefixed ``train_``, ``val_``, ``test_``. The arrays are
  written column by column to files in ``workdir`` (one pass over the database), then streamed
  as a zip and deleted.

Each generator yields chunks of at most about one batch; memory does not grow with the number
of objects.
"""

from __future__ import annotations

import csv
import io
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shared.db.database import Database
from shared.export.npy import NpyFileWriter, npy_header
from shared.export.rows import ExportSpec, count_rows, iter_rows
from shared.export.splits import SPLIT_NAMES
from shared.export.tables import arrow_schema, arrow_table, columns, csv_rows
from shared.reports.selection import DEFAULT_BATCH

STREAM_FORMATS = ("csv", "parquet", "npy", "npz")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "npy": "application/octet-stream",
    "npz": "application/zip",
}
ZIP_READ_CHUNK = 1 << 20


class _Drain:
    """A write-only file object whose bytes are taken out by the generator between writes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_csv(
    db: Database, spec: ExportSpec, *, batch_size: int = DEFAULT_BATCH
) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns(with_split=spec.with_split_column))
    for batch, splits in iter_rows(db, spec, batch_size=batch_size, with_vectors=False):
        writer.writerows(csv_rows(batch, splits))
        yield text.getvalue().encode("utf-8")
        text.seek(0)
        text.truncate()
    tail = text.getvalue()
    if tail:
        yield tail.encode("utf-8")


def stream_parquet(
    db: Database, spec: ExportSpec, *, batch_size: int = DEFAULT_BATCH
) -> Iterator[bytes]:
    dim = spec.selection.dim
    schema = arrow_schema(dim, with_split=spec.with_split_column, with_vectors=True)
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    try:
        for batch, splits in iter_rows(db, spec, batch_size=batch_size):
            writer.write_table(arrow_table(batch, splits, schema, dim))
            data = sink.take()
            if data:
                yield data
    finally:
        writer.close()
    yield sink.take()


def stream_npy(
    db: Database, spec: ExportSpec, *, batch_size: int = DEFAULT_BATCH
) -> Iterator[bytes]:
    dim = spec.selection.dim
    total = count_rows(db, spec, batch_size=batch_size)
    yield npy_header(np.dtype("<f4"), (total, dim))
    written = 0
    for batch, _ in iter_rows(db, spec, batch_size=batch_size):
        assert batch.vectors is not None
        rows = batch.vectors[: max(0, total - written)]  # rows added meanwhile never overflow
        written += rows.shape[0]
        yield np.ascontiguousarray(rows, dtype="<f4").tobytes()
    if written < total:  # rows deleted meanwhile: pad so that the header stays true
        yield np.full((total - written, dim), np.nan, dtype="<f4").tobytes()


_NPZ_COLUMNS: tuple[tuple[str, str, tuple[int, ...] | None], ...] = (
    ("object_ids", "<i8", ()),
    ("image_ids", "<i8", ()),
    ("class_ids", "<i4", ()),
    ("scores", "<f8", ()),
    ("boxes", "<f8", (4,)),
    ("vectors", "<f4", None),  # row shape (dim,)
)


def _write_npz_columns(
    db: Database, spec: ExportSpec, workdir: Path, batch_size: int
) -> list[tuple[str, Path]]:
    dim = spec.selection.dim
    prefixes: dict[int | None, str] = {None: ""} if spec.split is None else {}
    for part in spec.parts():
        prefixes[part] = "" if spec.part is not None else f"{SPLIT_NAMES[part]}_"
    writers: dict[int | None, dict[str, NpyFileWriter]] = {}
    members: list[tuple[str, Path]] = []
    for key, prefix in prefixes.items():
        writers[key] = {}
        for name, dtype, shape in _NPZ_COLUMNS:
            path = workdir / f"{prefix}{name}.npy"
            writers[key][name] = NpyFileWriter(
                path, np.dtype(dtype), (dim,) if shape is None else shape
            )
            members.append((f"{prefix}{name}.npy", path))
    try:
        for batch, splits in iter_rows(db, spec, batch_size=batch_size):
            groups: list[tuple[int | None, np.ndarray]] = (
                [(None, np.arange(len(batch)))]
                if splits is None
                else [(p, np.flatnonzero(splits == p)) for p in np.unique(splits).tolist()]
            )
            for group, rows in groups:
                w = writers[group]
                assert batch.vectors is not None
                w["object_ids"].append(batch.ids[rows])
                w["image_ids"].append(batch.image_ids[rows])
                w["class_ids"].append(batch.class_ids[rows])
                w["scores"].append(batch.scores[rows])
                w["boxes"].append(batch.boxes[rows])
                w["vectors"].append(batch.vectors[rows])
    finally:
        for part_writers in writers.values():
            for writer in part_writers.values():
                writer.close()
    names = np.array(list(spec.selection.class_names) or [""], dtype=str)
    names_path = workdir / "class_names.npy"
    np.save(names_path, names, allow_pickle=False)
    members.append(("class_names.npy", names_path))
    if spec.selection.label_names:
        # Labelled boxes have class id -1 - k: label_names[k] is the name of label class k.
        by_id = {-1 - code: name for code, name in spec.selection.label_names}
        labels = np.array([by_id.get(k, "") for k in range(max(by_id) + 1)], dtype=str)
        labels_path = workdir / "label_names.npy"
        np.save(labels_path, labels, allow_pickle=False)
        members.append(("label_names.npy", labels_path))
    return members


def stream_npz(
    db: Database, spec: ExportSpec, workdir: Path, *, batch_size: int = DEFAULT_BATCH
) -> Iterator[bytes]:
    """The npz bundle; its column files live in a fresh folder under ``workdir`` meanwhile."""
    folder = workdir / f"export-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        members = _write_npz_columns(db, spec, folder, batch_size)
        sink = _Drain()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, path in members:
                with zf.open(name, "w", force_zip64=True) as member, path.open("rb") as source:
                    while chunk := source.read(ZIP_READ_CHUNK):
                        member.write(chunk)
                        yield sink.take()
                yield sink.take()
        yield sink.take()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
