# ruff: noqa: E501  (the Markdown table template has long lines)
"""Scoring-service benchmark: floor (empty FastAPI endpoint) vs civicrisk, on loopback, same client.

    .venv/bin/python bench/serve_bench.py [--duration 15] [--connections 16] [--write-readme]

Runs, in one go: an empty FastAPI endpoint under the same uvicorn settings (the floor), civicrisk
single-record scoring with reasons, 10,000-record batches over HTTP (10,000 real feature rows of the
sample data as JSON records, as a JSON table and as Parquet), and in-process batch scoring of the
same rows. Load uses `wrk` (installed with apt-get if
missing and possible), else httpx (asyncio for single records, one connection for batches). With --write-readme the table is written to bench/README.md, section "Scoring service".

On a machine with 2+ cores the servers are pinned to core 0 and the clients (wrk, or this process
with httpx) to core 1, so client and server never take turns on one core; --no-pin
turns that off. civicrisk runs with its default settings (structured access log on); one more run
with CIVICRISK_ACCESS_LOG=false shows what that log costs, since the floor writes none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
# The floor is built with the FastAPI settings civicrisk uses (native OpenTelemetry off, as
# CIVICRISK_OPENTELEMETRY defaults to), so the ratio compares the work, not a framework setting.
FLOOR_APP = """
from fastapi import FastAPI
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
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
    wrk: str,
    url: str,
    bodies: list[bytes],
    connections: int,
    duration: int,
    cpus: set[int] | None,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """wrk with one body, or cycling through several (each wrk thread starts at its own first);
    `headers` replace the partner key header (a bearer token, say)."""
    sent = headers if headers is not None else {"X-API-Key": KEY}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        listed = ", ".join(json.dumps(body.decode()) for body in bodies)
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(bodies[0].decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in sent.items())
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
            + WRK_DONE
        )
    return wrk_results(wrk, url, script.name, connections, duration, cpus)


# wrk's report, as one JSON line after "JSON ".
WRK_DONE = (
    "done = function(summary, latency, requests)\n"
    '  io.write(string.format(\'JSON {"p50": %f, "p99": %f, "requests": %d, "errors": %d}\\n\',\n'
    "    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,\n"
    "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))\n"
    "end\n"
)


