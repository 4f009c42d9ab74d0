"""CPU a `POST /v1/lead/risk` costs inside the service, homes at known addresses vs homes between them.

    .venv/bin/python bench/lead_paths.py [--calls 4000] [--rounds 3]

No server and no client: each call goes straight into the app's ASGI stack (fast lane, middleware,
route), one after another in this process, and `time.process_time` is read around each run of
`--calls`. The homes are bench/lead_bench.py's (500 address points, and the same moved between two
known ones). This is what the two paths cost apart from uvicorn's HTTP work, so their difference is
the features of a home the known-homes table does not hold (bench/README.md, "Hospital lead endpoint").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from lead_bench import between_bodies, lead_bodies
from serve_bench import KEY

PATH = "/v1/lead/risk"


def _scope(app: Any, length: int) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"x-api-key", KEY.encode()), (b"content-type", b"application/json"),
                    (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}, "app": app,
    }  # fmt: skip


async def call(app: Any, body: bytes) -> int:
    """One request through the app's whole ASGI stack; its status."""
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app.middleware_stack(_scope(app, len(body)), receive, send)
    return status[0]


async def cpu_per_call(app: Any, bodies: list[bytes], calls: int) -> float:
    """Microseconds of this process's CPU a call, over `calls` calls cycling through `bodies`."""
    started = time.process_time()
    for i in range(calls):
        status = await call(app, bodies[i % len(bodies)])
        assert status == 200, status
    return (time.process_time() - started) / calls * 1e6


async def measure(calls: int, rounds: int) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.platform.settings import Settings

    app = create_app(Settings(api_keys=(KEY,), access_log=False, daily_precompute=False))
    with TestClient(app) as client:  # runs start-up: the lead engine is built
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        known, between = (
            [b for b in bodies if client.post(PATH, content=b, headers=headers).status_code == 200]
            for bodies in (lead_bodies(), between_bodies())
        )
    print(f"homes: {len(known)} known, {len(between)} between known addresses")
    await cpu_per_call(app, known, calls // 4)  # warm-up
    for round_number in range(1, rounds + 1):
        known_us = await cpu_per_call(app, known, calls)
        between_us = await cpu_per_call(app, between, calls)
        print(f"round {round_number}: known {known_us:.0f} µs, between {between_us:.0f} µs a call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Keys and the database in a temporary folder, never the checkout's var/.
        os.environ["CIVICRISK_KEYS_FILE"] = str(Path(tmp) / "keys.json")
        os.environ["CIVICRISK_DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        asyncio.run(measure(args.calls, args.rounds))


if __name__ == "__main__":
    main()
