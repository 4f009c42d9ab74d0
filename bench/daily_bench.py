"""Benchmark: the full Chicago daily list (every in-scope establishment), in-process over ASGI; and,
with --served, the issue #19 targets against `civicrisk serve` (one worker).

    .venv/bin/python bench/daily_bench.py [--repeat 5]
    .venv/bin/python bench/daily_bench.py --served [--duration 30]

Floor: GET /health/live through the same client in the same run. Measured: the first list (loads the
city's files: cold), a list for a new date each time (roster, features, scores and reasons computed:
warm), and the same date again (ranked roster cached; filter and store only). Each list stores all
rows in a fresh SQLite file, as the service does.

--served starts `civicrisk serve` on a fresh SQLite file, waits for its start-up work (the lead engine,
tomorrow's lists computed ahead), then: (1) 36 concurrent requests over 12 dates no list was computed
for (3 each, default limit), all at once; (2) a mix for --duration seconds: wrk at 51 connections
scoring single records beside wrk at 13 connections asking for daily lists over 12 other new dates
(64 connections, 80/20 by connection). Memory: the service's processes (the server and the child
processes it forks for lists) sampled every 50 ms: the peak of their summed RSS (pages shared between
parent and child counted twice) and of their summed PSS (shared pages split between them); for the
burst, also each process's PSS in the sample where the sum peaked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.main import create_app  # noqa: E402
from app.platform.settings import Settings  # noqa: E402

URL = "/v1/inspections/chicago/daily"


def timed(client: TestClient, url: str, params: dict[str, str] | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    rows = len(response.json().get("rows", [])) if url == URL else 0
    return elapsed, rows


KEY = "bench-partner-key-0123456789"
SCORE_BODY = json.dumps({"records": [{}]})  # every feature unknown: a valid single-record request


def descendants(pid: int) -> list[int]:
    """The process and every process below it (Linux /proc)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            frontier += children
    return found


def memory_mb(pid: int) -> tuple[float, float, int, list[float]]:
    """Summed RSS and PSS (MB) of the process and its descendants, how many there are, and each
    one's PSS (the process first, then its descendants as found)."""
    rss = pss = 0
    each_pss: list[float] = []
    processes = descendants(pid)
    for each in processes:
        try:
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        kilobytes = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        pss += kilobytes
        each_pss.append(kilobytes / 1024)
    return rss / 1024, pss / 1024, len(processes), each_pss


