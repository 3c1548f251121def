"""The process's resources: class names per embedding space, read once and shared by threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import event, update

from shared.db.models import EmbeddingSpace
from tests.api.conftest import resources_of
from tests.api.seeding import CLASSES, Seeded, seed_collection


def test_class_names_are_read_once_per_space(client: TestClient, seeded: Seeded) -> None:
    resources = resources_of(client)
    reads: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "class_names" in statement:
            reads.append(statement)

    event.listen(resources.db.engine, "before_cursor_execute", record)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(resources.search.class_names, [seeded.space_id] * 32))
    finally:
        event.remove(resources.db.engine, "before_cursor_execute", record)
    assert all(a == tuple(CLASSES) for a in answers) and len(reads) == 1
    # Immutable for a space in practice; changed here only to show the memo answers.
    with resources.db.begin() as session:
        session.execute(
            update(EmbeddingSpace)
            .where(EmbeddingSpace.id == seeded.space_id)
            .values(class_names=["x", "y", "z"])
        )
    assert resources.search.class_names(seeded.space_id) == tuple(CLASSES)


def test_an_unknown_space_has_no_class_names_until_it_exists(client: TestClient) -> None:
    resources = resources_of(client)
    assert resources.search.class_names(1) == ()
    later = seed_collection(resources.settings, resources.db, images=1)
    assert later.space_id == 1 and resources.search.class_names(1) == tuple(CLASSES)
