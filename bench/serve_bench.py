# ruff: noqa: E501  (the Markdown table template has long lines)
"""Scoring-service benchmark: floor (empty FastAPI endpoint) vs civicrisk, on loopback, same client.

    .venv/bin/python bench/serve_bench.py [--duration 15] [--connections 16] [--write-readme]

Runs, in one go: an empty FastAPI endpoint under the same uvicorn settings (the floor), civicrisk
single-record scoring with reasons, 10,000-record batches over HTTP, and in-process batch scoring.
Single-record load uses `wrk` (installed with apt-get if missing and possible), else an asyncio
httpx client. With --write-readme the table is written to bench/README.md, section "Scoring service".

On a machine with 2+ cores the servers are pinned to core 0 and the clients (wrk, and this process,
which sends the batches) to core 1, so client and server never take turns on one core; --no-pin
turns that off. civicrisk runs with its default settings (structured access log on); one more run
with CIVICRISK_ACCESS_LOG=false shows what that log costs, since the floor writes none.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-partner-key-0123456789"
SERVER_CPUS, CLIENT_CPUS = {0}, {1}
MODEL = "chicago-food-inspections"
FLOOR_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.post("/empty")
async def empty() -> dict[str, bool]:
    return {"ok": True}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def wait_warm_up(base: str) -> None:
    """Wait for the service's start-up work to finish before loading it: the lead endpoint builds
    its engine (the city's test history, the address index; several seconds of CPU) in a thread
    right after start-up, and its first request waits for that build. Any answer means it is done."""
    httpx.post(
        f"{base}/v1/lead/risk", content=b"{}", headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        timeout=120,
    )  # fmt: skip


def ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
    return shutil.which("wrk")


def run_wrk(
    wrk: str, url: str, bodies: list[bytes], connections: int, duration: int, cpus: set[int] | None
) -> dict[str, float]:
    """wrk with one body, or cycling through several (each wrk thread starts at its own first)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        listed = ", ".join(json.dumps(body.decode()) for body in bodies)
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(bodies[0].decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["X-API-Key"] = "{KEY}"\n'
            + (
                f"local bodies = {{{listed}}}\n"
                "local next_body = 0\n"
                "request = function()\n"
                "  next_body = next_body % #bodies + 1\n"
                "  return wrk.format(nil, nil, nil, bodies[next_body])\n"
                "end\n"
                if len(bodies) > 1
                else ""
            )
            + "done = function(summary, latency, requests)\n"
            '  io.write(string.format(\'JSON {"p50": %f, "p99": %f, "requests": %d, "errors": %d}\\n\',\n'
            "    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,\n"
            "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))\n"
            "end\n"
        )
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", script.name, url],
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=pinned(cpus),
    ).stdout
    stats = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rate, "p50_ms": stats["p50"], "p99_ms": stats["p99"], "errors": stats["errors"]}


