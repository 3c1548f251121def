"""Search by stored object and by examples, with filters, on the real index."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.seeding import CLASSES, Seeded

HIT_FIELDS = {
    "score",
    "object_id",
    "class_id",
    "class_name",
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
    other = CLASSES[(seeded.cluster_of[query] + 1) % 3]
    by_class = client.get(url, params={"k": 50, "classes": other}).json()["hits"]
    assert by_class and {h["class_name"] for h in by_class} == {other}
    by_id = client.get(url, params={"k": 50, "classes": CLASSES.index(other)}).json()["hits"]
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