class PeakMemory:
    """Samples the service's memory every 50 ms in a thread; `peak()` since the last `reset()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = (0.0, 0.0, 1)
        self.at_peak: list[float] = []  # each process's PSS in the sample of the highest summed PSS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            rss, pss, processes, each_pss = memory_mb(self.pid)
            if pss > self._peak[1]:
                self.at_peak = each_pss
            self._peak = (max(self._peak[0], rss), max(self._peak[1], pss), max(self._peak[2], processes))

    def reset(self) -> None:
        self._peak = (0.0, 0.0, 1)
        self.at_peak = []

    def peak(self) -> tuple[float, float, int]:
        return self._peak

    def stop(self) -> None:
        self._stop.set()


async def burst(base: str, dates: list[str], per_date: int) -> list[tuple[int, float]]:
    """Every request at once: (status, seconds) each."""

    async def one(client: httpx.AsyncClient, day: str) -> tuple[int, float]:
        started = time.perf_counter()
        response = await client.get(f"{base}{URL}", params={"date": day})
        return response.status_code, time.perf_counter() - started

    limits = httpx.Limits(max_connections=len(dates) * per_date)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        return await asyncio.gather(*(one(client, day) for day in dates for _ in range(per_date)))


WRK_REPORT = (
    "done = function(summary, latency, requests)\n"
    '  io.write(string.format(\'JSON {"p50": %f, "p99": %f, "max": %f, "requests": %d, '
    '"timeouts": %d, "status_errors": %d, "other_errors": %d}\\n\',\n'
    "    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,\n"
    "    summary.requests,\n"
    "    summary.errors.timeout, summary.errors.status,\n"
    "    summary.errors.connect + summary.errors.read + summary.errors.write))\n"
    "end\n"
)


def wrk(url: str, script: str, connections: int, duration: int) -> subprocess.Popen[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script + WRK_REPORT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", file.name, url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def wrk_report(process: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = process.communicate()
    report: dict[str, float] = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    return report


def served(duration: int) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("--served needs wrk on PATH (Debian: apt-get install wrk) for its scoring/daily mix")
    port = 18000 + os.getpid() % 1000
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {
            "CIVICRISK_DATABASE_URL": f"sqlite:///{scratch}/bench.sqlite3",
            "CIVICRISK_API_KEYS": KEY,
            "CIVICRISK_ACCESS_LOG": "false",
            "CIVICRISK_LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(port), "--workers", "1"]
        server = subprocess.Popen(command, env=env, cwd=REPO)
        try:
            _served_runs(base, server.pid, duration)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _served_runs(base: str, pid: int, duration: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{base}/health/live", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("the service did not start") from None
            time.sleep(0.3)
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    httpx.post(f"{base}/v1/lead/risk", content=b"{}", headers=headers, timeout=120)  # lead engine built
    started = time.perf_counter()
    httpx.get(f"{base}{URL}", timeout=120).raise_for_status()  # tomorrow's list: computed ahead?
    first = time.perf_counter() - started
    time.sleep(2)
    memory = PeakMemory(pid)
    time.sleep(0.5)
    ready = memory_mb(pid)
    load = os.getloadavg()
    memory.reset()
    dates = [f"2014-08-{day:02d}" for day in range(10, 22)]
    answers = asyncio.run(burst(base, dates, 3))
    peak = memory.peak()
    seconds = sorted(elapsed for _, elapsed in answers)
    statuses = [status for status, _ in answers]
    print(f"load average before the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"service ready: RSS {ready[0]:.0f} MB, PSS {ready[1]:.0f} MB ({ready[2]} processes)")
    print(f"first GET of tomorrow's default list after start-up: {first * 1000:.0f} ms")
    print(
        f"36 concurrent requests over 12 new dates: {statuses.count(200)} answered 200 "
        f"(others: {sorted(set(statuses) - {200}) or 'none'}); p50 {statistics.median(seconds):.2f} s, "
        f"p99 {statistics.quantiles(seconds, n=100)[98]:.2f} s, "
        f"max {seconds[-1]:.2f} s; peak memory of the service's processes: RSS {peak[0]:.0f} MB, "
        f"PSS {peak[1]:.0f} MB (up to {peak[2]} processes; at the peak, PSS by process, the worker "
        f"first: {', '.join(f'{each:.0f}' for each in memory.at_peak)} MB)"
    )
    load = os.getloadavg()
    memory.reset()
    mix_dates = [f"2014-07-{day:02d}" for day in range(1, 13)]
    daily_script = (
        f"local dates = {{{', '.join(json.dumps(day) for day in mix_dates)}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n % #dates + 1\n"
        f'  return wrk.format("GET", "{URL}?date=" .. dates[n])\n'
        "end\n"
    )
    score_script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(SCORE_BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-API-Key"] = "{KEY}"\n'
    )
    scoring = wrk(f"{base}/v1/models/chicago-food-inspections/score", score_script, 51, duration)
    daily = wrk(f"{base}{URL}", daily_script, 13, duration)
    scores, lists = wrk_report(scoring), wrk_report(daily)
    peak = memory.peak()
    memory.stop()
    total = scores["requests"] + lists["requests"]
    print(f"mix, load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, report in (("scoring", scores), ("daily lists", lists)):
        print(
            f"mix {duration} s, {name}: {report['requests']:.0f} requests "
            f"({report['requests'] / total:.0%} of all), p50 {report['p50']:.1f} ms, "
            f"p99 {report['p99']:.1f} ms, max {report['max']:.0f} ms, timeouts {report['timeouts']:.0f}, "
            f"non-2xx {report['status_errors']:.0f}, socket errors {report['other_errors']:.0f}"
        )
    print(f"mix: peak memory of the service's processes: RSS {peak[0]:.0f} MB, PSS {peak[1]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--served", action="store_true", help="the issue #19 targets against a served worker")
    parser.add_argument("--duration", type=int, default=30, help="seconds of the scoring/daily mix")
    args = parser.parse_args()
    if args.served:
        served(args.duration)
        return
    with tempfile.TemporaryDirectory() as scratch:
        # Nothing computed ahead in the background: each run here measures one list's own cost.
        settings = Settings(
            database_url=f"sqlite:///{scratch}/bench.sqlite3", access_log=False, daily_precompute=False
        )
        with TestClient(create_app(settings)) as client:
            floor = statistics.median(timed(client, "/health/live")[0] for _ in range(50))
            cold, rows = timed(client, URL, {"date": "2014-08-30", "limit": "10000"})
            dates = [f"2014-08-{day:02d}" for day in range(1, 1 + args.repeat)]
            warm = [timed(client, URL, {"date": day, "limit": "10000"})[0] for day in dates]
            cached = [
                timed(client, URL, {"date": "2014-08-30", "limit": "10000"})[0] for _ in range(args.repeat)
            ]
    print(f"rows per list: {rows}")
    print("| run | median | ratio to floor |")
    print("|---|---|---|")
    print(f"| floor: GET /health/live | {floor * 1000:.2f} ms | 1 |")
    print(f"| cold: first list (loads the city's files) | {cold:.2f} s | {cold / floor:,.0f} |")
    median_warm = statistics.median(warm)
    print(
        f"| warm, new date each time (roster computed) | {median_warm:.2f} s | {median_warm / floor:,.0f} |"
    )
    median_cached = statistics.median(cached)
    ratio = median_cached / floor
    print(f"| warm, same date again (ranked roster cached) | {median_cached:.2f} s | {ratio:,.0f} |")


if __name__ == "__main__":
    main()
