"""Listings of images and objects: keyset cursors (after/before, next/prev), offset pages, and
the search filters (same parameter names as the searches), on both database backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import SEEDED_CLASSES as CLASSES
from tests.factories import Seeded

# seed_collection (tests/factories): image i has objects j = 0, 1, 2 of class (i + j) % 3,
# detector score
# 0.5 + 0.1 j and box sides 16 + 2 j.


def _walk(client: TestClient, path: str, key: str, **params: Any) -> list[list[int]]:
    """Follow ``next`` from the first page to the last; the pages' ids."""
    pages: list[list[int]] = []
    body = client.get(path, params=params).json()
    while True:
        pages.append([item["id"] for item in body[key]])
        if body["next"] is None:
            return pages
        assert len(pages) < 50, "next never ends"
        body = client.get(path, params={**params, "after": body["next"]}).json()


@pytest.mark.parametrize(("path", "key"), [("/v1/images", "images"), ("/v1/objects", "objects")])
def test_keyset_pages_cover_everything_once_in_order(
    client: TestClient, seeded: Seeded, path: str, key: str
) -> None:
    everything = seeded.image_ids if key == "images" else seeded.object_ids
    pages = _walk(client, path, key, page_size=4)
    assert [i for page in pages for i in page] == sorted(everything)
    assert all(len(page) == 4 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 4

    # Backwards from the last page with `prev` / `before` gives the same pages.
    last = client.get(path, params={"page_size": 4, "after": pages[-2][-1]}).json()
    assert [i["id"] for i in last[key]] == pages[-1] and last["next"] is None
    back = client.get(path, params={"page_size": 4, "before": last["prev"]}).json()
    assert [i["id"] for i in back[key]] == pages[-2]
    assert back["next"] == pages[-2][-1]
    first = client.get(path, params={"page_size": 4, "before": pages[1][0]}).json()
    assert [i["id"] for i in first[key]] == pages[0] and first["prev"] is None
    # Offset pages count the matches; keyset pages skip the count (it scans them all).
    assert first["page"]["total"] is None and last["page"]["total"] is None
    assert client.get(path, params={"page_size": 4}).json()["page"]["total"] == len(everything)


@pytest.mark.parametrize(("path", "key"), [("/v1/images", "images"), ("/v1/objects", "objects")])
def test_offset_pages_still_work_and_give_cursors(
    client: TestClient, seeded: Seeded, path: str, key: str
) -> None:
    everything = sorted(seeded.image_ids if key == "images" else seeded.object_ids)
    second = client.get(path, params={"page_size": 2, "page": 2}).json()
    assert [i["id"] for i in second[key]] == everything[2:4]
    assert second["page"] == {"page": 2, "page_size": 2, "total": len(everything)}
    assert second["prev"] == everything[2] and second["next"] == everything[3]
    # A client can switch to keyset paging from any offset page.
    after = client.get(path, params={"page_size": 2, "after": second["next"]}).json()
    assert [i["id"] for i in after[key]] == everything[4:6]
    last = client.get(path, params={"page_size": 2, "page": len(everything) // 2}).json()
    assert last["next"] is None


def test_object_filters_use_the_search_parameter_names(client: TestClient, seeded: Seeded) -> None:
    objects = client.get("/v1/objects", params={"classes": "cat", "page_size": 20}).json()
    # Class cat (0) is j = -i mod 3: one object in each of the 6 images.
    assert objects["page"]["total"] == 6
    assert {o["class_name"] for o in objects["objects"]} == {"cat"}
    by_id = client.get("/v1/objects", params={"classes": "1,car", "page_size": 20}).json()
    assert {o["class_name"] for o in by_id["objects"]} == {"dog", "car"}
    assert by_id["page"]["total"] == 12

    scored = client.get("/v1/objects", params={"min_score": 0.65, "page_size": 20}).json()
    assert scored["page"]["total"] == 6  # only j = 2 (score 0.7)
    assert all(o["detector_score"] >= 0.65 for o in scored["objects"])
    sided = client.get("/v1/objects", params={"min_box_side": 18, "page_size": 20}).json()
    assert sided["page"]["total"] == 12  # j = 1, 2 (sides 18, 20)

    ingestion = client.get(
        "/v1/objects", params={"ingestions": seeded.ingestion_id, "page_size": 20}
    ).json()
    assert ingestion["page"]["total"] == len(seeded.object_ids)
    assert client.get("/v1/objects", params={"ingestions": 999}).json()["page"]["total"] == 0
    # The older parameters keep working, combined with the filters.
    legacy = client.get(
        "/v1/objects", params={"class_name": "cat", "image_id": seeded.image_ids[0]}
    ).json()
    assert [o["class_name"] for o in legacy["objects"]] == ["cat"]


def test_image_filters_keep_images_with_a_matching_object(
    client: TestClient, seeded: Seeded
) -> None:
    # Image i has classes {i, i+1, i+2} mod 3: all three, so a class keeps every image...
    assert client.get("/v1/images", params={"classes": "dog"}).json()["page"]["total"] == 6
    # ... but together with a score only the images whose object j=2 has that class.
    strict = client.get("/v1/images", params={"classes": "dog", "min_score": 0.65}).json()
    expected = [image for i, image in enumerate(seeded.image_ids) if (i + 2) % 3 == 1]
    assert [i["id"] for i in strict["images"]] == expected
    assert strict["images"][0]["object_count"] == 3  # counts all its objects
    assert client.get("/v1/images", params={"min_score": 0.95}).json()["page"]["total"] == 0
    both = client.get(
        "/v1/images", params={"ingestions": seeded.ingestion_id, "ingestion_id": 999}
    ).json()
    assert both["page"]["total"] == len(seeded.image_ids)  # any of the ingestions
    assert CLASSES  # the seeding's classes are the ones used above


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": 1, "before": 5}, "before"),
        ({"after": 1, "page": 2}, "page"),
        ({"min_similarity": 0.5}, "min_similarity"),
        ({"group_by": "image"}, "group_by"),
        ({"after": -1}, "after"),
    ],
)
def test_bad_listing_parameters_are_a_clear_422(
    client: TestClient, seeded: Seeded, params: dict[str, Any], field: str
) -> None:
    for path in ("/v1/images", "/v1/objects"):
        response = client.get(path, params=params)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in str(error["details"]) or field in error["message"]
