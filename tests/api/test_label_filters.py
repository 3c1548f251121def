"""Search filters for labelled boxes (issue 20): origin=label|detection, label_classes=…, and
the hits saying where each box comes from."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shared.db.models import DetectedObject, ObjectOrigin
from shared.ingestion.label_rows import label_class_ids, label_code
from tests.api.conftest import resources_of
from tests.factories import Seeded

LABELS = ("cat", "dog")


def add_labels(client: TestClient, seeded: Seeded) -> dict[int, str]:
    """A labelled box on each seeded object (same vector, nudged box): object id → label."""
    resources = resources_of(client)
    added: dict[int, str] = {}
    with resources.db.begin() as session:
        ids = label_class_ids(session, set(LABELS))
        for n, object_id in enumerate(seeded.object_ids):
            obj = session.get(DetectedObject, object_id)
            assert obj is not None
            name = LABELS[n % 2]
            label = DetectedObject(
                image_id=obj.image_id,
                space_id=obj.space_id,
                ordinal=-1 - n,
                x1=obj.x1 + 1,
                y1=obj.y1,
                x2=obj.x2,
                y2=obj.y2,
                class_id=label_code(ids[name]),
                class_name=name,
                score=1.0,
                vector=obj.vector,
                origin=ObjectOrigin.LABEL,
                label_class_id=ids[name],
            )
            session.add(label)
            session.flush()
            added[label.id] = name
    resources.index.sync_once()
    return added


def test_origin_and_label_class_filters(client: TestClient, seeded: Seeded) -> None:
    labels = add_labels(client, seeded)
    url = f"/v1/objects/{seeded.object_ids[0]}/similar"
    response = client.get(url, params={"k": 50})
    assert response.status_code == 200, response.text
    everything = response.json()["hits"]
    assert len(everything) == 2 * len(seeded.object_ids) - 1

    only_labels = client.get(url, params={"k": 50, "origin": "label"}).json()["hits"]
    assert {h["object_id"] for h in only_labels} == set(labels)
    for hit in only_labels:
        assert hit["origin"] == "label" and hit["label_class"] == labels[hit["object_id"]]
        assert hit["class_name"] == hit["label_class"] and hit["class_id"] < 0

    cats = client.get(url, params={"k": 50, "label_classes": "cat"}).json()["hits"]
    assert {h["object_id"] for h in cats} == {i for i, n in labels.items() if n == "cat"}

    detections = client.get(url, params={"k": 50, "origin": "detection"}).json()["hits"]
    assert len(detections) == len(seeded.object_ids) - 1
    assert all(h["origin"] == "detection" and h["label_class"] is None for h in detections)

    both = client.get(
        url, params={"k": 50, "label_classes": "dog", "classes": everything[0]["class_name"]}
    ).json()["hits"]
    assert {h["origin"] for h in both} == {"label", "detection"}

    unknown = client.get(url, params={"label_classes": "unicorn"})
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "unknown_label_class" and error["details"]["label_classes"] == [
        "cat",
        "dog",
    ]

    detail = client.get(f"/v1/objects/{next(iter(labels))}").json()
    assert detail["origin"] == "label" and detail["label_class"] in LABELS


def test_origin_label_without_labelled_boxes_finds_nothing(
    client: TestClient, seeded: Seeded
) -> None:
    url = f"/v1/objects/{seeded.object_ids[0]}/similar"
    assert client.get(url, params={"origin": "label"}).json()["hits"] == []
