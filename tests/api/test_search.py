"""Search by stored object and by examples, with filters, on the real index; hits as the
database has them; deletions through the API."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Row, select

from shared.db.models import DetectedObject
from shared.selection import Selection
from tests.api.conftest import resources_of
from tests.factories import DIM, SEEDED_CLASSES, Seeded, add_object

HIT_FIELDS = {
    "score",
    "object_id",
    "class_id",
    "class_name",
    "origin",
    "label_class",
    "detector_score",
    "box",
    "image_id",
    "image_url",
    "crop_url",
}


def same_cluster(seeded: Seeded, object_id: int) -> set[int]:
    cluster = seeded.cluster_of[object_id]
    return {o for o, c in seeded.cluster_of.items() if c == cluster and o != object_id}


def test_similar_ranks_the_objects_cluster_first(client: TestClient, seeded: Seeded) -> None:
    query = seeded.object_ids[0]
    body = client.get(f"/v1/objects/{query}/similar", params={"k": 5}).json()
    assert body["query"]["id"] == query
    hits = body["hits"]
    assert len(hits) == 5 and set(hits[0]) == HIT_FIELDS
    assert {h["object_id"] for h in hits} == same_cluster(seeded, query)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.9
    assert query not in {h["object_id"] for h in hits}
    hit = hits[0]
    assert hit["crop_url"] == f"/v1/objects/{hit['object_id']}/crop.jpg"
    assert hit["image_url"] == f"/v1/images/{hit['image_id']}/file"
    with_self = client.get(
        f"/v1/objects/{query}/similar", params={"k": 1, "include_self": True}
    ).json()
    assert with_self["hits"][0]["object_id"] == query


def test_filters(client: TestClient, seeded: Seeded) -> None:
    query = seeded.object_ids[0]
    url = f"/v1/objects/{query}/similar"
    other = SEEDED_CLASSES[(seeded.cluster_of[query] + 1) % 3]
    by_class = client.get(url, params={"k": 50, "classes": other}).json()["hits"]
    assert by_class and {h["class_name"] for h in by_class} == {other}
    by_id = client.get(url, params={"k": 50, "classes": SEEDED_CLASSES.index(other)}).json()["hits"]
    assert [h["object_id"] for h in by_id] == [h["object_id"] for h in by_class]

    strong = client.get(url, params={"k": 50, "min_score": 0.65}).json()["hits"]
    assert strong and all(h["detector_score"] >= 0.65 for h in strong)

    close = client.get(url, params={"k": 50, "min_similarity": 0.9}).json()["hits"]
    assert {h["object_id"] for h in close} == same_cluster(seeded, query)

    big = client.get(url, params={"k": 50, "min_box_side": 17}).json()["hits"]
    assert big and all(
        min(h["box"]["x2"] - h["box"]["x1"], h["box"]["y2"] - h["box"]["y1"]) >= 17 for h in big
    )
    mine = client.get(url, params={"k": 50, "ingestions": seeded.ingestion_id}).json()["hits"]
    assert len(mine) == len(seeded.object_ids) - 1
    assert client.get(url, params={"ingestions": 9999}).json()["hits"] == []

    unknown = client.get(url, params={"classes": "unicorn"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_class"
    # the message lists the classes the user can choose from (issue 17 §3)
    names = unknown.json()["error"]["details"]["classes"]
    assert (
        f"this space has {len(names)} classes: {', '.join(names)}"
        in (unknown.json()["error"]["message"])
    )


def test_group_by_image(client: TestClient, seeded: Seeded) -> None:
    query = seeded.object_ids[0]
    body = client.get(f"/v1/objects/{query}/similar", params={"k": 3, "group_by": "image"}).json()
    groups = body["groups"]
    assert len(groups) == 3
    assert len({g["image_id"] for g in groups}) == 3
    for group in groups:
        assert all(h["image_id"] == group["image_id"] for h in group["hits"])
        assert group["score"] == group["hits"][0]["score"]
    assert [g["score"] for g in groups] == sorted((g["score"] for g in groups), reverse=True)


def test_search_by_examples(client: TestClient, seeded: Seeded) -> None:
    a, b = sorted(same_cluster(seeded, seeded.object_ids[0]))[:2]
    body = client.post("/v1/search/examples", json={"positive": [a, b]}, params={"k": 4}).json()
    ids = {h["object_id"] for h in body["hits"]}
    assert ids == same_cluster(seeded, a) - {b}
    assert not {a, b} & ids

    negative = next(o for o, c in seeded.cluster_of.items() if c != seeded.cluster_of[a])
    body = client.post(
        "/v1/search/examples", json={"positive": [a], "negative": [negative]}, params={"k": 50}
    ).json()
    assert negative not in {h["object_id"] for h in body["hits"]}
    assert body["hits"][0]["object_id"] in same_cluster(seeded, a)
    assert body["hits"][-1]["object_id"] in same_cluster(seeded, negative) | {negative}

    missing = client.post("/v1/search/examples", json={"positive": [a, 777777]})
    assert missing.status_code == 404 and "777777" in missing.json()["error"]["message"]
    empty = client.post("/v1/search/examples", json={"positive": []})
    assert empty.status_code == 422
    extra = client.post("/v1/search/examples", json={"positive": [a], "bogus": 1})
    assert extra.status_code == 422
    cancel = client.post("/v1/search/examples", json={"positive": [a], "negative": [a]})
    assert cancel.status_code == 200  # an id given as both counts as positive only


# (id, image_id, class_id, class_name, score, x1, y1, x2, y2) as database_rows selects them.
ObjectRow = Row[int, int, int, str, float, float, float, float, float]


def database_rows(client: TestClient, object_ids: set[int]) -> dict[int, ObjectRow]:
    with resources_of(client).db.read() as session:
        rows = session.execute(
            select(
                DetectedObject.id,
                DetectedObject.image_id,
                DetectedObject.class_id,
                DetectedObject.class_name,
                DetectedObject.score,
                DetectedObject.x1,
                DetectedObject.y1,
                DetectedObject.x2,
                DetectedObject.y2,
            ).where(DetectedObject.id.in_(object_ids))
        ).all()
    return {row.id: row for row in rows}


def add_awkward_object(client: TestClient, seeded: Seeded) -> int:
    """An object whose values float32 cannot hold exactly: a box scaled back to the original
    image (doubles) and a detector score (a float32 stored as a double)."""
    vector = np.random.default_rng(7).normal(size=DIM).astype(np.float32)
    vector /= np.linalg.norm(vector)
    with resources_of(client).db.begin() as session:
        return add_object(
            session,
            image_id=seeded.image_ids[0],
            space_id=seeded.space_id,
            ordinal=50,
            box=(10.123456789, 3.3, 61.98765432, 47.000001),
            class_id=1,
            class_name=SEEDED_CLASSES[1],
            score=float(np.float32(0.8734567)),
            vector=vector,
        )


def test_hits_show_the_database_values(client: TestClient, seeded: Seeded) -> None:
    """Hits come from the index's memory, not the database: same fields, same values (to
    float32 precision), and no float32 noise in the JSON."""
    awkward = add_awkward_object(client, seeded)
    resources_of(client).index.sync_once()
    query = seeded.object_ids[0]
    hits = client.get(f"/v1/objects/{query}/similar", params={"k": 50}).json()["hits"]
    itself = client.get(
        f"/v1/objects/{awkward}/similar", params={"k": 1, "include_self": True}
    ).json()["hits"]
    assert [h["object_id"] for h in itself] == [awkward]
    hits += itself
    rows = database_rows(client, {h["object_id"] for h in hits})
    assert set(rows) == set(seeded.object_ids) - {query} | {awkward}
    for hit in hits:
        row = rows[hit["object_id"]]
        assert set(hit) == HIT_FIELDS
        assert (hit["class_id"], hit["class_name"], hit["image_id"]) == (
            row.class_id,
            row.class_name,
            row.image_id,
        )
        box = {"x1": row.x1, "y1": row.y1, "x2": row.x2, "y2": row.y2}
        if hit["object_id"] == awkward:
            assert hit["detector_score"] == pytest.approx(row.score, abs=1e-7)
            assert hit["box"] == pytest.approx(box, abs=1e-3)
        else:  # short decimals come back exactly, as the database has them
            assert hit["detector_score"] == row.score and hit["box"] == box
        for value in (hit["detector_score"], *hit["box"].values()):
            assert round(value, 7) == value, value  # e.g. 12.3, never 12.300000190734863
        assert hit["image_url"] == f"/v1/images/{row.image_id}/file"
        assert hit["crop_url"] == f"/v1/objects/{row.id}/crop.jpg"


def test_objects_deleted_through_the_api_never_appear_in_hits_again(
    client: TestClient, seeded: Seeded
) -> None:
    resources = resources_of(client)
    image_id = seeded.image_ids[1]
    with resources.db.read() as session:
        gone = set(
            session.scalars(select(DetectedObject.id).where(DetectedObject.image_id == image_id))
        )
    survivors = [o for o in seeded.object_ids if o not in gone]
    assert len(gone) == 3

    def found() -> set[int]:
        ids: set[int] = set()
        for query in survivors:
            body = client.get(f"/v1/objects/{query}/similar", params={"k": 50}).json()
            ids |= {h["object_id"] for h in body["hits"]}
        body = client.post(
            "/v1/search/examples", json={"positive": survivors[:2]}, params={"k": 50}
        ).json()
        return ids | {h["object_id"] for h in body["hits"]}

    assert gone <= found()
    assert client.delete(f"/v1/images/{image_id}").status_code == 200
    assert found() == set(survivors)  # at once, before this process's catch-up ran
    resources.index.sync_once()  # the deletion's tombstones are applied
    assert found() == set(survivors)
    resources.index.rebuild(seeded.space_id)  # a fresh index, read from the database
    assert found() == set(survivors)


def test_search_by_id_waits_for_an_index_update_off_the_event_loop(
    client: TestClient, seeded: Seeded
) -> None:
    """A search by id on SQLite with a small index runs on the event loop; when a writer holds
    the index it must wait in the thread pool, never block the loop: other requests (health)
    are answered meanwhile, and the search answers once the writer is done."""
    resources = resources_of(client)
    if resources.db.dialect == "sqlite":
        assert resources.index.searches_are_cheap()  # so the loop tries the search first
    query = seeded.object_ids[0]
    expected = client.get(f"/v1/objects/{query}/similar", params={"k": 5}).json()
    assert "index;dur=" in client.get(f"/v1/objects/{query}/similar").headers["Server-Timing"]
    lock = resources.index._spaces[seeded.space_id].lock
    holding, release = threading.Event(), threading.Event()
    answers: dict[str, Any] = {}

    def writer() -> None:
        with lock.write():
            holding.set()
            release.wait(10)

    def search() -> None:
        answers["search"] = client.get(f"/v1/objects/{query}/similar", params={"k": 5})

    w = threading.Thread(target=writer)
    w.start()
    holding.wait()
    s = threading.Thread(target=search)
    s.start()
    started = time.monotonic()
    health = client.get("/healthz")  # served while the search waits for the index
    assert health.status_code == 200 and time.monotonic() - started < 2
    assert s.is_alive()  # still waiting for the writer
    release.set()
    s.join(timeout=10)
    w.join(timeout=10)
    assert answers["search"].status_code == 200
    assert answers["search"].json() == expected


def test_filtered_search_by_id_runs_in_the_thread_pool_with_the_same_results(
    client: TestClient, seeded: Seeded
) -> None:
    query = seeded.object_ids[0]
    plain = client.get(f"/v1/objects/{query}/similar", params={"k": 50}).json()["hits"]
    # min_score 0 restricts nothing in effect but builds a candidate mask (the slow path).
    assert not resources_of(client).search.runs_inline(Selection(min_score=0.0))
    masked = client.get(f"/v1/objects/{query}/similar", params={"k": 50, "min_score": 0.0}).json()[
        "hits"
    ]
    assert [h["object_id"] for h in masked] == [h["object_id"] for h in plain]
