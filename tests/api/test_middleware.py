"""Auth, body limits, CORS, load shedding and the common error format, on the real app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from api.middleware import BodySizeLimitMiddleware, SearchSheddingMiddleware
from tests.api.conftest import ALLOWED_ORIGIN, API_KEY, MiB
from tests.api.live_server import LiveServer
from tests.factories import Seeded, png_bytes


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    text = response.text
    assert "Traceback" not in text and "/work/" not in text and "/tmp/" not in text
    return dict(body["error"])


class CountingBody:
    """A request body generator that records how many bytes the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024, field: str = "image") -> None:
        self.total, self.chunk, self.consumed = total, chunk, 0
        # a well-formed multipart start, so that a parser would keep reading the file part
        self.prefix = (
            f'--x\r\nContent-Disposition: form-data; name="{field}"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()

    def __iter__(self) -> Iterator[bytes]:
        self.consumed += len(self.prefix)
        yield self.prefix
        while self.consumed < self.total:
            self.consumed += self.chunk
            yield b"\0" * self.chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def asgi_post(
    client: TestClient, path: str, body: CountingBody, headers: dict[str, str]
) -> httpx.Response:
    """POST through httpx's ASGI transport, which pulls the body lazily as the app reads it
    (Starlette's TestClient reads the whole body first). The app's lifespan is the client's."""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(path, content=body.__aiter__(), headers=headers)

    return asyncio.run(post())


def test_missing_and_wrong_key_are_401_and_health_is_public(client: TestClient) -> None:
    anonymous = {"X-API-Key": ""}
    client.headers.pop("X-API-Key")
    assert_error(client.get("/v1/images"), 401, "unauthorized")
    error = assert_error(
        client.get("/v1/images", headers={"X-API-Key": "nope"}), 401, "unauthorized"
    )
    assert "wrong API key" in str(error["message"])
    assert_error(client.get("/metrics"), 401, "unauthorized")
    assert_error(client.get("/v1/index/status", headers=anonymous), 401, "unauthorized")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in {200, 503}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/images", headers={"X-API-Key": API_KEY}).status_code == 200


def test_unknown_route_wrong_method_and_validation_errors_share_one_format(
    client: TestClient,
) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.put("/v1/images"), 405, "method_not_allowed")
    error = assert_error(client.get("/v1/images", params={"page": "zero"}), 422, "validation_error")
    assert error["details"] and "page" in str(error["details"])
    error = assert_error(
        client.get("/v1/images", params={"page_size": 21}), 422, "validation_error"
    )
    assert "20" in str(error["message"])
    assert_error(client.get("/v1/objects/1/similar", params={"k": 0}), 422, "validation_error")
    error = assert_error(
        client.get("/v1/objects/1/similar", params={"k": 10**6}), 422, "validation_error"
    )
    assert "limit of 50" in str(error["message"])
    assert_error(client.get("/v1/objects/abc"), 422, "validation_error")
    assert_error(client.get("/v1/objects/999999"), 404, "object_not_found")


def test_declared_oversized_body_is_refused_before_reading(client: TestClient) -> None:
    body = CountingBody(64 * MiB)
    response = client.post(
        "/v1/search",
        content=body,
        headers={
            "Content-Length": str(64 * MiB),
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert_error(response, 413, "payload_too_large")
    assert body.consumed == 0


def test_streamed_oversized_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    body = CountingBody(64 * MiB)  # chunked: no Content-Length
    response = asgi_post(
        client,
        "/v1/search",
        body,
        {"Content-Type": "multipart/form-data; boundary=x", "X-API-Key": API_KEY},
    )
    assert_error(response, 413, "payload_too_large")
    # limit 2 MiB: the server stopped pulling right after crossing it
    assert body.consumed <= 2 * MiB + 2 * body.chunk
    assert client.get("/healthz").status_code == 200


def test_unauthenticated_upload_is_refused_before_reading(client: TestClient) -> None:
    body = CountingBody(3 * MiB, field="files")
    response = asgi_post(
        client,
        "/v1/ingestions",
        body,
        {"X-API-Key": "wrong", "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert_error(response, 401, "unauthorized")
    assert body.consumed == 0


def test_real_server_stops_reading_an_oversized_streamed_upload(live_server: LiveServer) -> None:
    body = CountingBody(512 * MiB, field="files")
    with httpx.Client(base_url=live_server.url, headers={"X-API-Key": API_KEY}) as http:
        try:
            response = http.post(
                "/v1/ingestions",
                content=body,
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            )
        except httpx.TransportError:
            response = None  # the server closed the socket while we were still sending
        # 4 MiB limit; kernel socket buffers may hold a few MiB more, never the whole 512 MiB
        assert body.consumed < 64 * MiB
        if response is not None:
            assert_error(response, 413, "payload_too_large")
        assert http.get("/healthz").status_code == 200


def test_cors_allow_list(client: TestClient) -> None:
    ok = client.get("/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert ok.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    bad = client.get("/healthz", headers={"Origin": "https://evil.example", "Cookie": "a=b"})
    assert "access-control-allow-origin" not in bad.headers
    preflight = client.options(
        "/v1/search",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key",
            "X-API-Key": "",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    evil = client.options(
        "/v1/search",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers
    # 401s carry CORS headers for allowed origins, so browsers can show the reason
    client.headers.pop("X-API-Key")
    denied = client.get("/v1/images", headers={"Origin": ALLOWED_ORIGIN})
    assert denied.status_code == 401
    assert denied.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN


def test_bad_requests_leave_the_service_serving(client: TestClient, seeded: Seeded) -> None:
    files = {"image": ("x.jpg", b"\xff\xd8\xff\xe0garbage", "image/jpeg")}
    assert client.post("/v1/search", files=files).status_code in {415, 422}
    assert client.post("/v1/search/examples", content=b"{not json").status_code == 422
    assert client.get(f"/v1/objects/{seeded.object_ids[0]}/similar").status_code == 200
    assert client.get(f"/v1/images/{seeded.image_ids[0]}").status_code == 200
    assert png_bytes(4, 4, 0)  # helper sanity: produces a PNG


@pytest.mark.anyio
async def test_shedding_answers_503_when_searches_are_saturated() -> None:
    entered = anyio.Event()
    release = anyio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = SearchSheddingMiddleware(slow_app, limit=1, is_search=lambda m, p: p == "/v1/search")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        async with anyio.create_task_group() as tg:
            results: list[int] = []

            async def first() -> None:
                results.append((await http.post("/v1/search")).status_code)

            tg.start_soon(first)
            await entered.wait()
            shed = await http.post("/v1/search")
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            assert shed.json()["error"]["code"] == "overloaded"
            release.set()
        assert results == [200]
        assert app.in_flight == 0
        assert (await http.post("/v1/search")).status_code == 200


async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.anyio
async def test_body_limit_counts_chunks_of_an_unannounced_body() -> None:
    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    app = BodySizeLimitMiddleware(reader, limit_for=lambda m, p: 1000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        small = await http.post("/", content=chunks([b"a" * 500, b"b" * 500]))
        assert small.status_code == 200
        big = await http.post("/", content=chunks([b"a" * 600, b"b" * 600, b"c" * 600]))
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"
