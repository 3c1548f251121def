"""Security of the HTTP API, against a live ``roisearch serve`` on the private servers.

- every route of the OpenAPI document (plus the web page's routes and path tricks) without an
  API key and with a wrong one: 0 unauthorised successes;
- oversized uploads refused before the body is read (declared and chunked), and a wave of
  slow uploads that must not stop the service answering others;
- CORS from an unlisted origin: never an ``Access-Control-Allow-Origin`` for it;
- server-side path ingestion: ``..``, absolute paths, symlinks, sibling folders with a common
  prefix, NUL bytes: 0 escapes from the import root, no server path in error messages;
- an OpenAPI fuzz run (schemathesis, positive and negative data): 0 responses >= 500;
- issue 19 (``bench.proof.hostile``): stalled bodies 408, open bodies per client bounded,
  foreign Host 400, cross-site state changes 403, no existence oracle, FIFO paths 422.
"""

from __future__ import annotations

import os
import select
import socket
import statistics
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select as sql_select

from bench.proof import hostile
from bench.proof.config import ALLOWED_ORIGIN, API_KEY, WRONG_KEY, ProofConfig, Scenario
from bench.proof.corpus import scene_jpegs
from bench.proof.processes import ApiServer, child_env
from bench.proof.results import Check, Report
from bench.proof.seeding import seed_objects, synthetic_space
from bench.proof.servers import PrivateServers, free_port
from shared.db.database import Database
from shared.db.models import DetectedObject, Ingestion
from shared.settings import MiB

SECTION = "security"
EVIL_ORIGIN = "https://evil.example"
UPLOAD_LIMIT = 4 * MiB
QUERY_LIMIT = 1 * MiB
STALL_S = 3.0  # ROISEARCH_BODY_STALL_TIMEOUT_S of the battery's API (default 30 s)
BODIES_PER_CLIENT = 16


def _public(path: str) -> bool:
    from api.app import PUBLIC_PATHS

    return path in PUBLIC_PATHS


def _concrete(path: str, parameters: list[dict[str, Any]]) -> str:
    for parameter in parameters:
        if parameter.get("in") == "path":
            kind = parameter.get("schema", {}).get("type", "integer")
            path = path.replace("{" + parameter["name"] + "}", "1" if kind == "integer" else "x")
    return path


TRICKS = [
    ("GET", "/v1/objects/"),
    ("GET", "//v1/objects"),
    ("GET", "/V1/objects"),
    ("GET", "/web/../v1/objects"),
    ("GET", "/web/%2e%2e/v1/objects"),
    ("GET", "/docs/../v1/objects"),
    ("GET", "/healthz/../v1/objects"),
    ("GET", "/v1/objects/%2e%2e/1"),
    ("OPTIONS", "/v1/objects"),
    ("HEAD", "/v1/objects"),
]


def routes(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) for every operation, plus routes hidden from the document."""
    out: list[tuple[str, str]] = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if method.lower() in {"get", "post", "put", "patch", "delete"}:
                out.append((method.upper(), _concrete(path, operation.get("parameters", []))))
    # Path tricks: trailing slash, double slash, case, dot segments through public prefixes.
    return out + [(m, p) for m, p in TRICKS if (m, p) not in out]


def _raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, bytes]:
    """One raw HTTP/1.1 exchange (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


def check_auth(api: ApiServer, report: Report) -> None:
    openapi = httpx.get(api.url + "/openapi.json", timeout=30).json()
    successes: list[str] = []
    not_401: Counter[int] = Counter()
    tried = 0
    tricks = {p for _, p in TRICKS}
    for method, path in routes(openapi):
        public = _public(path) and path not in tricks
        for label, key in (("no key", None), ("wrong key", WRONG_KEY)):
            header = f"X-API-Key: {key}\r\n" if key else ""
            length = "Content-Length: 0\r\n" if method in ("POST", "PUT", "PATCH") else ""
            status, _ = _raw_request(
                api.port,
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}{length}"
                "Connection: close\r\n\r\n",
            )
            tried += 1
            if public:
                continue
            if status < 400 and not (method == "OPTIONS" and status == 405):
                successes.append(f"{label} {method} {path} -> {status}")
            elif status != 401:
                not_401[status] += 1
    public_routes = sorted({p for _, p in routes(openapi) if _public(p) and p not in tricks})
    report.add(
        Check(
            SECTION,
            "routes without / with a wrong API key",
            f"{tried} requests over {len(routes(openapi))} routes: {len(successes)} unauthorised "
            f"successes; non-401 refusals {dict(not_401) or 'none'}; public: {public_routes}",
            "0 unauthorised successes",
            not successes,
            {"successes": successes, "not_401": dict(not_401), "public": public_routes},
        )
    )


