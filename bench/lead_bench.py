# ruff: noqa: E501  (the wrk script and the Markdown table template have long lines)
"""Hospital lead endpoint benchmark: floor (empty FastAPI endpoint) vs POST /v1/lead/risk, same client.

    .venv/bin/python bench/lead_bench.py [--duration 10] [--connections 16] [--write-readme]

The same runners as bench/serve_bench.py (imported from it): both servers under one uvicorn worker on
loopback, pinned to core 0 with the client on core 1 (--no-pin turns that off), `wrk` when installed
(else an asyncio httpx client), the floor measured in the same run. Each lead request
resolves an address with the offline resolver, finds its tract and community area, counts earlier
tests nearby as of the visit, scores and writes the notes. With --write-readme the table is written to
bench/README.md, section "Hospital lead endpoint".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

# The runners, server start-up (with CPU pinning) and the floor app are serve_bench's, so both
# benchmarks measure the same way.
from serve_bench import (
    CLIENT_CPUS,
    FLOOR_APP,
    KEY,
    ROOT,
    SERVER_CPUS,
    ensure_wrk,
    free_port,
    load,
    start,
    wait_ready,
)

ADDRESSES = 500  # distinct homes the load cycles through


def lead_body(address: str = "1600 W Division St", zip_code: str = "60622") -> bytes:
    born = (date.today() - timedelta(days=300)).isoformat()
    return json.dumps(
        {
            "timestamp": datetime.now(UTC).isoformat(sep=" ", timespec="milliseconds"),
            "network_id": "Alliance Health", "clinic_id": "EF", "location_id": "examp_loc",
            "patient_id": "9000", "address1": address, "address2": "Apt 2",
            "city": "Chicago", "state": "IL", "zip": zip_code, "date_of_birth": born,
            "gender": "F", "race": "UNK", "ethnicity": "UNK",
            "lab": [{"lab_id": 1, "type": "BLL", "date": born, "sample_type": "C", "result": "2"}],
        }
    ).encode()  # fmt: skip


def lead_bodies(count: int = ADDRESSES, seed: int = 0) -> list[bytes]:
    """Requests for `count` homes drawn (seeded) from the city's address points, so the load meets
    addresses far from and near tract boundaries, on quiet and on busy blocks, in their real mix."""
    points = pd.read_csv(
        ROOT / "data" / "sample" / "chicago" / "address_points.csv.gz", dtype={"zip": "string"}
    )
    chosen = points.dropna(subset=["address", "zip"]).sample(count, random_state=seed)
    return [
        lead_body(str(a).title(), str(z).split(".")[0])
        for a, z in zip(chosen["address"], chosen["zip"], strict=True)
    ]


def measure(
    args: argparse.Namespace, wrk: str | None, cpus: tuple[set[int], set[int]] | None
) -> dict[str, Any]:
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    results: dict[str, Any] = {"client": "wrk" if wrk else "httpx (asyncio)", "pinned": cpus is not None}
    server_cpus, client_cpus = cpus if cpus is not None else (None, None)

    def serve(command: list[str], environment: dict[str, str]) -> Any:
        return start(command, environment, server_cpus)

    def run(url: str, body: bytes | list[bytes]) -> dict[str, float]:
        return load(url, body, args.connections, args.duration, wrk, client_cpus)

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "floor_app.py").write_text(FLOOR_APP)
        port = free_port()
        floor = serve(
            [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", tmp, "--port", str(port),
             "--no-access-log", "--log-level", "warning", "--workers", "1"],
            env,
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{port}/docs", floor)
            results["floor"] = run(f"http://127.0.0.1:{port}/empty", b"{}")
        finally:
            floor.terminate()
            floor.wait()
    port = free_port()
    service = serve([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"], env)
    try:
        url = f"http://127.0.0.1:{port}/v1/lead/risk"
        wait_ready(f"http://127.0.0.1:{port}/health/ready", service)
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        # The first request waits for the lead engine (city test history, address index) to be built.
        started = time.perf_counter()
        first = httpx.post(url, content=lead_body(), headers=headers, timeout=120)
        assert first.status_code == 200, first.text
        results["first_request_s"] = time.perf_counter() - started
        # Every body is checked once; the load cycles through those that get a score (the others
        # would count as errors in wrk: an address point the resolver cannot place, say).
        bodies = [b for b in lead_bodies() if httpx.post(url, content=b, headers=headers).status_code == 200]
        results["addresses"] = {"sampled": ADDRESSES, "scored": len(bodies)}
        results["lead"] = run(url, bodies)
    finally:
        service.terminate()
        service.wait()
    results["ratio"] = results["lead"]["rps"] / results["floor"]["rps"]
    return results


SECTION = """## Hospital lead endpoint

Measured on this machine (2 cores; servers pinned to core 0, the client to core 1: {pinned}; loopback),
one uvicorn worker for both servers, client {client} at {connections} connections for {duration} s,
access log on:

    python bench/lead_bench.py --duration {duration} --write-readme

| run | throughput | p50 | p99 | vs floor | target |
|---|---|---|---|---|---|
| empty FastAPI endpoint (floor) | {floor_rps:,.0f} req/s | {floor_p50:.2f} ms | {floor_p99:.2f} ms | 1.00 | |
| `POST /v1/lead/risk`: address → tract → features → score → notes | {lead_rps:,.0f} req/s | {lead_p50:.2f} ms | {lead_p99:.2f} ms | {ratio:.2f} | ≥ 0.50, p99 ≤ 30 ms |

Errors during the runs: floor {floor_errors:.0f}, lead {lead_errors:.0f}. The first lead request after
start-up took {first:.1f} s (it waits for the start-up build of the city's test history and address
index); every later one reuses them. One address is sent repeatedly (wrk sends a fixed body); the
resolver does not cache answers (it would mean holding addresses), so each request resolves it afresh.
"""


def write_readme(results: dict[str, Any], args: argparse.Namespace) -> None:
    text = SECTION.format(
        client=results["client"], pinned="yes" if results["pinned"] else "no", connections=args.connections, duration=args.duration,
        floor_rps=results["floor"]["rps"], floor_p50=results["floor"]["p50_ms"],
        floor_p99=results["floor"]["p99_ms"], lead_rps=results["lead"]["rps"],
        lead_p50=results["lead"]["p50_ms"], lead_p99=results["lead"]["p99_ms"], ratio=results["ratio"],
        floor_errors=results["floor"]["errors"], lead_errors=results["lead"]["errors"],
        first=results["first_request_s"],
    )  # fmt: skip
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text()
    start = current.find("## Hospital lead endpoint")
    if start >= 0:
        end = current.find("\n## ", start + 1)
        current = current[:start] + current[end + 1 :] if end >= 0 else current[:start]
    readme.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=["auto", "httpx"], default="auto")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to cores")
    args = parser.parse_args()
    cpus = None
    if not args.no_pin and len(os.sched_getaffinity(0)) >= 2:
        cpus = (SERVER_CPUS, CLIENT_CPUS)
        os.sched_setaffinity(0, CLIENT_CPUS)  # this process sends the first request
    wrk = ensure_wrk() if args.client == "auto" else None
    results = measure(args, wrk, cpus)
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, args)


if __name__ == "__main__":
    main()