def run_wrk_file(
    wrk: str, url: str, body: Path, content_type: str, connections: int, duration: int, cpus: set[int] | None
) -> dict[str, float]:
    """wrk POSTing the bytes of one file (a large or binary body: a 10,000-record batch)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f'local file = io.open({json.dumps(str(body))}, "rb")\n'
            'wrk.body = file:read("*a")\n'
            "file:close()\n"
            f'wrk.headers["Content-Type"] = "{content_type}"\n'
            f'wrk.headers["X-API-Key"] = "{KEY}"\n' + WRK_DONE
        )
    threads = min(2, connections)
    return wrk_results(wrk, url, script.name, connections, duration, cpus, threads)


def wrk_results(
    wrk: str, url: str, script: str, connections: int, duration: int, cpus: set[int] | None, threads: int = 2
) -> dict[str, float]:
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", script, url],
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=pinned(cpus),
    ).stdout
    stats = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rate, "p50_ms": stats["p50"], "p99_ms": stats["p99"], "errors": stats["errors"],
        "requests": stats["requests"],
    }  # fmt: skip


async def run_httpx(
    url: str, bodies: list[bytes], connections: int, duration: float, sent: dict[str, str] | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"} | (sent if sent is not None else {"X-API-Key": KEY})
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
        "requests": len(latencies),
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a gunicorn master's workers), by pid (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while listed
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a server has used so far: the process and its children (a gunicorn
    master and its workers) from Linux /proc; None elsewhere."""
    total = 0.0
    for process in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if process == pid:
                return None
            continue  # a worker that exited meanwhile
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def load(
    url: str,
    body: bytes | list[bytes],
    connections: int,
    duration: int,
    wrk: str | None,
    cpus: set[int] | None,
    server: int | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Load `url` with POSTs of `body` (or of each of several bodies in turn), with the partner key
    or the given `headers` instead. With the server's
    pid, also the server's CPU time per request (`cpu_us`): throughput on this shared host moves
    with its neighbours' load, CPU time per request much less, so the two ratios are reported side
    by side."""
    bodies = body if isinstance(body, list) else [body]
    before = cpu_seconds(server) if server is not None else None
    if wrk:
        result = run_wrk(wrk, url, bodies, connections, duration, cpus, headers)
    else:
        result = asyncio.run(run_httpx(url, bodies, connections, duration, headers))
    after = cpu_seconds(server) if server is not None else None
    if before is not None and after is not None and result["requests"]:
        result["cpu_us"] = (after - before) / result["requests"] * 1e6
    return result


def start_floor(tmp: str, env: dict[str, str], cpus: set[int] | None) -> tuple[str, subprocess.Popen[bytes]]:
    """The empty FastAPI endpoint under the same uvicorn settings as civicrisk (no uvicorn access log,
    no proxy-header middleware, as `civicrisk serve` runs it); returns its URL."""
    (Path(tmp) / "floor_app.py").write_text(FLOOR_APP)
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", tmp, "--port", str(port),
        "--no-access-log", "--no-proxy-headers", "--log-level", "warning", "--workers", "1",
    ]  # fmt: skip
    floor = start(command, env, cpus)
    wait_ready(f"http://127.0.0.1:{port}/docs", floor)
    return f"http://127.0.0.1:{port}/empty", floor


def interleaved(runs: dict[str, Callable[[], dict[str, float]]], rounds: int) -> dict[str, Any]:
    """Each run once per round, in turn, `rounds` times: the floor is measured between the others,
    so a neighbour's load on this shared machine shifts both alike. Per run: the median round (by
    throughput) and every round's throughput."""
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            measured[name].append(run())
    summary: dict[str, Any] = {}
    for name, results in measured.items():
        ordered = sorted(results, key=lambda result: result["rps"])
        summary[name] = ordered[len(ordered) // 2] | {
            "rounds_rps": [round(result["rps"]) for result in results],
            "rounds_cpu_us": [round(result.get("cpu_us", math.nan), 1) for result in results],
            "errors": sum(result["errors"] for result in results),
        }
    return summary


def ratios(summary: dict[str, Any], name: str) -> dict[str, float]:
    """`name`'s throughput over the floor's: of the medians, and the lowest and highest round by round."""
    per_round = [
        a / b for a, b in zip(summary[name]["rounds_rps"], summary["floor"]["rounds_rps"], strict=True)
    ]
    cpu = statistics.median(summary["floor"]["rounds_cpu_us"]) / statistics.median(
        summary[name]["rounds_cpu_us"]
    )
    return {
        "median": summary[name]["rps"] / summary["floor"]["rps"],
        "low": min(per_round),
        "high": max(per_round),
        "cpu": cpu,  # the floor's CPU time per request over this run's (medians of the rounds)
    }


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


