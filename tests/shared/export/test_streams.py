"""Streamed exports (the HTTP formats): round trips and bounded memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.db.database import Database
from shared.export.rows import ExportSpec
from shared.export.splits import SplitSpec
from shared.export.streams import stream_csv, stream_npy, stream_npz, stream_parquet
from shared.reports.selection import resolve_selection
from shared.selection import Selection
from shared.settings import Settings
from tests.factories import Collection, add_objects, make_space, seed_clustered


@pytest.fixture
def collection(settings: Settings, database: Database) -> Collection:
    return seed_clustered(settings, database, images=20, objects_per_image=3, duplicates=0)


def split_spec(database: Database, part: int | None = None) -> ExportSpec:
    with database.read() as session:
        selection = resolve_selection(session)
    return ExportSpec(selection, SplitSpec.parse("0.5,0.3,0.2", seed=2), part=part)


def test_csv_parquet_and_npy_agree_row_by_row(database: Database, collection: Collection) -> None:
    spec = split_spec(database, part=0)
    rows = list(
        csv.DictReader(io.StringIO(b"".join(stream_csv(database, spec, batch_size=4)).decode()))
    )
    table = pq.read_table(io.BytesIO(b"".join(stream_parquet(database, spec, batch_size=4))))
    vectors = np.load(io.BytesIO(b"".join(stream_npy(database, spec, batch_size=4))))
    ids = [int(r["object_id"]) for r in rows]
    assert ids and {r["split"] for r in rows} == {"train"}
    assert table.column("object_id").to_pylist() == ids
    assert vectors.shape == (len(ids), 32)
    for i, object_id in enumerate(ids):
        assert np.array_equal(vectors[i], collection.vectors[object_id])
    parquet_vectors = np.array(table.column("vector").to_pylist(), dtype=np.float32)
    assert np.array_equal(parquet_vectors, vectors)


def test_npz_bundle_per_part(tmp_path: Path, database: Database, collection: Collection) -> None:
    spec = split_spec(database)
    data = b"".join(stream_npz(database, spec, tmp_path / "work", batch_size=5))
    assert zipfile.is_zipfile(io.BytesIO(data))
    bundle = np.load(io.BytesIO(data), allow_pickle=False)
    assert list(bundle["class_names"]) == ["cat", "dog", "car", "boat"]
    seen_images: list[set[int]] = []
    seen_ids: list[int] = []
    for part in ("train", "val", "test"):
        ids = bundle[f"{part}_object_ids"]
        vectors = bundle[f"{part}_vectors"]
        assert vectors.shape == (ids.size, 32) and bundle[f"{part}_boxes"].shape == (ids.size, 4)
        for object_id, vector, image_id, class_id in zip(
            ids.tolist(),
            vectors,
            bundle[f"{part}_image_ids"],
            bundle[f"{part}_class_ids"],
            strict=True,
        ):
            assert np.array_equal(vector, collection.vectors[object_id])
            assert image_id == collection.image_of[object_id]
            assert class_id == collection.class_of[object_id]
        seen_images.append({collection.image_of[o] for o in ids.tolist()})
        seen_ids += ids.tolist()
    assert sorted(seen_ids) == sorted(collection.object_ids)
    assert sum(len(s) for s in seen_images) == len(set().union(*seen_images))
    assert list((tmp_path / "work").iterdir()) == []  # the column files are removed


def test_npz_without_split_has_plain_names(
    tmp_path: Path, database: Database, collection: Collection
) -> None:
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session, Selection(classes=("dog",))))
    bundle = np.load(io.BytesIO(b"".join(stream_npz(database, spec, tmp_path))))
    assert set(bundle.files) == {
        "object_ids",
        "image_ids",
        "class_ids",
        "scores",
        "boxes",
        "vectors",
        "class_names",
    }
    assert set(bundle["class_ids"].tolist()) == {1}


def _bulk_collection(database: Database, n: int, dim: int) -> None:
    """n objects (100 per image) inserted in bulk; no image files (exports do not read them)."""
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype("<f4")
    space_id = make_space(database, dim, "bulk")
    with database.begin() as session:
        for start in range(0, n, 100):
            ids = range(start, min(n, start + 100))
            add_objects(
                session, space_id, vectors[ids.start : ids.stop], class_ids=[i % 2 for i in ids]
            )


@pytest.mark.slow
def test_streaming_memory_does_not_grow_with_the_collection(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    n, dim = 20_000, 128
    _bulk_collection(database, n, dim)
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session), SplitSpec.parse("0.8,0.1,0.1"))
    total_vector_bytes = n * dim * 4  # 10 MB
    peaks = {}
    for name, stream in (
        ("npy", lambda: stream_npy(database, spec, batch_size=500)),
        ("csv", lambda: stream_csv(database, spec, batch_size=500)),
        ("parquet", lambda: stream_parquet(database, spec, batch_size=500)),
    ):
        sum(1 for _ in stream())  # first use: one-time imports and caches are not the export
        tracemalloc.start()
        size = sum(len(chunk) for chunk in stream())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[name] = peak
        assert size > 0
    database.dispose()
    # One batch of 500 rows is 256 kB of vectors; the whole export is 10 MB.
    assert max(peaks.values()) < total_vector_bytes / 4, peaks