def _web_escapes(api: ApiServer) -> list[str]:
    """The static-file route asked for files outside its folder."""
    found = []
    for name in (
        "..%2f..%2fshared%2fsettings.py",
        "..%2fapp.py",
        "%2e%2e%2f%2e%2e%2fpyproject.toml",
    ):
        status, data = _raw_request(
            api.port, f"GET /web/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        if status == 200 or b"SettingsConfigDict" in data or b"[project]" in data:
            found.append(f"/web/{name} -> {status}")
    return found


def check_oversized(api: ApiServer, report: Report) -> None:
    results: dict[str, Any] = {}
    # Declared too large, authenticated: 413 right after the headers (no body sent).
    began = time.monotonic()
    status, _ = _raw_request(
        api.port,
        "POST /v1/ingestions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
        f"{API_KEY}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {UPLOAD_LIMIT * 50}\r\n\r\n",
    )
    results["declared"] = (status, round(time.monotonic() - began, 3))
    # Declared large, no key: 401 before the body.
    status, _ = _raw_request(
        api.port,
        "POST /v1/ingestions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
        f"boundary=b\r\nContent-Length: {UPLOAD_LIMIT * 50}\r\n\r\n",
    )
    results["unauthenticated"] = status
    # Chunked, no length: counted while streaming; how much did the server take?
    results["chunked"] = _chunked_upload(api.port, "/v1/ingestions", UPLOAD_LIMIT * 4)
    results["query_image"] = _chunked_upload(api.port, "/v1/search", QUERY_LIMIT * 8)
    ok = (
        results["declared"][0] == 413
        and results["declared"][1] < 5
        and results["unauthenticated"] == 401
        and results["chunked"]["status"] == 413
        and results["chunked"]["sent"] <= UPLOAD_LIMIT + 8 * MiB
        and results["query_image"]["status"] == 413
    )
    report.add(
        Check(
            SECTION,
            "oversized uploads refused before the body",
            f"declared {UPLOAD_LIMIT * 50 // MiB} MiB: {results['declared'][0]} in "
            f"{results['declared'][1]:.2f} s; unauthenticated: {results['unauthenticated']}; "
            f"chunked: {results['chunked']['status']} after "
            f"{results['chunked']['sent'] / MiB:.1f} MiB sent (limit {UPLOAD_LIMIT // MiB}); "
            f"query image: {results['query_image']['status']} after "
            f"{results['query_image']['sent'] / MiB:.1f} MiB (limit {QUERY_LIMIT // MiB})",
            "413/401 before the body is read",
            ok,
            results,
        )
    )


def _chunked_upload(port: int, path: str, total: int) -> dict[str, Any]:
    """Stream a chunked body until the server answers or stops reading; bytes sent."""
    sent = 0
    status = 0
    piece = b"x" * 65536
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    part = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.zip"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + f"{len(part):x}\r\n".encode()
            + part
            + b"\r\n"
        )
        sock.settimeout(2)
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(piece)
        except (TimeoutError, OSError):
            pass  # the server stopped reading: that is the point
        try:
            sock.settimeout(10)
            data = sock.recv(65536)
            if data.startswith(b"HTTP/"):
                status = int(data.split(b" ", 2)[1])
        except OSError:
            pass
    return {"status": status, "sent": sent}