def start_service(
    env: dict[str, str], cpus: set[int] | None, workers: int = 1
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start civicrisk, wait until it is ready and warm, check one answer; its score URL."""
    port = free_port()
    command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(port), "--workers", str(workers)]
    service = start(command, env, cpus)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health/ready", service)
        wait_warm_up(base)
        url = f"{base}/v1/models/{MODEL}/score"
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        answer = httpx.post(url, content=json.dumps({"records": example_records(1)}), headers=headers)
        assert answer.status_code == 200, answer.text[:200]
        return url, service
    except BaseException:
        stop(service)
        raise


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


# Batch bodies: (file, Content-Type). The same 10,000 real rows as records, as a table and as Parquet.
BATCH_FORMS = {
    "records": '10,000 real sample rows, `{"records": [...]}`',
    "table": 'the same rows as a table, `{"columns": [...], "data": [[...]]}`',
    "parquet": "the same rows as Parquet (`application/vnd.apache.parquet`, no compression)",
}


def batch_bodies(tmp: Path, real: list[dict[str, Any]]) -> dict[str, tuple[Path, str]]:
    import io

    import pandas as pd

    columns = list(real[0])
    parquet = io.BytesIO()
    pd.DataFrame(real, columns=columns).to_parquet(parquet, compression=None, index=False)
    contents = {
        "records": (json.dumps({"records": real}).encode(), "application/json"),
        "table": (
            json.dumps({"columns": columns, "data": [[r[c] for c in columns] for r in real]}).encode(),
            "application/json",
        ),
        "parquet": (parquet.getvalue(), "application/vnd.apache.parquet"),
    }
    bodies = {}
    for name, (content, content_type) in contents.items():
        path = tmp / f"batch-{name}.body"
        path.write_bytes(content)
        bodies[name] = (path, content_type)
    return bodies


def send_batches(
    url: str, body: tuple[Path, str], wrk: str | None, cpus: set[int] | None, duration: int, server: int
) -> dict[str, float]:
    """10,000-record batches one after another on one connection for `duration` seconds: records/s,
    latency, and the server's CPU time per batch."""
    path, content_type = body
    before = cpu_seconds(server)
    if wrk:
        result = run_wrk_file(wrk, url, path, content_type, 1, duration, cpus)
    else:
        content, times = path.read_bytes(), []
        with httpx.Client(timeout=120) as http:
            deadline = time.perf_counter() + duration
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = http.post(
                    url, content=content, headers={"X-API-Key": KEY, "Content-Type": content_type}
                )
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:200]
        ordered = sorted(times)
        result = {
            "rps": len(times) / sum(times), "p50_ms": statistics.median(times) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            "requests": len(times), "errors": 0,
        }  # fmt: skip
    after = cpu_seconds(server)
    if before is not None and after is not None and result["requests"]:
        result["cpu_ms"] = (after - before) / result["requests"] * 1000
    result["records_per_s"] = result["rps"] * 10_000
    result["body_mb"] = path.stat().st_size / 1e6
    return result


def sample_records(n: int) -> list[dict[str, Any]]:
    """`n` real feature rows: the sample's Chicago inspections from 2013-06-01 on, each with its
    point-in-time features (the features training builds), missing values as null."""
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from app.inspections.cities import CityStore
    from training.inspections.train import build_examples

    manifest = json.loads(next((ROOT / "models" / MODEL).glob("*/manifest.json")).read_text())
    names = [entry["name"] for entry in manifest["feature_schema"]]
    data = CityStore(ROOT / "data" / "sample").city("chicago").data
    frame = build_examples(data, pd.Timestamp("2013-06-01"), None).features[names].head(n)
    records = [
        {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]
    if len(records) < n:
        raise SystemExit(f"the sample has {len(records)} inspections from 2013-06-01 on, not {n}")
    return records


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
    import io

    import orjson
    import pandas as pd

    from app.platform.registry import load_model
    from app.scoring.bodies.records import parse_records
    from app.scoring.formats import FORMATS
    from app.scoring.routes import _answer

    model = load_model(next((ROOT / "models" / MODEL).glob("*/manifest.json")).parent)
    batch = parse_records(records, model.layout)
    body = orjson.dumps({"records": records})
    parquet = io.BytesIO()
    pd.DataFrame(records).to_parquet(parquet, compression=None, index=False)
    steps = {
        "score": lambda: model.scorer.score(batch),
        "parse": lambda: parse_records(records, model.layout),
        "full": lambda: model.score_records(records),
        # What the route does with a body: typed decode, score, reasons, the JSON answer.
        "route": lambda: _answer(FORMATS["application/json"], model, body, len(records)),
        "route_parquet": lambda: _answer(
            FORMATS["application/vnd.apache.parquet"], model, parquet.getvalue(), len(records)
        ),
    }
    best = dict.fromkeys(steps, 1e9)
    for _ in range(5):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - started)
    return {f"{k}_rows_per_s": len(records) / v for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per single-record run")
    parser.add_argument("--rounds", type=int, default=3, help="floor / civicrisk runs, interleaved")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--batch-duration", type=int, default=10, help="seconds of 10,000-record batches per form"
    )
    parser.add_argument("--client", choices=["auto", "httpx"], default="auto")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to cores")
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="N > 1: only compare `civicrisk serve --workers N` with one worker (section Workers)",
    )  # fmt: skip
    parser.add_argument(
        "--spawned", action="store_true",
        help="with --workers: also uvicorn's own N workers, as `civicrisk serve --workers N` ran before gunicorn",
    )  # fmt: skip
    args = parser.parse_args()
    if args.workers > 1:
        workers_main(args)
        return
    server_cpus = SERVER_CPUS if not args.no_pin and len(os.sched_getaffinity(0)) >= 2 else None
    if server_cpus is not None:
        os.sched_setaffinity(0, CLIENT_CPUS)  # this process sends the batches
    client_cpus = CLIENT_CPUS if server_cpus is not None else None
    wrk = ensure_wrk() if args.client == "auto" else None
    client = "wrk" if wrk else "httpx (asyncio)"
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    results: dict[str, Any] = {
        "client": client,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "batch_duration_s": args.batch_duration,
        "pinned": server_cpus is not None,
    }

    one = json.dumps({"records": example_records(1)}).encode()
    real = sample_records(10_000)

    def run(url: str, body: bytes, server: subprocess.Popen[bytes]) -> Callable[[], dict[str, float]]:
        return lambda: load(url, body, args.connections, args.duration, wrk, client_cpus, server.pid)

    with tempfile.TemporaryDirectory() as tmp:
        # All three servers up at once on the server core, each idle while another is loaded.
        floor_url, floor = start_floor(tmp, env, server_cpus)
        url, service = start_service(env, server_cpus)
        quiet_url, quiet = start_service(env | {"CIVICRISK_ACCESS_LOG": "false"}, server_cpus)
        try:
            runs = {
                "floor": run(floor_url, b"{}", floor),
                "single": run(url, one, service),
                "single_no_access_log": run(quiet_url, one, quiet),
            }
            results |= interleaved(runs, args.rounds)
            stop(floor, quiet)
            bodies = batch_bodies(Path(tmp), real)
            results["batches"] = {
                name: send_batches(url, body, wrk, client_cpus, args.batch_duration, service.pid)
                for name, body in bodies.items()
            }
        finally:
            stop(*(p for p in (floor, service, quiet) if p.poll() is None))
    results["in_process"] = in_process(real)
    results["ratio"] = ratios(results, "single")
    results["ratio_no_access_log"] = ratios(results, "single_no_access_log")
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, " ".join(["python", "bench/serve_bench.py", *sys.argv[1:]]))


