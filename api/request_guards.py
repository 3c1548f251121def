"""Pure-ASGI guards against hostile clients that need no API key to do harm (issue 19).

- :class:`HostGuardMiddleware`: a ``Host`` header outside the allow-list gets 400. A server on
  127.0.0.1 is otherwise reachable from any web page by DNS rebinding (the page's own name
  re-pointed at 127.0.0.1: the browser then calls it same-origin).
- :class:`OriginGuardMiddleware`: a state-changing request (POST, PUT, PATCH, DELETE) sent by a
  browser from another site gets 403. A multipart POST is a CORS "simple" request: it runs
  without a preflight, so CORS alone does not stop it. Allowed: no ``Origin`` (non-browser
  clients), the server's own origin (the web page), and ``ROISEARCH_CORS_ORIGINS``.
- :class:`BodyGuardMiddleware`: a request body that makes no progress for
  ``ROISEARCH_BODY_STALL_TIMEOUT_S`` is dropped with 408, and one client address may send at
  most ``ROISEARCH_MAX_OPEN_BODIES_PER_CLIENT`` bodies at once (429 beyond), so stalled
  uploads cannot hold connections and memory for ever.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import send_error
from api.middleware import CLOSE

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) → lower-case name without brackets, port or None."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


class HostGuardMiddleware:
    """400 ``host_not_allowed`` unless the Host header names an allowed host (``*``: any)."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed
        self.any = "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any:
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        name = split_host(host)[0] if host else ""
        if name not in self.allowed:
            await send_error(
                send,
                400,
                "host_not_allowed",
                f"this server does not answer to the host {name!r}: add it to "
                "ROISEARCH_ALLOWED_HOSTS",
                headers=CLOSE,
            )
            return
        await self.app(scope, receive, send)


class OriginGuardMiddleware:
    """403 ``cross_site_request`` for a state-changing request from a foreign browser origin."""

    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = frozenset(o.strip().rstrip("/").lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            # No Origin: not a browser, or an old one; Fetch Metadata still tells cross-site.
            site = (_header(scope, b"sec-fetch-site") or "").lower()
            if site not in ("cross-site", "same-site"):
                await self.app(scope, receive, send)
                return
            refused = f"a {site} request"
        elif self._allowed(origin.strip().rstrip("/").lower(), scope):
            await self.app(scope, receive, send)
            return
        else:
            refused = f"origin {origin[:200]!r}"
        await send_error(
            send,
            403,
            "cross_site_request",
            f"{scope['method']} from {refused} is refused: only this server's own pages and "
            "the origins in ROISEARCH_CORS_ORIGINS may change data",
            headers=CLOSE,
        )

    def _allowed(self, origin: str, scope: Scope) -> bool:
        if origin in self.allowed:
            return True
        if origin == "null":  # sandboxed frames, file:// pages
            return False
        parts = urlsplit(origin)
        host = _header(scope, b"host")
        if not parts.hostname or host is None:
            return False
        name, port = split_host(host)
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        if port is None:  # Host without a port: the origin's default (a proxy may end TLS)
            port = origin_port
        return parts.hostname == name and origin_port == port


class BodyGuardMiddleware:
    """408 for a body stalled ``stall_s`` seconds; 429 past ``per_client`` open bodies.

    The clock restarts at every chunk received, so a slow but moving upload is never cut.
    Counts are per process and per client address (``scope["client"]``).
    """

    def __init__(self, app: ASGIApp, *, stall_s: float, per_client: int) -> None:
        self.app = app
        self.stall_s = stall_s
        self.per_client = per_client
        self.open: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.open[client] >= self.per_client:
            await send_error(
                send,
                429,
                "too_many_open_bodies",
                f"this client is already sending {self.per_client} request bodies "
                "(ROISEARCH_MAX_OPEN_BODIES_PER_CLIENT); finish them first",
                headers={"Retry-After": "1", **CLOSE},
            )
            return
        self.open[client] += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_done = False
        dropped = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_done, dropped, response_started
            if dropped:
                return {"type": "http.disconnect"}
            if body_done:  # waiting for a disconnect after the body: not a stall
                return await receive()
            message: Message | None = None
            with anyio.move_on_after(self.stall_s):
                message = await receive()
            if message is None:
                dropped = True
                if not response_started:
                    response_started = True
                    await send_error(
                        send,
                        408,
                        "body_stalled",
                        f"the request body made no progress for {self.stall_s:g} s "
                        "(ROISEARCH_BODY_STALL_TIMEOUT_S); the request is dropped",
                        headers=CLOSE,
                    )
                return {"type": "http.disconnect"}
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if dropped:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except ClientDisconnect:
            if not dropped:
                raise


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in {"", "0"}
    )
