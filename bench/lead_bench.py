# ruff: noqa: E501  (the wrk script and the Markdown table template have long lines)
"""Hospital lead endpoint benchmark: floor (empty FastAPI endpoint) vs POST /v1/lead/risk, same client.

    .venv/bin/python bench/lead_bench.py [--duration 10] [--connections 16] [--write-readme]

The same approach as bench/serve_bench.py: both servers under one uvicorn worker on loopback, `wrk`
when installed (else an asyncio httpx client), the floor measured in the same run. Each lead request
resolves an address with the offline resolver, finds its tract and community area, counts earlier
tests nearby as of the visit, scores and writes the notes. With --write-readme the table is written to
bench/README.md, section "Hospital lead endpoint".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-partner-key-0123456789"
FLOOR_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.post("/empty")
async def empty() -> dict[str, bool]:
    return {"ok": True}
"""


def lead_body() -> bytes:
    born = (date.today() - timedelta(days=300)).isoformat()
    return json.dumps(
        {
            "timestamp": datetime.now(UTC).isoformat(sep=" ", timespec="milliseconds"),
            "network_id": "Alliance Health", "clinic_id": "EF", "location_id": "examp_loc",
            "patient_id": "9000", "address1": "1600 W Division St", "address2": "Apt 2",
            "city": "Chicago", "state": "IL", "zip": "60622", "date_of_birth": born,
            "gender": "F", "race": "UNK", "ethnicity": "UNK",
            "lab": [{"lab_id": 1, "type": "BLL", "date": born, "sample_type": "C", "result": "2"}],
        }
    ).encode()  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def run_wrk(wrk: str, url: str, body: bytes, connections: int, duration: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["X-API-Key"] = "{KEY}"\n'
            "done = function(summary, latency, requests)\n"
            '  io.write(string.format(\'JSON {"p50": %f, "p99": %f, "errors": %d}\\n\',\n'
            "    latency:percentile(50) / 1000, latency:percentile(99) / 1000,\n"
            "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))\n"
            "end\n"
        )
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", script.name, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    stats = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rate, "p50_ms": stats["p50"], "p99_ms": stats["p99"], "errors": stats["errors"]}


async def run_httpx(url: str, body: bytes, connections: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        end = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                start = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def load(url: str, body: bytes, args: argparse.Namespace, wrk: str | None) -> dict[str, float]:
    if wrk:
        return run_wrk(wrk, url, body, args.connections, args.duration)
    return asyncio.run(run_httpx(url, body, args.connections, args.duration))


def serve(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(args: argparse.Namespace, wrk: str | None) -> dict[str, Any]:
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    results: dict[str, Any] = {"client": "wrk" if wrk else "httpx (asyncio)"}
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
            results["floor"] = load(f"http://127.0.0.1:{port}/empty", b"{}", args, wrk)
        finally:
            floor.terminate()
            floor.wait()
    port = free_port()
    service = serve([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"], env)
    try:
        url = f"http://127.0.0.1:{port}/v1/lead/risk"
        wait_ready(f"http://127.0.0.1:{port}/health/ready", service)
        body = lead_body()
        # The first request waits for the lead engine (city test history, address index) to be built.
        started = time.perf_counter()
        first = httpx.post(url, content=body, headers={"X-API-Key": KEY, "Content-Type": "application/json"},
                           timeout=120)  # fmt: skip
        assert first.status_code == 200, first.text
        results["first_request_s"] = time.perf_counter() - started
        results["lead"] = load(url, body, args, wrk)
    finally:
        service.terminate()
        service.wait()
    results["ratio"] = results["lead"]["rps"] / results["floor"]["rps"]
    return results


SECTION = """## Hospital lead endpoint

Measured on this machine (2 cores shared by server and client; loopback), one uvicorn worker for both
servers, client {client} at {connections} connections for {duration} s, access log on:

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
        client=results["client"], connections=args.connections, duration=args.duration,
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
    args = parser.parse_args()
    wrk = shutil.which("wrk") if args.client == "auto" else None
    results = measure(args, wrk)
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, args)


if __name__ == "__main__":
    main()