def workers_main(args: argparse.Namespace) -> None:
    """One worker against `--workers N` on single-record scoring, in turns: throughput, and the server
    CPU per request summed over all its processes (master and workers). Not pinned: the servers
    and wrk share every core, as they would on a machine with nothing else to run."""
    wrk = ensure_wrk() if args.client == "auto" else None
    one = json.dumps({"records": example_records(1)}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"CIVICRISK_API_KEYS": KEY, "CIVICRISK_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3"}
        servers = {"one": start_service(env, None, 1), "several": start_service(env, None, args.workers)}
        if args.spawned:
            servers["spawned"] = start_spawned(env, args.workers, Path(tmp))
        try:
            for url, server in servers.values():  # every worker warm
                load(url, one, args.connections, 2, wrk, None, server.pid)

            def run(url: str, server: subprocess.Popen[bytes]) -> Callable[[], dict[str, float]]:
                return lambda: load(url, one, args.connections, args.duration, wrk, None, server.pid)

            runs = {name: run(url, server) for name, (url, server) in servers.items()}
            results: dict[str, Any] = interleaved(runs, args.rounds)
        finally:
            stop(*(server for _, server in servers.values()))
    if args.spawned:
        results["spawned_throughput_ratio"] = results["spawned"]["rps"] / results["one"]["rps"]
        results["spawned_cpu_ratio"] = statistics.median(results["spawned"]["rounds_cpu_us"]) / statistics.median(
            results["one"]["rounds_cpu_us"]
        )
    one_run, several_run = results["one"], results["several"]
    results |= {
        "workers": args.workers, "connections": args.connections, "duration_s": args.duration,
        "rounds": args.rounds, "client": "wrk" if wrk else "httpx (asyncio)",
        "throughput_ratio": several_run["rps"] / one_run["rps"],
        "cpu_ratio": statistics.median(several_run["rounds_cpu_us"]) / statistics.median(one_run["rounds_cpu_us"]),
        "rounds_throughput_ratio": [
            round(a / b, 3) for a, b in zip(several_run["rounds_rps"], one_run["rounds_rps"], strict=True)
        ],
    }  # fmt: skip
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_workers_readme(results, " ".join(["python", "bench/serve_bench.py", *sys.argv[1:]]))


