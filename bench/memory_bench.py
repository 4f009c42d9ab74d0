# ruff: noqa: E501  (the Markdown table template has long lines)
"""Memory benchmark: what `civicrisk serve --workers N` holds, in PSS and private memory, against the
empty FastAPI endpoint (the floor).

    .venv/bin/python bench/memory_bench.py [--workers 1 2 4] [--batches 60] [--write-readme]

For each N it starts `civicrisk serve --workers N` (one uvicorn process for N = 1; a gunicorn master
and N forked workers above) and runs the same sequence, each step reaching every worker (checked in
each worker's own metrics file): single-record scoring and lead requests (wrk, 16 connections, 5 s),
a Chicago daily list, 5 JSON and 5 Parquet batches of the 10,000 real sample rows, an operator's
reload of the (unchanged) models (`POST /v1/admin/reload`, which every worker follows), then
`--batches` more JSON batches: memory that grows there would be a leak.

After each step it reads every process of the server from /proc/PID/smaps_rollup: PSS (each page
divided among the processes that share it, so the processes' PSS adds up to what the server holds)
and private memory (USS: the pages only that process maps, what it would free by exiting). "Each
worker beyond the first adds" is the server's total PSS at N workers less its total at one, per
further worker. With --write-readme the tables are written to bench/README.md, section "Memory".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from lead_bench import lead_bodies
from prometheus_client.mmap_dict import MmapedDict
from serve_bench import (
    KEY,
    MODEL,
    batch_bodies,
    children,
    ensure_wrk,
    example_records,
    free_port,
    load,
    replace_section,
    sample_records,
    start,
    start_floor,
    stop,
    wait_ready,
    wait_warm_up,
)

LOAD_SECONDS = 5
ADMIN_KEY = "bench-admin-key-0123456789"
DAILY_ROUTE, LEAD_ROUTE, MODELS_ROUTE = "/v1/inspections/{city}/daily", "/v1/lead/risk", "/v1/models"


def process_memory(pid: int) -> dict[str, float]:
    """PSS, private (USS) and resident memory of one process, MB (/proc/PID/smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            fields[name] = int(value.split()[0])  # kB
    return {
        "pss_mb": fields["Pss"] / 1024,
        "uss_mb": (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024,
        "rss_mb": fields["Rss"] / 1024,
    }


def server_memory(pid: int) -> dict[str, Any]:
    """Every process of the server (the master first, then its workers) and their sum."""
    processes = {str(p): process_memory(p) for p in [pid, *children(pid)]}
    total = {key: sum(p[key] for p in processes.values()) for key in ("pss_mb", "uss_mb", "rss_mb")}
    return {"processes": processes, "total": total}


def served_by(metrics: Path | None, route: str) -> dict[int, float]:
    """Per worker (pid), the requests to `route` it answered, from its own metrics file."""
    counts: dict[int, float] = {}
    for path in metrics.glob("counter_*.db") if metrics is not None else ():
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if f'"{route}"' in key and "requests_total" in key:
                pid = int(path.stem.rsplit("_", 1)[1])
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def on_every_worker(send: Callable[[], None], workers: list[int], metrics: Path | None, route: str) -> None:
    """Send until every worker has answered `route` (a new connection each time, so the kernel hands
    them out among the workers); once for a single process."""
    for _ in range(200):
        if metrics is None or set(workers) <= set(served_by(metrics, route)):
            return
        send()
    raise SystemExit(f"{route} did not reach every worker: {served_by(metrics, route)} of {workers}")


def post_batches(url: str, body: Path, content_type: str, count: int) -> None:
    """`count` batches, each on a new connection (so they spread over the workers)."""
    content = body.read_bytes()
    headers = {"X-API-Key": KEY, "Content-Type": content_type}
    for _ in range(count):
        answer = httpx.post(url, content=content, headers=headers, timeout=120)
        assert answer.status_code == 200, answer.text[:200]


def start_server(workers: int, env: dict[str, str], metrics: Path | None) -> tuple[str, Any, list[int]]:
    """`civicrisk serve --workers N`, ready, warm and with all its workers up: (base URL, process, workers)."""
    port = free_port()
    if metrics is not None:
        env = env | {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(port), "--workers", str(workers)]
    server = start(command, env, None)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health/ready", server)
    wait_warm_up(base)  # one process builds its lead engine after start-up; a master before forking
    deadline = time.monotonic() + 60
    while workers > 1 and len(children(server.pid)) < workers:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)
    pids = children(server.pid) if workers > 1 else [server.pid]
    for _ in range(4 * workers):  # each worker past its start-up (the lifespan's reload)
        httpx.get(f"{base}/health/ready", timeout=30)
    return base, server, pids


def measure(
    workers: int, bodies: dict[str, tuple[Path, str]], wrk: str | None, batches: int, tmp: Path
) -> dict[str, Any]:
    """The server's memory after each step of the sequence (module docstring)."""
    metrics = tmp / f"metrics-{workers}" if workers > 1 else None
    env = os.environ | {
        "CIVICRISK_API_KEYS": KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_DATABASE_URL": f"sqlite:///{tmp / f'bench-{workers}.sqlite3'}",
    }
    base, server, pids = start_server(workers, env, metrics)
    score_url = f"{base}/v1/models/{MODEL}/score"
    steps: dict[str, Any] = {}
    try:
        steps["started"] = server_memory(server.pid)
        one = json.dumps({"records": example_records(1)}).encode()
        load(score_url, one, 16, LOAD_SECONDS, wrk, None)
        steps["single_load"] = server_memory(server.pid)
        lead = lead_bodies()
        load(f"{base}{LEAD_ROUTE}", lead, 16, LOAD_SECONDS, wrk, None)

        def lead_request() -> None:
            headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
            httpx.post(f"{base}{LEAD_ROUTE}", content=lead[0], headers=headers, timeout=30)

        on_every_worker(lead_request, pids, metrics, LEAD_ROUTE)
        steps["lead_load"] = server_memory(server.pid)

        def daily_list() -> None:
            daily = httpx.get(f"{base}/v1/inspections/chicago/daily?limit=100", timeout=120)
            assert daily.status_code == 200, daily.text[:200]

        daily_list()
        on_every_worker(daily_list, pids, metrics, DAILY_ROUTE)
        steps["daily_list"] = server_memory(server.pid)
        for form in ("records", "parquet"):
            post_batches(score_url, *bodies[form], 5)
        steps["batches"] = server_memory(server.pid)
        steps["reload"] = reload_every_worker(base, pids, metrics) | server_memory(server.pid)
        post_batches(score_url, *bodies["records"], batches)
        steps["after_more_batches"] = server_memory(server.pid)
        steps["workers_answered"] = {
            route: {str(pid): count for pid, count in served_by(metrics, route).items()}
            for route in (LEAD_ROUTE, DAILY_ROUTE, MODELS_ROUTE, "/v1/models/{name}/score")
        }
    finally:
        stop(server)
    return steps


def reload_every_worker(base: str, pids: list[int], metrics: Path | None) -> dict[str, Any]:
    """An operator's reload; with several workers, wait until each one serves the new generation."""
    answer = httpx.post(
        f"{base}/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text[:200]
    generation = answer.json()["generation"]
    if metrics is None:
        return {"generation": generation}
    before = served_by(metrics, MODELS_ROUTE)
    deadline = time.monotonic() + 30
    while True:  # every worker answers GET /v1/models with the new generation at least once
        served = httpx.get(f"{base}{MODELS_ROUTE}", timeout=30).json()["generation"]
        after = served_by(metrics, MODELS_ROUTE)
        answered = {pid for pid in pids if after.get(pid, 0) > before.get(pid, 0)}
        if served != generation:
            before = after  # a worker still on the old set: count again from here
        elif answered >= set(pids):
            return {"generation": generation}
        assert time.monotonic() < deadline, f"not every worker serves generation {generation}"
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batches", type=int, default=60, help="JSON batches sent after the reload")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    wrk = ensure_wrk()
    results: dict[str, Any] = {"client": "wrk" if wrk else "httpx (asyncio)", "batches": args.batches}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bodies = batch_bodies(tmp, sample_records(10_000))
        results |= {f"{form}_mb": bodies[form][0].stat().st_size / 1e6 for form in ("records", "parquet")}
        floor_url, floor = start_floor(folder, os.environ | {"CIVICRISK_API_KEYS": KEY}, None)
        try:
            load(floor_url, b"{}", 16, LOAD_SECONDS, wrk, None)
            results["floor"] = server_memory(floor.pid)
        finally:
            stop(floor)
        results["servers"] = {str(n): measure(n, bodies, wrk, args.batches, tmp) for n in args.workers}
    results["added_per_worker_mb"] = added_per_worker(results["servers"])
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, " ".join(["python", "bench/memory_bench.py", *sys.argv[1:]]))


def added_per_worker(servers: dict[str, Any]) -> dict[str, float]:
    """Per N > 1: (total PSS at N workers - total PSS at 1) / (N - 1), after the whole sequence."""
    one = servers.get("1")
    if one is None:
        return {}
    final = one["after_more_batches"]["total"]["pss_mb"]
    return {
        n: (steps["after_more_batches"]["total"]["pss_mb"] - final) / (int(n) - 1)
        for n, steps in servers.items()
        if int(n) > 1
    }


STEPS = (
    ("started", "ready (models, lead engine, cities loaded)"),
    ("single_load", "after {seconds} s of single-record scoring"),
    ("lead_load", "after {seconds} s of lead requests (every worker)"),
    ("daily_list", "after a Chicago daily list on every worker"),
    (
        "batches",
        "after 5 JSON ({records_mb:.1f} MB) and 5 Parquet ({parquet_mb:.1f} MB) batches of 10,000 rows",
    ),
    ("reload", "after `POST /v1/admin/reload`, followed by every worker"),
    ("after_more_batches", "after {batches} more JSON batches"),
)


def write_readme(results: dict[str, Any], command: str) -> None:
    servers = results["servers"]
    sizes = {"seconds": LOAD_SECONDS, "batches": results["batches"]}
    sizes |= {"records_mb": results["records_mb"], "parquet_mb": results["parquet_mb"]}
    header = " | ".join(f"`--workers {n}`: PSS / private" for n in servers)
    rows = [
        f"| {text.format(**sizes)} | "
        + " | ".join(
            f"{s[step]['total']['pss_mb']:.0f} / {s[step]['total']['uss_mb']:.0f}" for s in servers.values()
        )
        + " |"
        for step, text in STEPS
    ]
    processes = []
    for n, steps in servers.items():
        for index, memory in enumerate(steps["after_more_batches"]["processes"].values()):
            role = "the process" if n == "1" else ("master" if index == 0 else f"worker {index}")
            processes.append(
                f"| `--workers {n}` | {role} | {memory['pss_mb']:.0f} | {memory['uss_mb']:.0f} | {memory['rss_mb']:.0f} |"
            )
    added = ", ".join(
        f"**{mb:.0f} MB** from 1 to {n} workers" for n, mb in results["added_per_worker_mb"].items()
    )
    floor = results["floor"]["total"]
    section = f"""## Memory

What the whole server holds (MB, from /proc/PID/smaps_rollup, summed over its processes): **PSS**,
each shared page divided among the processes that map it (so it adds up), and **private** memory
(USS: pages only one process maps). `--workers 1` is one uvicorn process; above one, a gunicorn master
that loaded the models, the lead engine, the cities' data and their next-day lists, and the workers
forked from it. Every
step reaches every worker (checked in each worker's metrics file). Measured with:

    {command}

| step (the same sequence for each server) | {header} |
|---|{"---|" * len(servers)}
{chr(10).join(rows)}

Floor: the empty FastAPI endpoint, one uvicorn process after {LOAD_SECONDS} s of load ({results["client"]}, 16 connections):
{floor["pss_mb"]:.0f} MB PSS, {floor["uss_mb"]:.0f} MB private.

Each worker beyond the first adds (total PSS after the whole sequence, less one worker's, per further
worker): {added}. Target: ≤ 250 MB.

What is shared (figures of 2026-12-06): the master loads the libraries (about 165 MB of heap from the
imports alone), the models, the lead engine (about 215 MB), the cities' data and each city's ranked
roster for the next day (the daily list inspectors ask for first; ranked in each worker, it cost each
70-110 MB and the master 30-60 MB more as the workers copied its pages). It then freezes them out of
the garbage collector's sight (`gc.freeze`: a collection writes into every object it visits, which
would copy its page) and gives start-up's freed memory back (`malloc_trim`: without it the two-worker
server held about 100 MB more PSS from the start, 584 against 477 MB, as workers allocated into the
master's free pages). A worker forked at the model set generation the master loaded does not reload
at start (a reload would unpickle every bundle again only to keep the loaded objects: 16 MB per
worker and 10 MB in the master). What stays private to each worker is what it builds itself: the heap
its 10,000-record batches leave for the next batch (about 80 MB, `app.platform.heap.reuse_freed_memory`),
a daily list for any other day (about 70 MB), and copies of the shared pages it writes to (reference
counts of the objects its requests touch). The master's private memory grows as the workers copy
pages it still holds.

Each process after the whole sequence (MB):

| server | process | PSS | private | resident |
|---|---|---|---|---|
{chr(10).join(processes)}
"""
    replace_section("## Memory", section)


if __name__ == "__main__":
    main()