def check_slow_uploads(api: ApiServer, config: ProofConfig, object_id: int, report: Report) -> None:
    """Many uploads trickling a byte at a time must not stop the service answering others."""
    stop = threading.Event()
    sockets: list[socket.socket] = []
    for _ in range(config.slow_uploads):
        sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        sock.sendall(
            (
                f"POST /v1/ingestions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {API_KEY}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                '--b\r\nContent-Disposition: form-data; name="files"; filename="a.zip"\r\n\r\n'
            ).encode()
        )
        sockets.append(sock)

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in list(sockets):
                try:
                    sock.sendall(b"x")
                except OSError:
                    sockets.remove(sock)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    latencies: list[float] = []
    failures = 0
    duration = 5.0 if config.quick else 20.0
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=api.url, headers=headers, timeout=10) as client:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for path in ("/healthz", f"/v1/objects/{object_id}/similar?k=5"):
                began = time.monotonic()
                try:
                    ok = client.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.monotonic() - began)
                failures += not ok
            time.sleep(0.05)
    still_open = len(sockets)
    stop.set()
    thread.join()
    for sock in sockets:
        sock.close()
    p99 = sorted(latencies)[int(0.99 * (len(latencies) - 1))] if latencies else float("inf")
    report.add(
        Check(
            SECTION,
            "slow uploads (1 byte / 0.5 s)",
            f"{config.slow_uploads} slow uploads open; meanwhile {len(latencies)} other "
            f"requests: {failures} failed, p50 {statistics.median(latencies) * 1e3:.0f} ms, "
            f"p99 {p99 * 1e3:.0f} ms; {still_open} slow connections still open after "
            f"{duration:.0f} s",
            "0 failed, p99 < 1 s",
            failures == 0 and p99 < 1.0,
            {"still_open": still_open, "p99_s": p99},
        )
    )


def check_cors(api: ApiServer, report: Report) -> None:
    problems: list[str] = []
    with httpx.Client(base_url=api.url, timeout=10) as client:
        requests = [
            (
                "OPTIONS",
                "/v1/objects",
                {
                    "Origin": EVIL_ORIGIN,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "x-api-key",
                },
            ),
            ("GET", "/healthz", {"Origin": EVIL_ORIGIN}),
            ("GET", "/v1/objects", {"Origin": EVIL_ORIGIN, "X-API-Key": API_KEY}),
            (
                "GET",
                "/v1/objects",
                {"Origin": EVIL_ORIGIN, "X-API-Key": API_KEY, "Cookie": "session=1"},
            ),
            ("GET", "/v1/objects", {"Origin": "null", "X-API-Key": API_KEY}),
        ]
        for method, path, headers in requests:
            response = client.request(method, path, headers=headers)
            allowed = response.headers.get("access-control-allow-origin")
            if allowed in (headers["Origin"], "*"):
                problems.append(f"{method} {path} from {headers['Origin']}: ACAO {allowed}")
            if response.headers.get("access-control-allow-credentials") == "true":
                problems.append(f"{method} {path}: credentials allowed")
        sanity = client.options(
            "/v1/objects",
            headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"},
        ).headers.get("access-control-allow-origin")
    report.add(
        Check(
            SECTION,
            "CORS from an unlisted origin",
            f"{len(problems)} allowed of {len(requests)} requests"
            + (f": {problems[:3]}" if problems else "")
            + f"; the listed origin gets ACAO {sanity!r}",
            "0 allowed (listed origin allowed)",
            not problems and sanity == ALLOWED_ORIGIN,
            {"problems": problems},
        )
    )


def _prepare_import_root(root: Path) -> tuple[Path, Path]:
    imports = root / "import"
    sibling = root / "import-other"  # shares the prefix "import"
    for folder in (imports / "good", sibling):
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(scene_jpegs(2, seed=9)):
            (folder / f"{i}.jpg").write_bytes(data)
    for name, target in (
        ("link-out", "/etc"),
        ("passwd.jpg", "/etc/passwd"),
        ("sib", str(sibling)),
    ):
        link = imports / name
        if not link.is_symlink():
            link.symlink_to(target)
    return imports, sibling