def start_spawned(env: dict[str, str], workers: int, tmp: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """`civicrisk serve --workers N` as it ran before gunicorn: uvicorn's own workers, each a fresh
    process that loads everything itself (the same settings and shared state otherwise)."""
    port = free_port()
    (tmp / "spawned-metrics").mkdir()
    env = env | {"PROMETHEUS_MULTIPROC_DIR": str(tmp / "spawned-metrics"), "CIVICRISK_SHARED_STATE": "true"}
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app_factory", "--factory", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--no-proxy-headers",
    ]  # fmt: skip
    server = start(command, env, None)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health/ready", server)
    for _ in range(4 * workers):  # new connections, so every worker's lead engine build is waited for
        wait_warm_up(base)
    return f"{base}/v1/models/{MODEL}/score", server


def write_workers_readme(results: dict[str, Any], command: str) -> None:
    one, several, n = results["one"], results["several"], results["workers"]

    def row(name: str, run: dict[str, Any]) -> str:
        cpu = statistics.median(run["rounds_cpu_us"])
        return f"| {name} | {run['rps']:,.0f} req/s | {run['p50_ms']:.2f} ms | {run['p99_ms']:.2f} ms | {cpu:.0f} µs |"

    section = f"""## Workers

`civicrisk serve --workers {n}` (a gunicorn master and {n} forked uvicorn workers) against one worker,
single-record scoring with default settings; servers and `{results["client"]}` not pinned, sharing
both cores; {results["connections"]} connections, {results["rounds"]} rounds of {results["duration_s"]} s in turns, each row its median
round; server CPU from /proc, every process of the server (master and workers) summed:

    {command}

| server | throughput | p50 | p99 | server CPU per request |
|---|---|---|---|---|
{row("one worker", one)}
{row(f"{n} workers", several)}
{row(f"{n} workers as before gunicorn (uvicorn's own workers, each loading everything)", results["spawned"]) if "spawned" in results else ""}

Throughput {n} workers / one: **{results["throughput_ratio"]:.2f}×** (rounds {results["rounds_throughput_ratio"]}); server CPU
per request {n} workers / one: **{results["cpu_ratio"]:.2f}×**. Per round, req/s: one {one["rounds_rps"]}, {n} workers
{several["rounds_rps"]}; CPU µs a request: one {one["rounds_cpu_us"]}, {n} workers {several["rounds_cpu_us"]}. Errors:
one {one["errors"]:.0f}, {n} workers {several["errors"]:.0f}.
"""
    if "spawned" in results:
        spawned = results["spawned"]
        section += f"""
uvicorn's own {n} workers, the same rounds: throughput **{results["spawned_throughput_ratio"]:.2f}×** one worker's, server CPU per
request **{results["spawned_cpu_ratio"]:.2f}×** (req/s {spawned["rounds_rps"]}; CPU µs {spawned["rounds_cpu_us"]}; errors {spawned["errors"]:.0f}).
"""
    replace_section("## Workers", section)


# The batch target asks for 100,000 records/s in at least one body form: the one meant for large
# batches, Parquet (JSON's cost is turning text into floats, whatever the layout).
BATCH_TARGETS = {"parquet": "≥ 100,000 records/s (in at least one form)"}


