"""The search service: class names per embedding space, read once and shared by threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, update

from shared.db.database import Database
from shared.db.models import EmbeddingSpace
from shared.errors import NotFound, Unavailable
from shared.index import IndexManager
from shared.search.service import SearchService
from shared.settings import Settings
from tests.factories import SEEDED_CLASSES as CLASSES
from tests.factories import seed_collection


def _no_model() -> None:
    raise AssertionError("these searches never need the model")


@pytest.fixture
def service(settings: Settings, database: Database) -> SearchService:
    return SearchService(
        db=database,
        index=IndexManager(settings, database),
        detector=_no_model,  # type: ignore[arg-type]
        max_image_pixels=settings.max_image_pixels,
    )


def test_class_names_are_read_once_per_space(
    settings: Settings, database: Database, service: SearchService
) -> None:
    seeded = seed_collection(settings, database)
    reads: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "class_names" in statement:
            reads.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(service.class_names, [seeded.space_id] * 32))
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert all(a == tuple(CLASSES) for a in answers) and len(reads) == 1
    # Immutable for a space in practice; changed here only to show the memo answers.
    with database.begin() as session:
        session.execute(
            update(EmbeddingSpace)
            .where(EmbeddingSpace.id == seeded.space_id)
            .values(class_names=["x", "y", "z"])
        )
    assert service.class_names(seeded.space_id) == tuple(CLASSES)


def test_an_unknown_space_has_no_class_names_until_it_exists(
    settings: Settings, database: Database, service: SearchService
) -> None:
    assert service.class_names(1) == ()
    later = seed_collection(settings, database, images=1)
    assert later.space_id == 1 and service.class_names(1) == tuple(CLASSES)


def test_a_model_that_cannot_load_is_unavailable_without_its_path(
    settings: Settings, database: Database
) -> None:
    def broken() -> None:
        raise FileNotFoundError("/secret/weights/yolov7.pt")

    service = SearchService(
        db=database,
        index=IndexManager(settings, database),
        detector=broken,  # type: ignore[arg-type]
        max_image_pixels=settings.max_image_pixels,
    )
    with pytest.raises(Unavailable) as info:
        service.model()
    assert info.value.code == "model_unavailable" and "/secret" not in info.value.message
    assert "FileNotFoundError" in info.value.message


def test_similar_needs_an_existing_object(service: SearchService) -> None:
    with pytest.raises(NotFound) as info:
        service.similar(12345, 5)
    assert (info.value.code, info.value.message) == (
        "object_not_found",
        "object 12345 does not exist",
    )
