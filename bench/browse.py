"""Browse API latency: the first page and a deep page of /v1/images and /v1/objects, offset
paging (``page=N``) against keyset paging (``after=<id>``), with and without filters.

    .venv/bin/python -m bench.browse --objects 100000

Seeds a SQLite collection with ``bench.api.build_collection`` (10 objects per image, 3
classes), serves it with the real app in this process (Starlette's TestClient: routing,
validation, SQL and JSON included, no socket) and prints the p50 / p95 per page in ms.
The deep page is the page at 90 % of the listing, reached by offset or by the cursor that the
previous page returned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from api.app import create_app
from bench.api import OBJECTS_PER_IMAGE, build_collection
from bench.proof.seeding import synthetic_space
from shared.settings import load_settings

console = Console(width=110)
API_KEY = "bench-key"


def timed(client: TestClient, path: str, params: dict[str, Any], repeat: int) -> list[float]:
    """Seconds per request, ``repeat`` times (one warm-up first)."""
    client.get(path, params=params).raise_for_status()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        out.append(time.perf_counter() - start)
    return out


def cursor_before(client: TestClient, path: str, params: dict[str, Any], page: int) -> int:
    """The ``after`` cursor of page ``page`` (the last id of page ``page - 1``)."""
    body = client.get(path, params={**params, "page": page - 1}).json()
    return int(body["next"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-browse-") as tmp:
        root = Path(tmp)
        settings = load_settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'bench.db'}",
            redis_url=None,
            api_key=API_KEY,
        )
        began = time.perf_counter()
        build_collection(settings, args.objects, synthetic_space(32))
        images = (args.objects + OBJECTS_PER_IMAGE - 1) // OBJECTS_PER_IMAGE
        console.print(
            f"seeded {args.objects:,} objects on {images:,} images "
            f"in {time.perf_counter() - began:.0f} s"
        )
        app = create_app(settings, warm_model=False)
        with TestClient(app, headers={"X-API-Key": API_KEY}) as client:
            table = Table(title=f"Browse API, {args.objects:,} objects, {args.page_size} per page")
            for column in ("listing", "filter", "page", "offset p50", "keyset p50", "keyset p95"):
                numeric = column.endswith(("50", "95"))
                table.add_column(column, justify="right" if numeric else "left")
            cases: list[tuple[str, str, dict[str, Any]]] = [
                ("/v1/objects", "none", {}),
                ("/v1/objects", "class 1, score ≥ 0.5", {"classes": "1", "min_score": 0.5}),
                ("/v1/images", "none", {}),
                ("/v1/images", "class 1", {"classes": "1"}),
            ]
            for path, label, flt in cases:
                params = {**flt, "page_size": args.page_size}
                total = client.get(path, params=params).json()["page"]["total"]
                deep = max(2, int(0.9 * total / args.page_size))
                for name, page in (("first", 1), (f"deep ({deep:,})", deep)):
                    offset = timed(client, path, {**params, "page": page}, args.repeat)
                    if page == 1:
                        keyset = offset
                    else:
                        after = cursor_before(client, path, params, page)
                        keyset = timed(client, path, {**params, "after": after}, args.repeat)
                    table.add_row(
                        path,
                        label,
                        name,
                        f"{statistics.median(offset) * 1e3:.1f} ms",
                        f"{statistics.median(keyset) * 1e3:.1f} ms",
                        f"{float(np.percentile(keyset, 95)) * 1e3:.1f} ms",
                    )
            console.print(table)


if __name__ == "__main__":
    main()