def write_readme(results: dict[str, Any], command: str) -> None:
    floor, single, quiet, inproc = (
        results["floor"],
        results["single"],
        results["single_no_access_log"],
        results["in_process"],
    )
    batch_rows = "\n".join(
        f"| 10,000-record batches over HTTP, one after another on one connection: {BATCH_FORMS[name]} "
        f"({run['body_mb']:.1f} MB) | {run['records_per_s']:,.0f} records/s | {run['p50_ms']:.0f} ms "
        f"| {run['p99_ms']:.0f} ms | | {run.get('cpu_ms', float('nan')):.0f} ms per batch | | {BATCH_TARGETS.get(name, '')} |"
        for name, run in results["batches"].items()
    )
    placement = (
        "server pinned to core 0, client to core 1"
        if results["pinned"]
        else "server and client not pinned, sharing both cores"
    )
    ratio, quiet_ratio = results["ratio"], results["ratio_no_access_log"]

    def cpu(run: dict[str, Any]) -> str:
        return f"{statistics.median(run['rounds_cpu_us']):.0f} µs"

    section = f"""## Scoring service

One uvicorn worker per server ({placement}; loopback), client `{results["client"]}` at
{results["connections"]} connections, {results["rounds"]} rounds of {results["duration_s"]} s, floor and civicrisk taking turns; each row its
median round, "vs floor" with the lowest and highest round's ratio. Batches: one connection, {results["batch_duration_s"]} s per
body form; the in-process rows use the same 10,000 real rows:

    {command}

| run | throughput | p50 | p99 | vs floor | server CPU per request | vs floor, by CPU | target |
|---|---|---|---|---|---|---|---|
| empty FastAPI endpoint (floor) | {floor["rps"]:,.0f} req/s | {floor["p50_ms"]:.2f} ms | {floor["p99_ms"]:.2f} ms | 1.00 | {cpu(floor)} | 1.00 | |
| single record, score + tier + 3 reasons (default settings: JSON access log on) | {single["rps"]:,.0f} req/s | {single["p50_ms"]:.2f} ms | {single["p99_ms"]:.2f} ms | {ratio["median"]:.3f} ({ratio["low"]:.2f}–{ratio["high"]:.2f}) | {cpu(single)} | {ratio["cpu"]:.3f} | ≥ 0.60, p99 ≤ 25 ms |
| the same with `CIVICRISK_ACCESS_LOG=false` (the floor writes no access log) | {quiet["rps"]:,.0f} req/s | {quiet["p50_ms"]:.2f} ms | {quiet["p99_ms"]:.2f} ms | {quiet_ratio["median"]:.3f} ({quiet_ratio["low"]:.2f}–{quiet_ratio["high"]:.2f}) | {cpu(quiet)} | {quiet_ratio["cpu"]:.3f} | |
{batch_rows}
| in-process scoring (compiled linear, RecordBatch → scores + contributions) | {inproc["score_rows_per_s"]:,.0f} rows/s | | | | | | ≥ 1,000,000 rows/s |
| in-process, the route's work on a 10,000-record body (typed decode, score, reasons, JSON answer) | {inproc["route_rows_per_s"]:,.0f} rows/s | | | | | | |
| in-process, the same for the rows as Parquet (read, score, reasons, JSON answer) | {inproc["route_parquet_rows_per_s"]:,.0f} rows/s | | | | | | |
| in-process validation of parsed JSON records (dicts → arrays; the path for bodies the typed decoder refuses) | {inproc["parse_rows_per_s"]:,.0f} rows/s | | | | | | |
| in-process validate + score + reasons from parsed records | {inproc["full_rows_per_s"]:,.0f} rows/s | | | | | | |

Throughput per round (req/s): floor {floor["rounds_rps"]}, single {single["rounds_rps"]}, without access log {quiet["rounds_rps"]}.
Server CPU per request per round (µs, from /proc): floor {floor["rounds_cpu_us"]}, single {single["rounds_cpu_us"]}, without access log {quiet["rounds_cpu_us"]}.
Errors during the runs: floor {floor["errors"]:.0f}, single {single["errors"]:.0f}, single without access log {quiet["errors"]:.0f}.
"""
    replace_section("## Scoring service", section)


def replace_section(heading: str, section: str) -> None:
    """Put `section` in bench/README.md in place of the one under `heading` (up to the next "## "
    heading), or at the end when there is none yet."""
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if heading in text:
        start_at = text.index(heading)
        following = re.search(r"^## ", text[start_at + 3 :], flags=re.M)
        end_at = start_at + 3 + following.start() if following else len(text)
        text = text[:start_at] + section + ("\n" + text[end_at:] if following else "")
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + section
    readme.write_text(text)


if __name__ == "__main__":
    main()
