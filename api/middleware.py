"""Pure-ASGI middleware that acts before FastAPI reads a request body.

FastAPI parses a multipart body completely (spooling it to disk) before any ``Depends()`` runs,
so an unauthenticated or oversized upload would be read in full before a dependency could
refuse it. These middlewares look only at the request line and headers, and at the body as it
streams, so that refusals (401, 413, 503) happen before the body is read:

- :class:`ApiKeyMiddleware`: the ``X-API-Key`` header on every route but the public ones.
- :class:`BodySizeLimitMiddleware`: ``Content-Length`` checked up front, and bytes counted
  while streaming (chunked bodies, lying clients); over the limit → 413 and the rest of the
  body is never read.
- :class:`SearchSheddingMiddleware`: a bound on concurrent search requests; excess requests get
  503 with ``Retry-After`` at once instead of queueing without bound behind the model/index.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import send_error

API_KEY_HEADER = "X-API-Key"
_API_KEY_HEADER_RAW = API_KEY_HEADER.lower().encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in {b"", b"0"}
    )


# Refusing a request whose body we will not read: ask the server to close the connection, or
# it would keep receiving (and discarding) the rest of the body to find the next request.
CLOSE = {"Connection": "close"}


@dataclass(frozen=True)
class PublicPaths:
    """Paths reachable without the API key: health probes and the web page's static files."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self.exact or path.startswith(self.prefixes))


class ApiKeyMiddleware:
    """Require ``X-API-Key`` (constant-time comparison) unless the path is public.

    CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) passes through, because
    browsers never attach custom headers to a preflight; the CORS middleware outside this one
    answers it.
    """

    def __init__(self, app: ASGIApp, *, api_key: str | None, public: PublicPaths) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.api_key is None or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self.app(scope, receive, send)
            return
        given = _header(scope, _API_KEY_HEADER_RAW)
        if given is None or not hmac.compare_digest(given, self.api_key):
            problem = "missing API key: send it" if given is None else "wrong API key"
            headers = {"WWW-Authenticate": API_KEY_HEADER, **(CLOSE if _has_body(scope) else {})}
            await send_error(
                send,
                401,
                "unauthorized",
                f"{problem} in the {API_KEY_HEADER} header",
                headers=headers,
            )
            return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``limit_for(method, path)`` bytes with 413, before reading them.

    A declared ``Content-Length`` over the limit is refused straight after the headers. Bodies
    without one (chunked) or that are longer than declared are counted as they stream: at the
    first byte over the limit the 413 is sent, the application sees a disconnect, and whatever
    it tries to send afterwards is dropped. The server then closes the connection without
    reading the rest.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(
                    send, 400, "bad_request", "Content-Length is not an integer", headers=CLOSE
                )
                return
            if length > limit:
                await send_error(
                    send, 413, "payload_too_large", _too_large(length, limit), headers=CLOSE
                )
                return

        received = 0
        rejected = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, rejected, response_started
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    if not response_started:
                        response_started = True
                        await send_error(
                            send, 413, "payload_too_large", _too_large(None, limit), headers=CLOSE
                        )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ClientDisconnect:
            if not rejected:
                raise


def _too_large(length: int | None, limit: int) -> str:
    got = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return f"request body too large ({got}); the limit for this route is {limit} bytes"


class SearchSheddingMiddleware:
    """Answer 503 (``Retry-After: 1``) when ``limit`` search requests are already in flight.

    The count is per process; the check and the increment run without an ``await`` between
    them, so on one event loop they are atomic.
    """

    def __init__(self, app: ASGIApp, *, limit: int, is_search: Callable[[str, str], bool]) -> None:
        self.app = app
        self.limit = limit
        self.is_search = is_search
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_search(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await send_error(
                send,
                503,
                "overloaded",
                f"too many concurrent searches (limit {self.limit}); retry shortly",
                headers={"Retry-After": "1"},
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
