"""Resolving selections and reading them in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from shared.db.database import Database
from shared.db.models import DetectedObject, Ingestion
from shared.reports.errors import ReportError
from shared.reports.selection import (
    count_objects,
    decode_vectors,
    fetch_objects,
    ingestions_of,
    iter_batches,
    iter_keys,
    resolve_selection,
)
from shared.selection import Selection, SelectionError
from shared.settings import Settings
from tests.factories import Collection, add_object, seed_clustered, space_row


@pytest.fixture
def collection(settings: Settings, database: Database) -> Collection:
    return seed_clustered(settings, database, images=12, objects_per_image=3, duplicates=1)


def test_everything_by_default_in_id_order(database: Database, collection: Collection) -> None:
    with database.read() as session:
        selection = resolve_selection(session)
        assert count_objects(session, selection) == len(collection.object_ids)
    assert selection.space_id == collection.space_id and selection.dim == 32
    batches = list(iter_batches(database, selection, batch_size=5))
    assert all(len(b) <= 5 for b in batches)
    ids = np.concatenate([b.ids for b in batches])
    assert ids.tolist() == sorted(collection.object_ids)
    for batch in batches:
        assert batch.vectors is not None
        for object_id, vector in zip(batch.ids.tolist(), batch.vectors, strict=True):
            assert np.array_equal(vector, collection.vectors[object_id])
    keys = np.concatenate([k for k, _ in iter_keys(database, selection, batch_size=7)])
    assert keys.tolist() == ids.tolist()


def test_filters_by_class_ingestion_and_score(database: Database, collection: Collection) -> None:
    with database.read() as session:
        cars = resolve_selection(
            session,
            Selection(
                classes=(
                    "car",
                    "0",
                )
            ),
        )  # a name and an id ("cat")
        first = resolve_selection(session, Selection(ingestions=(collection.ingestion_ids[0],)))
        confident = resolve_selection(session, Selection(min_score=0.45))
    got = np.concatenate([b.ids for b in iter_batches(database, cars, with_vectors=False)])
    assert set(got.tolist()) == {o for o, c in collection.class_of.items() if c in (0, 2)}
    assert cars.describe()["classes"] == ["cat", "car"]
    got = np.concatenate([b.ids for b in iter_batches(database, first)])
    expected = {
        o
        for o, image in collection.image_of.items()
        if collection.ingestion_of_image[image] == collection.ingestion_ids[0]
    }
    assert set(got.tolist()) == expected
    batches = list(iter_batches(database, confident))
    assert all(float(b.scores.min()) >= 0.45 for b in batches)


def test_objects_added_later_are_not_read(
    settings: Settings, database: Database, collection: Collection
) -> None:
    with database.read() as session:
        selection = resolve_selection(session)
    with database.begin() as session:
        obj = session.get(DetectedObject, collection.object_ids[0])
        assert obj is not None
        add_object(
            session,
            image_id=obj.image_id,
            space_id=obj.space_id,
            ordinal=99,
            box=(0, 0, 1, 1),
            class_id=0,
            class_name="cat",
            score=0.9,
            vector=np.frombuffer(obj.vector, "<f4"),
        )
    got = np.concatenate([b.ids for b in iter_batches(database, selection)])
    assert got.size == len(collection.object_ids)


def test_fetch_objects_keeps_the_order_asked(database: Database, collection: Collection) -> None:
    with database.read() as session:
        selection = resolve_selection(session)
    wanted = np.array(collection.object_ids[::-3], dtype=np.int64)
    batch = fetch_objects(database, selection, wanted)
    assert batch.ids.tolist() == wanted.tolist()
    assert batch.vectors is not None
    assert np.array_equal(batch.vectors[0], collection.vectors[int(wanted[0])])


def test_ingestions_of_images(database: Database, collection: Collection) -> None:
    with database.read() as session:
        found = ingestions_of(session, collection.image_ids[:4])
    assert found == {i: [collection.ingestion_of_image[i]] for i in collection.image_ids[:4]}


def test_bad_selections_are_named(database: Database, collection: Collection) -> None:
    with database.read() as session:
        with pytest.raises(SelectionError) as info:
            resolve_selection(
                session,
                Selection(
                    classes=(
                        "car",
                        "zebra",
                        "99",
                    )
                ),
            )
        assert info.value.code == "unknown_class"
        assert "'zebra'" in info.value.message and "'99'" in info.value.message
        assert info.value.details["classes"] == ["cat", "dog", "car", "boat"]
        with pytest.raises(SelectionError) as info:
            resolve_selection(session, Selection(ingestions=(collection.ingestion_ids[0], 777)))
        assert info.value.code == "ingestion_not_found" and "777" in info.value.message
        with pytest.raises(SelectionError) as info:
            resolve_selection(session, Selection(space_id=555))
        assert info.value.code == "space_not_found"


def test_several_spaces_need_a_choice(
    settings: Settings, database: Database, collection: Collection
) -> None:
    other = seed_clustered(
        settings, database, images=2, objects_per_image=1, duplicates=0, space_key="other", seed=3
    )
    with database.read() as session:
        with pytest.raises(SelectionError) as info:
            resolve_selection(session)
        assert info.value.code == "space_required"
        assert info.value.details == {"space_ids": [collection.space_id, other.space_id]}
        chosen = resolve_selection(session, Selection(space_id=other.space_id))
        assert count_objects(session, chosen) == 2


def test_empty_database(database: Database) -> None:
    with database.read() as session, pytest.raises(SelectionError) as info:
        resolve_selection(session)
    assert info.value.code == "empty_selection"


def test_space_without_objects_counts_zero(database: Database) -> None:
    with database.begin() as session:
        space = space_row("empty", 8, ["a"], weights_sha256="2" * 64, architecture="x", spec={})
        session.add_all([space, Ingestion(source="s", source_kind="zip")])
        session.flush()
        space_id = space.id
    with database.read() as session:
        selection = resolve_selection(session, Selection(space_id=space_id))
        assert count_objects(session, selection) == 0
    assert list(iter_batches(database, selection)) == []


def test_wrong_vector_length_names_the_object() -> None:
    with pytest.raises(ReportError) as info:
        decode_vectors([b"\x00" * 16, b"\x00" * 12], [5, 6], 4)
    assert info.value.code == "bad_vector" and "object 6" in info.value.message