def check_path_escapes(api: ApiServer, sc: Scenario, imports: Path, report: Report) -> None:
    data_dir = sc.settings().data_dir.resolve()
    attempts = [
        "../import-other",
        str(imports.parent / "import-other"),
        "/etc",
        "/etc/passwd",
        "//etc",
        "good/../../import-other",
        "good/../../../../../../etc",
        "link-out",
        "link-out/hostname",
        "passwd.jpg",
        "sib",
        str(data_dir),
        "/",
        "/proc/self/environ",
        "good\x00/../../import-other",
        "%2e%2e/import-other",
        "~root",
        "good/" + "a/" * 2000,
        "good",  # inside: must be accepted (the check is not vacuous)
        ".",  # the root itself: accepted, but its links must be refused per item
    ]
    escapes: list[str] = []
    leaks: list[str] = []
    errors: list[str] = []
    statuses: dict[str, int] = {}
    real_root = imports.resolve()
    # A fresh connection per attempt: a 500 closes its connection, which must not be blamed on
    # the next attempt.
    headers = {"X-API-Key": API_KEY, "Connection": "close"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        for attempt in attempts:
            try:
                response = client.post("/v1/ingestions", json={"path": attempt})
            except httpx.HTTPError as exc:
                statuses[attempt[:60]] = 0
                errors.append(f"{attempt[:60]!r}: {type(exc).__name__}")
                api.wait_ready(120) if api.proc and api.proc.poll() is None else api.start()
                continue
            statuses[attempt[:60]] = response.status_code
            if response.status_code >= 500:
                errors.append(f"{attempt[:60]!r}: HTTP {response.status_code}")
            target = Path(os.path.realpath(imports / attempt)) if "\x00" not in attempt else None
            inside = target is not None and target.is_relative_to(real_root)
            if response.status_code < 300 and not inside:
                escapes.append(f"{attempt!r} -> {response.status_code}")
            if (
                response.status_code >= 400
                and str(real_root) in response.text
                and str(real_root) not in attempt
            ):
                leaks.append(attempt[:60])
    accepted_inside = statuses.get("good", 0) < 300 and statuses.get(".", 0) < 300
    # What the accepted ingestions may read: nothing outside the root, links refused.
    db = Database.from_url(sc.settings().resolved_database_url)
    try:
        with db.read() as session:
            sources = [str(s) for s in session.scalars(sql_select(Ingestion.source))]
    finally:
        db.dispose()
    for source in sources:
        if not Path(os.path.realpath(source)).is_relative_to(real_root):
            escapes.append(f"ingestion of {source}")
    report.add(
        Check(
            SECTION,
            "path-ingestion escapes",
            f"{len(attempts)} paths tried: {len(escapes)} escapes; inside paths accepted: "
            f"{accepted_inside}; server paths leaked in {len(leaks)} error messages; "
            f"{len(errors)} 5xx/aborted" + (f" ({errors[:2]})" if errors else ""),
            "0 escapes, 0 leaks, 0 5xx",
            not escapes and not leaks and not errors and accepted_inside,
            {"escapes": escapes, "leaks": leaks, "errors": errors, "statuses": statuses},
        )
    )


def _fuzz_one(strategy: Any, examples: int, call: Any) -> Any:
    import hypothesis

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def one(case: Any) -> None:
        call(case)

    return one


def _call(
    case: Any,
    key: str,
    label: str,
    url: str,
    session: Any,
    statuses: Counter[int],
    server_errors: list[str],
    wrong_key_successes: list[str],
) -> None:
    try:
        response = case.call(base_url=url, session=session, headers={"X-API-Key": key}, timeout=120)
    except Exception as exc:  # the server closed on us: count it as a failure
        server_errors.append(f"{label}: {type(exc).__name__}")
        return
    statuses[response.status_code] += 1
    if response.status_code >= 500:
        server_errors.append(f"{label}: {response.status_code} {response.text[:120]}")
    if key == WRONG_KEY and response.status_code < 400 and not _public(case.path):
        wrong_key_successes.append(f"{label}: {response.status_code}")


def fuzz(api: ApiServer, examples: int, report: Report) -> None:
    import requests
    import schemathesis
    from schemathesis import GenerationMode

    document = httpx.get(api.url + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    wrong_key_successes: list[str] = []
    problems: list[str] = []
    session = requests.Session()
    began = time.monotonic()
    for result in schema.get_all_operations():
        try:
            operation = result.ok()  # type: ignore[union-attr]
        except Exception as exc:  # an operation the schema cannot describe
            problems.append(f"schema: {exc}")
            continue
        label = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for key in (API_KEY, WRONG_KEY):
                count = examples if key == API_KEY else 1

                one = _fuzz_one(
                    operation.as_strategy(generation_mode=mode),
                    count,
                    partial(
                        _call,
                        key=key,
                        label=label,
                        url=api.url,
                        session=session,
                        statuses=statuses,
                        server_errors=server_errors,
                        wrong_key_successes=wrong_key_successes,
                    ),
                )
                try:
                    one()
                except Exception as exc:  # unsatisfiable strategies and the like
                    problems.append(
                        f"{label} ({mode.value}): {type(exc).__name__}: {str(exc)[:100]}"
                    )
    elapsed = time.monotonic() - began
    report.add(
        Check(
            SECTION,
            "OpenAPI fuzz (schemathesis)",
            f"{sum(statuses.values())} requests in {elapsed:.0f} s: "
            f"{len(server_errors)} 5xx/aborted, "
            f"{len(wrong_key_successes)} successes with a wrong key; statuses "
            f"{dict(sorted(statuses.items()))}"
            + (f"; e.g. {server_errors[0]!r}" if server_errors else ""),
            "0 5xx, 0 unauthorised",
            not server_errors and not wrong_key_successes and sum(statuses.values()) > 0,
            {
                "server_errors": server_errors[:50],
                "wrong_key_successes": wrong_key_successes,
                "generation_problems": problems[:50],
            },
        )
    )


def run(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    sc = Scenario.create(
        "security",
        config,
        servers,
        base,
        max_upload_bytes=UPLOAD_LIMIT,
        max_query_image_bytes=QUERY_LIMIT,
        max_concurrent_searches=1000,
        body_stall_timeout_s=STALL_S,
        max_open_bodies_per_client=BODIES_PER_CLIENT,
    )
    imports, _ = _prepare_import_root(sc.root)
    sc.overrides["import_roots"] = [imports]
    settings = sc.settings()
    seed_objects(settings, 2000, synthetic_space(128))
    db = Database.from_url(settings.resolved_database_url)
    with db.read() as session:
        object_id = int(session.scalar(sql_select(DetectedObject.id).limit(1)) or 1)
    db.dispose()
    api = ApiServer(child_env(sc.env_values("api")), sc.root, free_port())
    steps = [
        ("auth", lambda: check_auth(api, report)),
        ("web escapes", lambda: _report_web(api, report)),
        ("oversized", lambda: check_oversized(api, report)),
        ("slow uploads", lambda: check_slow_uploads(api, config, object_id, report)),
        ("CORS", lambda: check_cors(api, report)),
        ("path escapes", lambda: check_path_escapes(api, sc, imports, report)),
        ("path oracle", lambda: hostile.check_path_oracle(api, imports, SECTION, report)),
        ("cross-site", lambda: hostile.check_cross_site(api, SECTION, report)),
        (
            "stalled bodies",
            lambda: hostile.check_stalled_bodies(api, STALL_S, BODIES_PER_CLIENT, SECTION, report),
        ),
        ("fuzz", lambda: fuzz(api, config.fuzz_examples, report)),
    ]
    try:
        api.start()
        for name, step in steps:
            try:
                if api.proc is None or api.proc.poll() is not None:
                    api.start()
                step()
            except Exception as exc:
                report.error(SECTION, name, exc)
        alive = api.proc is not None and api.proc.poll() is None
        log = api.log.read_text(errors="replace")
        report.add(
            Check(
                SECTION,
                "the API survived the battery",
                f"{'alive' if alive else 'DIED'}; {log.count('Traceback')} tracebacks in its log",
                "alive",
                alive,
                {"log_tail": log[-3000:] if not alive else ""},
            )
        )
    finally:
        api.stop()


def _report_web(api: ApiServer, report: Report) -> None:
    found = _web_escapes(api)
    report.add(
        Check(
            SECTION,
            "static-file route traversal",
            f"{len(found)} files outside the web folder served" + (f": {found}" if found else ""),
            "0",
            not found,
        )
    )
