"""The browse view in Chromium: the landing page of a populated collection, paging, images and
objects, filters kept in the URL (reload, back, forward), opening an image and an object, and
the keyboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.web.pages import (
    PageRun,
    WebServer,
    api_get,
    ids_shown,
    shot,
    wait_js,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TILES = "#browse-grid .image-tile"
OBJECT_TILES = "#browse-grid .object-tile"


def wait_tiles(page: Any, selector: str, expected: list[int], attribute: str) -> None:
    wait_js(
        page,
        f"JSON.stringify([...document.querySelectorAll({selector!r})]"
        f".map(e => Number(e.getAttribute('data-{attribute}')))) === "
        f"{json.dumps(json.dumps(expected, separators=(',', ':')))}",
    )


def test_a_populated_collection_opens_on_its_images(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    listing = api_get(web_server, "/v1/images", page_size=48)
    page.goto(f"{web_server.url}/")
    page.wait_for_url("**#/browse")
    expected = [i["id"] for i in listing["images"]]
    wait_tiles(page, TILES, expected, "image-id")
    assert page.locator(".tabs a.active").inner_text() == "Browse"
    first = page.locator(TILES).first
    image = listing["images"][0]
    assert f"{image['object_count']} object(s)" in first.inner_text()
    # The source without folders; the whole of it in the tooltip.
    assert first.locator(".source").get_attribute("title") == image["source"]
    # Thumbnails are the images with their boxes drawn (fetched with the key).
    wait_js(page, "document.querySelector('#browse-grid .image-tile img').naturalWidth > 0")
    assert "detections.jpg" in page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name).join(' ')"
    )
    assert page.inner_text("#browse-count").startswith(f"{listing['page']['total']} image(s)")
    # The header names the model in use.
    model = api_get(web_server, "/v1/model")
    assert f"{len(model['class_names'])} classes" in page.inner_text("#model-info")
    shot(page, "13-browse-images", full_page=False)


def test_paging_forward_and_back_through_the_url(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    first = api_get(web_server, "/v1/images", page_size=2)
    assert first["next"] is not None, "the web collection has more than 2 images"
    second = api_get(web_server, "/v1/images", page_size=2, after=first["next"])
    page.goto(f"{web_server.url}/#/browse?size=2")
    wait_tiles(page, TILES, [i["id"] for i in first["images"]], "image-id")
    assert page.locator("#browse-prev").is_disabled()

    page.click("#browse-next")
    page.wait_for_url(f"**#/browse?size=2&after={first['next']}")
    wait_tiles(page, TILES, [i["id"] for i in second["images"]], "image-id")
    # The total of the first page stays (keyset pages are not counted again).
    assert page.inner_text("#browse-count").startswith(f"{first['page']['total']} image(s)")

    page.click("#browse-prev")
    page.wait_for_url(f"**#/browse?size=2&before={second['prev']}")
    wait_tiles(page, TILES, [i["id"] for i in first["images"]], "image-id")

    page.go_back()
    page.wait_for_url(f"**after={first['next']}")
    wait_tiles(page, TILES, [i["id"] for i in second["images"]], "image-id")
    page.go_back()
    page.wait_for_url("**#/browse?size=2")
    wait_tiles(page, TILES, [i["id"] for i in first["images"]], "image-id")
    page.go_forward()
    wait_tiles(page, TILES, [i["id"] for i in second["images"]], "image-id")
    # A reload (or a shared link) shows the same page.
    page.reload()
    wait_tiles(page, TILES, [i["id"] for i in second["images"]], "image-id")


def test_objects_and_filters_live_in_the_url(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/browse")
    page.wait_for_selector(TILES)
    page.click("#browse-mode button[data-mode='objects']")
    page.wait_for_url("**#/browse?mode=objects")
    objects = api_get(web_server, "/v1/objects", page_size=48)
    wait_tiles(page, OBJECT_TILES, [o["id"] for o in objects["objects"]], "object-id")
    assert (
        page.locator("#browse-mode button[data-mode='objects']").get_attribute("aria-pressed")
        == "true"
    )

    wanted = objects["objects"][0]["class_name"]
    page.wait_for_selector(f"#f-class option[value='{wanted}']", state="attached")
    page.select_option("#f-class", wanted)
    page.wait_for_url(f"**classes={wanted}**")
    filtered = api_get(web_server, "/v1/objects", page_size=48, classes=wanted)
    wait_tiles(page, OBJECT_TILES, [o["id"] for o in filtered["objects"]], "object-id")
    assert set(page.locator(f"{OBJECT_TILES} .cls").all_inner_texts()) == {wanted}
    # The k control belongs to searches only.
    assert page.locator("#f-k-label").is_hidden()
    shot(page, "14-browse-objects-filtered", full_page=False)

    # Reload: the view, the mode and the filter come back from the URL.
    page.reload()
    wait_tiles(page, OBJECT_TILES, [o["id"] for o in filtered["objects"]], "object-id")
    assert page.eval_on_selector("#f-class", "s => s.value") == wanted
    # Back: the unfiltered objects, with the control showing no class again.
    page.go_back()
    page.wait_for_url("**#/browse?mode=objects")
    wait_tiles(page, OBJECT_TILES, [o["id"] for o in objects["objects"]], "object-id")
    assert page.eval_on_selector("#f-class", "s => s.value") == ""

    # An object opens its similar objects, keeping the filter visibly in the URL.
    page.go_forward()
    wait_tiles(page, OBJECT_TILES, [o["id"] for o in filtered["objects"]], "object-id")
    target = filtered["objects"][0]["id"]
    with page.expect_response(lambda r: f"/v1/objects/{target}/similar" in r.url) as info:
        page.locator(f"{OBJECT_TILES}[data-object-id='{target}'] a.thumb").click()
    assert f"classes={wanted}" in info.value.url
    page.wait_for_url(f"**#/similar/{target}?classes={wanted}")


def test_an_image_opens_with_its_objects(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    image = api_get(web_server, "/v1/images", page_size=48)["images"][0]
    detail = api_get(web_server, f"/v1/images/{image['id']}")
    page.goto(f"{web_server.url}/#/browse")
    page.locator(f"{TILES}[data-image-id='{image['id']}'] a.thumb").click()
    page.wait_for_url(f"**#/image/{image['id']}")
    page.wait_for_selector("#view-image:not([hidden])")
    wait_js(
        page,
        f"document.querySelectorAll('#image-overlay .box').length === {len(detail['objects'])}",
    )
    assert ids_shown(page, "#image-objects .chip", "object-id") == [
        o["id"] for o in detail["objects"]
    ]
    shot(page, "15-image-view", full_page=False)
    # Back returns to the grid.
    page.click("#image-back")
    page.wait_for_url("**#/browse")
    page.wait_for_selector(TILES)


def test_keyboard_moves_through_the_grid_opens_and_goes_back(
    laptop: PageRun, web_server: WebServer
) -> None:
    page = laptop.page
    listing = api_get(web_server, "/v1/objects", page_size=48)
    ids = [o["id"] for o in listing["objects"]]
    assert len(ids) >= 4, "the web collection has a few objects"
    page.goto(f"{web_server.url}/#/browse?mode=objects")
    wait_tiles(page, OBJECT_TILES, ids, "object-id")
    focused = "() => Number(document.activeElement.dataset.objectId)"
    # An arrow key enters the grid; right and left move by one card.
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == ids[0]
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == ids[1]
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == ids[0]
    # Down moves to the card below: same column, next row.
    columns = page.evaluate(
        "() => { const t = [...document.querySelectorAll('#browse-grid .object-tile')];"
        " return t.filter(e => e.offsetTop === t[0].offsetTop).length; }"
    )
    if len(ids) > columns:
        page.keyboard.press("ArrowDown")
        assert page.evaluate(focused) == ids[columns]
        page.keyboard.press("ArrowUp")
        assert page.evaluate(focused) == ids[0]
    # Enter opens the focused object's similar objects; Escape goes back to the grid.
    page.keyboard.press("Enter")
    page.wait_for_url(f"**#/similar/{ids[0]}")
    page.wait_for_selector("#results-head .title")
    page.keyboard.press("Escape")
    page.wait_for_url("**#/browse?mode=objects")
    wait_tiles(page, OBJECT_TILES, ids, "object-id")