async def run_httpx(url: str, bodies: list[bytes], connections: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        end = time.perf_counter() + duration

        async def worker(first: int) -> None:
            nonlocal errors
            sent = first
            while time.perf_counter() < end:
                start = time.perf_counter()
                response = await client.post(url, content=bodies[sent % len(bodies)], headers=headers)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200
                sent += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def load(
    url: str,
    body: bytes | list[bytes],
    connections: int,
    duration: int,
    wrk: str | None,
    cpus: set[int] | None,
) -> dict[str, float]:
    """Load `url` with POSTs of `body` (or of each of several bodies in turn)."""
    bodies = body if isinstance(body, list) else [body]
    if wrk:
        return run_wrk(wrk, url, bodies, connections, duration, cpus)
    return asyncio.run(run_httpx(url, bodies, connections, duration))


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child to `cpus` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start(command: list[str], env: dict[str, str], cpus: set[int] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(cpus),
    )


def single_record_run(
    env: dict[str, str], args: argparse.Namespace, wrk: str | None, server_cpus: set[int] | None
) -> tuple[dict[str, float], str, subprocess.Popen[bytes]]:
    """Start civicrisk, check one answer, load it with single-record requests; the server keeps running."""
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"]
    service = start(command, env, server_cpus)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health/ready", service)
        wait_warm_up(base)
        url = f"{base}/v1/models/{MODEL}/score"
        one = json.dumps({"records": example_records(1)}).encode()
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        answer = httpx.post(url, content=one, headers=headers)
        assert answer.status_code == 200, answer.text[:200]
        client_cpus = CLIENT_CPUS if server_cpus else None
        return load(url, one, args.connections, args.duration, wrk, client_cpus), url, service
    except BaseException:
        service.terminate()
        service.wait()
        raise


def example_records(n: int) -> list[dict[str, Any]]:
    manifest = json.loads(next((ROOT / "models" / MODEL).glob("*/manifest.json")).read_text())
    records = []
    for i in range(n):
        record: dict[str, Any] = {}
        for j, entry in enumerate(manifest["feature_schema"]):
            values = entry.get("allowed_values")
            record[entry["name"]] = values[(i + j) % len(values)] if values else float((i * 7 + j) % 13)
        records.append(record)
    return records


def in_process(records: list[dict[str, Any]]) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from app.services.records import parse_records
    from app.services.registry import load_model

    model = load_model(next((ROOT / "models" / MODEL).glob("*/manifest.json")).parent)
    batch = parse_records(records, model.layout)
    best: dict[str, float] = {"score": 1e9, "parse": 1e9, "full": 1e9}
    for _ in range(5):
        t0 = time.perf_counter()
        model.scorer.score(batch)
        t1 = time.perf_counter()
        parse_records(records, model.layout)
        t2 = time.perf_counter()
        model.score_records(records)
        t3 = time.perf_counter()
        best = {
            "score": min(best["score"], t1 - t0),
            "parse": min(best["parse"], t2 - t1),
            "full": min(best["full"], t3 - t2),
        }
    n = len(records)
    return {f"{k}_rows_per_s": n / v for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per single-record run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20, help="10,000-record requests to send")
    parser.add_argument("--client", choices=["auto", "httpx"], default="auto")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to cores")
    args = parser.parse_args()
    server_cpus = SERVER_CPUS if not args.no_pin and len(os.sched_getaffinity(0)) >= 2 else None
    if server_cpus is not None:
        os.sched_setaffinity(0, CLIENT_CPUS)  # this process sends the batches
    client_cpus = CLIENT_CPUS if server_cpus is not None else None
    wrk = ensure_wrk() if args.client == "auto" else None
    client = "wrk" if wrk else "httpx (asyncio)"
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    uvicorn_flags = ["--workers", "1"]  # the same for both servers (see single_record_run)
    results: dict[str, Any] = {
        "client": client,
        "connections": args.connections,
        "duration_s": args.duration,
        "pinned": server_cpus is not None,
    }

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "floor_app.py").write_text(FLOOR_APP)
        port = free_port()
        floor = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "floor_app:app",
                "--app-dir",
                tmp,
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
                *uvicorn_flags,
            ],
            env,
            server_cpus,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/docs", floor)
            results["floor"] = load(
                f"http://127.0.0.1:{port}/empty", b"{}", args.connections, args.duration, wrk, client_cpus
            )
        finally:
            floor.terminate()
            floor.wait()

    quiet, _, quiet_service = single_record_run(
        env | {"CIVICRISK_ACCESS_LOG": "false"}, args, wrk, server_cpus
    )
    quiet_service.terminate()
    quiet_service.wait()
    results["single_no_access_log"] = quiet
    results["single"], url, service = single_record_run(env, args, wrk, server_cpus)
    try:
        batch = json.dumps({"records": example_records(10_000)}).encode()
        with httpx.Client(timeout=120) as http:
            started = time.perf_counter()
            times = []
            for _ in range(args.batches):
                t = time.perf_counter()
                response = http.post(
                    url, content=batch, headers={"X-API-Key": KEY, "Content-Type": "application/json"}
                )
                times.append(time.perf_counter() - t)
                assert response.status_code == 200, response.text[:200]
            elapsed = time.perf_counter() - started
        results["batch"] = {
            "records_per_s": args.batches * 10_000 / elapsed,
            "p50_ms": statistics.median(times) * 1000,
            "body_mb": len(batch) / 1e6,
        }
    finally:
        service.terminate()
        service.wait()
    results["in_process"] = in_process(example_records(10_000))
    results["ratio"] = results["single"]["rps"] / results["floor"]["rps"]
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, " ".join(["python", "bench/serve_bench.py", *sys.argv[1:]]))


def write_readme(results: dict[str, Any], command: str) -> None:
    floor, single, quiet, batch, inproc = (
        results["floor"],
        results["single"],
        results["single_no_access_log"],
        results["batch"],
        results["in_process"],
    )
    placement = (
        "server pinned to core 0, client (wrk; this script for the batches) to core 1"
        if results["pinned"]
        else "server and client not pinned, sharing both cores"
    )
    section = f"""## Scoring service

Measured on this machine (2 cores; {placement}; loopback), one uvicorn worker for both servers
(uvloop and httptools, as `uvicorn[standard]` installs), client `{results["client"]}` at {results["connections"]} connections
for {results["duration_s"]} s per run:

    {command}

| run | throughput | p50 | p99 | vs floor | target |
|---|---|---|---|---|---|
| empty FastAPI endpoint (floor) | {floor["rps"]:,.0f} req/s | {floor["p50_ms"]:.2f} ms | {floor["p99_ms"]:.2f} ms | 1.00 | |
| single record, score + tier + 3 reasons (default settings: JSON access log on) | {single["rps"]:,.0f} req/s | {single["p50_ms"]:.2f} ms | {single["p99_ms"]:.2f} ms | {results["ratio"]:.2f} | ≥ 0.60, p99 ≤ 25 ms |
| the same with `CIVICRISK_ACCESS_LOG=false` (the floor writes no access log) | {quiet["rps"]:,.0f} req/s | {quiet["p50_ms"]:.2f} ms | {quiet["p99_ms"]:.2f} ms | {quiet["rps"] / floor["rps"]:.2f} | |
| 10,000-record batches over HTTP, `{{"records": [...]}}` ({batch["body_mb"]:.1f} MB each, sequential) | {batch["records_per_s"]:,.0f} records/s | {batch["p50_ms"]:.0f} ms | | | ≥ 100,000 records/s |
| in-process scoring (compiled linear, RecordBatch → scores + contributions) | {inproc["score_rows_per_s"]:,.0f} rows/s | | | | ≥ 1,000,000 rows/s |
| in-process validation of JSON records (dicts → arrays) | {inproc["parse_rows_per_s"]:,.0f} rows/s | | | | |
| in-process validate + score + reasons | {inproc["full_rows_per_s"]:,.0f} rows/s | | | | |

Errors during the runs: floor {floor["errors"]:.0f}, single {single["errors"]:.0f}, single without access log {quiet["errors"]:.0f}.
"""
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if "## Scoring service" in text:
        start_at = text.index("## Scoring service")
        following = re.search(r"^## ", text[start_at + 3 :], flags=re.M)
        end_at = start_at + 3 + following.start() if following else len(text)
        text = text[:start_at] + section + ("\n" + text[end_at:] if following else "")
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + section
    readme.write_text(text)


if __name__ == "__main__":
    main()
