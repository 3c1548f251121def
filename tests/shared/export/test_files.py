"""Directory exports (.npy + CSV + Parquet), with and without a split, on both databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared.db.database import Database
from shared.export.files import export_directory
from shared.export.rows import ExportSpec
from shared.export.splits import SplitSpec
from shared.reports.errors import ReportError
from shared.reports.selection import resolve_selection
from shared.selection import Selection
from shared.settings import Settings
from tests.factories import CLASSES, Collection, seed_clustered


@pytest.fixture
def collection(settings: Settings, database: Database) -> Collection:
    return seed_clustered(settings, database, images=30, objects_per_image=3, duplicates=2)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_part(folder: Path, collection: Collection) -> list[int]:
    """The three files of one folder agree with each other and with the database."""
    vectors = np.load(folder / "vectors.npy")
    rows = read_csv(folder / "objects.csv")
    table = pq.read_table(folder / "objects.parquet").to_pydict()
    ids = [int(r["object_id"]) for r in rows]
    assert ids == sorted(ids) == table["object_id"]
    assert vectors.shape == (len(ids), 32) and vectors.dtype == np.float32
    for i, object_id in enumerate(ids):
        stored = collection.vectors[object_id]
        # Round trip: exactly the stored float32 values, in .npy and in Parquet.
        assert vectors[i].tobytes() == stored.astype("<f4").tobytes()
        assert np.array_equal(np.array(table["vector"][i], dtype=np.float32), stored)
        assert int(rows[i]["image_id"]) == collection.image_of[object_id]
        assert rows[i]["class_name"] == CLASSES[collection.class_of[object_id]]
        assert int(rows[i]["class_id"]) == collection.class_of[object_id]
    assert table["x2"][0] - table["x1"][0] == 20.0
    return ids


def test_export_without_split(tmp_path: Path, database: Database, collection: Collection) -> None:
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session))
    manifest = export_directory(database, spec, tmp_path / "out", batch_size=7)
    ids = check_part(tmp_path / "out", collection)
    assert ids == sorted(collection.object_ids)
    assert manifest["rows"] == {"all": len(ids)}
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["class_names"] == CLASSES and on_disk["dim"] == 32
    assert "split" not in read_csv(tmp_path / "out" / "objects.csv")[0]


def test_split_never_shares_an_image(
    tmp_path: Path, database: Database, collection: Collection
) -> None:
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session), SplitSpec.parse("0.6,0.2,0.2", seed=1))
    manifest = export_directory(database, spec, tmp_path / "out", batch_size=10)
    images: dict[str, set[int]] = {}
    all_ids: list[int] = []
    for part in ("train", "val", "test"):
        ids = check_part(tmp_path / "out" / part, collection)
        assert manifest["rows"][part] == len(ids) > 0
        rows = read_csv(tmp_path / "out" / part / "objects.csv")
        assert {r["split"] for r in rows} == {part}
        images[part] = {collection.image_of[o] for o in ids}
        all_ids += ids
    assert not images["train"] & images["val"]
    assert not images["train"] & images["test"]
    assert not images["val"] & images["test"]
    assert sorted(all_ids) == sorted(collection.object_ids)
    # Same seed, same split; a part alone is exactly that part.
    only = ExportSpec(spec.selection, spec.split, part=1)
    export_directory(database, only, tmp_path / "val-only", formats=("npy", "csv"))
    assert (tmp_path / "val-only" / "val" / "vectors.npy").is_file()
    assert not (tmp_path / "val-only" / "train").exists()
    assert not (tmp_path / "val-only" / "val" / "objects.parquet").exists()
    assert read_csv(tmp_path / "val-only" / "val" / "objects.csv") == read_csv(
        tmp_path / "out" / "val" / "objects.csv"
    )


def test_part_needs_a_split(database: Database, collection: Collection) -> None:
    with database.read() as session:
        selection = resolve_selection(session)
    with pytest.raises(ReportError) as info:
        ExportSpec(selection, split=None, part=0)
    assert info.value.code == "invalid_split"


def test_unknown_format_is_refused(
    tmp_path: Path, database: Database, collection: Collection
) -> None:
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session))
    with pytest.raises(ValueError, match="feather"):
        export_directory(database, spec, tmp_path / "x", formats=("npy", "feather"))


def test_class_filter_exports_only_that_class(
    tmp_path: Path, database: Database, collection: Collection
) -> None:
    with database.read() as session:
        spec = ExportSpec(resolve_selection(session, Selection(classes=("boat",))))
    export_directory(database, spec, tmp_path / "boats")
    ids = check_part(tmp_path / "boats", collection)
    assert set(ids) == {o for o, c in collection.class_of.items() if c == 3}
