"""Hostile clients without an API key (issue 19): foreign Host headers (DNS rebinding),
cross-site state changes, stalled upload bodies and too many open bodies per client."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.api.conftest import ALLOWED_ORIGIN, api_settings
from tests.api.live_server import LiveServer


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    """No API key, the defaults for the allowed hosts (ROISEARCH_HOST 127.0.0.1)."""
    return api_settings(settings, api_key=None, allowed_hosts=[], host="127.0.0.1")


@pytest.fixture
def open_client(open_settings: Settings) -> Iterator[TestClient]:
    app = create_app(open_settings, warm_model=False)
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as c:
        yield c


def test_a_foreign_host_header_is_refused(open_client: TestClient) -> None:
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "localhost."):
        assert open_client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        refused = open_client.get("/v1/images", headers={"Host": host})
        assert refused.status_code == 400, host
        assert refused.json()["error"]["code"] == "host_not_allowed"


def test_allowed_hosts_setting(settings: Settings) -> None:
    named = api_settings(settings, allowed_hosts=["api", "search.example"])
    assert named.host_allow_list == {"api", "search.example"}
    assert "evil.example" not in api_settings(settings, allowed_hosts=[]).host_allow_list
    anyone = create_app(api_settings(settings, api_key=None, allowed_hosts=["*"]), warm_model=False)
    with TestClient(anyone, raise_server_exceptions=False) as client:
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


def test_cross_site_state_changes_are_refused(open_client: TestClient) -> None:
    """A multipart POST from a foreign page is a 'simple' request: no preflight, it ran."""
    files = {"files": ("a.png", b"x", "image/png")}
    evil = open_client.post(
        "/v1/ingestions", files=files, headers={"Origin": "http://evil.example"}
    )
    assert evil.status_code == 403 and evil.json()["error"]["code"] == "cross_site_request"
    for headers in (
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:8001"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},  # no Origin, but the browser says cross-site
    ):
        refused = open_client.post("/v1/ingestions", json={"path": "/x"}, headers=headers)
        assert refused.status_code == 403, headers
    deleted = open_client.delete("/v1/ingestions/1", headers={"Origin": "http://evil.example"})
    assert deleted.status_code == 403
    assert open_client.get("/v1/ingestions").json()["page"]["total"] == 0  # nothing ran
    # Reads are not state changes; the server's own pages, the allow-list and non-browser
    # clients pass (to the next check: server-side paths are disabled here).
    assert (
        open_client.get("/v1/images", headers={"Origin": "http://evil.example"}).status_code == 200
    )
    for headers in (
        {"Origin": "http://127.0.0.1:8000"},
        {"Origin": ALLOWED_ORIGIN},
        {},
        {"Sec-Fetch-Site": "same-origin"},
    ):
        passed = open_client.post("/v1/ingestions", json={"path": "/x"}, headers=headers)
        assert passed.json()["error"]["code"] == "path_not_allowed", headers


@pytest.fixture
def stall_server(settings: Settings) -> Iterator[LiveServer]:
    app = create_app(
        api_settings(
            settings, api_key=None, body_stall_timeout_s=1.0, max_open_bodies_per_client=4
        ),
        warm_model=False,
    )
    with LiveServer(app) as server:
        yield server


def _start_upload(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/ingestions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
        b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    )
    return sock


def _response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pass
    return received


def test_a_stalled_upload_body_is_dropped_with_408(stall_server: LiveServer) -> None:
    """Issue 19.4: 50 connections with half a body sent were all still open after 120 s."""
    sock = _start_upload(stall_server.url)
    start = time.monotonic()
    answer = _response(sock, timeout=15)
    took = time.monotonic() - start
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body_stalled" in answer
    assert took < 10  # 1 s configured; the connection was closed too (recv returned b"")


def test_a_slow_but_moving_body_is_not_cut(stall_server: LiveServer) -> None:
    sock = _start_upload(stall_server.url)
    for _ in range(4):  # 2 s in all, never 1 s without a byte
        time.sleep(0.5)
        sock.sendall(b"x" * 10)
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # no answer yet: still receiving
        sock.recv(1)
    sock.close()


def test_open_bodies_per_client_are_bounded(stall_server: LiveServer) -> None:
    held = [_start_upload(stall_server.url) for _ in range(4)]
    time.sleep(0.2)  # the four are in the application, each waiting for its body
    extra = _start_upload(stall_server.url)
    answer = _response(extra, timeout=0.8)
    assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
    assert b"too_many_open_bodies" in answer
    for sock in held:
        sock.close()
    extra.close()
    with httpx.Client(base_url=stall_server.url) as http:
        assert http.get("/healthz").status_code == 200
