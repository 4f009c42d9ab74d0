# ruff: noqa: E501  (the Markdown table template has long lines)
"""Memory benchmark: what one civicrisk worker holds, against the empty FastAPI endpoint (the floor).

    .venv/bin/python bench/memory_bench.py [--batches 60] [--write-readme]

Starts, one worker each: the floor (the same empty app bench/serve_bench.py measures), civicrisk with
its default settings and civicrisk with CIVICRISK_LEAD_KNOWN_HOMES=false (without the lead engine's
table of known homes). Reads each server's resident memory from /proc (VmRSS now, VmHWM the peak since
the last reset: writing 5 to /proc/PID/clear_refs resets it) after start-up, after the lead engine's
warm-up, under single-record and lead load (wrk, 16 connections), and around 10,000-record batches
(the 10,000 real sample rows serve_bench sends, as JSON records and as Parquet, one after another),
then after `--batches` more JSON batches: memory that grows there would be a leak. A worker is one
process, so a city running N workers needs about N times the civicrisk row. With --write-readme the
table is written to bench/README.md, section "Memory".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from lead_bench import lead_bodies
from serve_bench import (
    KEY,
    MODEL,
    batch_bodies,
    ensure_wrk,
    example_records,
    load,
    replace_section,
    sample_records,
    start_floor,
    start_service,
    stop,
)

LOAD_SECONDS = 5


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak since the last reset (/proc/PID/status), and the anonymous
    part of the resident memory (/proc/PID/smaps_rollup): the heap and arrays that each further worker
    adds, where the rest is mostly library code that workers share. MB."""
    fields = {}
    for source in ("status", "smaps_rollup"):
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Anonymous"):
                fields[name] = int(value.split()[0]) / 1024  # kB
    return {"rss_mb": fields["VmRSS"], "peak_mb": fields["VmHWM"], "anonymous_mb": fields["Anonymous"]}


def reset_peak(pid: int) -> bool:
    """Start the peak (VmHWM) afresh from the current resident size; False where Linux refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def post_batches(url: str, body: Path, content_type: str, count: int) -> float:
    """`count` batches one after another on one connection; seconds each, on average."""
    content = body.read_bytes()
    headers = {"X-API-Key": KEY, "Content-Type": content_type}
    started = time.perf_counter()
    with httpx.Client(timeout=120) as http:
        for _ in range(count):
            answer = http.post(url, content=content, headers=headers)
            assert answer.status_code == 200, answer.text[:200]
    return (time.perf_counter() - started) / count


def measure_service(
    url: str, pid: int, bodies: dict[str, tuple[Path, str]], wrk: str | None, batches: int
) -> dict[str, Any]:
    """The service's memory at each step (see the module docstring)."""
    base = url.split("/v1/")[0]
    steps: dict[str, Any] = {"warm": memory_mb(pid)}
    one = json.dumps({"records": example_records(1)}).encode()
    load(url, one, 16, LOAD_SECONDS, wrk, None)
    steps["single_load"] = memory_mb(pid)
    load(f"{base}/v1/lead/risk", lead_bodies(), 16, LOAD_SECONDS, wrk, None)
    steps["lead_load"] = memory_mb(pid)
    # The city's data behind the daily list is read on the first list (the roster and its features).
    daily = httpx.get(f"{base}/v1/inspections/chicago/daily?limit=100", timeout=120)
    assert daily.status_code == 200, daily.text[:200]
    steps["daily_list"] = memory_mb(pid)
    for form in ("records", "parquet"):
        path, content_type = bodies[form]
        steps["peak_reset"] = reset_peak(pid)  # else the peaks below are since start-up
        seconds = post_batches(url, path, content_type, 5)
        steps[f"batches_{form}"] = memory_mb(pid) | {"seconds_per_batch": seconds}
    path, content_type = bodies["records"]
    post_batches(url, path, content_type, batches)
    steps["after_more_batches"] = memory_mb(pid) | {"batches": batches}
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=60, help="JSON batches sent after the measured ones")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    wrk = ensure_wrk()
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    real = sample_records(10_000)
    results: dict[str, Any] = {"client": "wrk" if wrk else "httpx (asyncio)", "model": MODEL}
    with tempfile.TemporaryDirectory() as tmp:
        bodies = batch_bodies(Path(tmp), real, example_records(10_000))
        for form in ("records", "parquet"):
            results[f"{form}_mb"] = bodies[form][0].stat().st_size / 1e6
        floor_url, floor = start_floor(tmp, env, None)
        try:
            started = memory_mb(floor.pid)
            load(floor_url, b"{}", 16, LOAD_SECONDS, wrk, None)
            results["floor"] = {"started": started, "loaded": memory_mb(floor.pid)}
        finally:
            stop(floor)
        for name, extra in (
            ("civicrisk", {}),
            ("without_known_homes", {"CIVICRISK_LEAD_KNOWN_HOMES": "false"}),
        ):
            url, service = start_service(env | extra, None)  # returns once ready and warmed up
            try:
                results[name] = measure_service(url, service.pid, bodies, wrk, args.batches)
            finally:
                stop(service)
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, " ".join(["python", "bench/memory_bench.py", *sys.argv[1:]]))


SECTION = """## Memory

Resident memory of one uvicorn worker (MB, from /proc: VmRSS, and VmHWM for the peaks: since
start-up on the "warmed up" rows, since the step began on the batch rows), measured on this machine with:

    {command}

| server, step | resident | peak | vs floor | anonymous (what a further worker adds) |
|---|---|---|---|---|
| empty FastAPI endpoint (floor), started | {floor_start:.0f} | | 1.0 | {floor_anonymous:.0f} |
| the floor after {seconds} s of load ({client}, 16 connections) | {floor_loaded:.0f} | | | |
{rows}

Every civicrisk row is one worker: libraries, bundles, the lead engine and, from the daily list on,
Chicago's data. A further worker adds about its anonymous memory (library code is shared); "after
{batches} more batches" against the batch steps shows whether memory grows with use.
"""

STEPS = (
    ("warm", "ready and warmed up (the lead engine built)"),
    ("single_load", "after {seconds} s of single-record scoring"),
    ("lead_load", "after {seconds} s of lead requests"),
    ("daily_list", "after a Chicago daily list (its city data read)"),
    ("batches_records", "5 JSON batches of 10,000 real rows ({records_mb:.1f} MB each)"),
    ("batches_parquet", "5 Parquet batches of the same rows ({parquet_mb:.1f} MB each)"),
    ("after_more_batches", "after {batches} more JSON batches"),
)
NAMES = {"civicrisk": "civicrisk", "without_known_homes": "civicrisk, `CIVICRISK_LEAD_KNOWN_HOMES=false`"}


def write_readme(results: dict[str, Any], command: str) -> None:
    floor = results["floor"]["started"]["rss_mb"]
    sizes = {"seconds": LOAD_SECONDS, "batches": results["civicrisk"]["after_more_batches"]["batches"]}
    sizes |= {"records_mb": results["records_mb"], "parquet_mb": results["parquet_mb"]}
    rows = []
    for name, label in NAMES.items():
        for step, text in STEPS:
            if name != "civicrisk" and step in ("single_load", "lead_load"):
                continue  # measured too, and the same as warmed up in every run so far
            measured = results[name][step]
            # The warm step's peak is start-up's (models, city data, the lead engine's build).
            shown = step == "warm" or (step.startswith("batches") and results[name]["peak_reset"])
            peak = f"{measured['peak_mb']:.0f}" if shown else ""
            rows.append(
                f"| {label}: {text.format(**sizes)} | {measured['rss_mb']:.0f} | {peak} "
                f"| {measured['rss_mb'] / floor:.1f} | {measured['anonymous_mb']:.0f} |"
            )
    section = SECTION.format(
        command=command, floor_start=floor, floor_loaded=results["floor"]["loaded"]["rss_mb"],
        floor_anonymous=results["floor"]["started"]["anonymous_mb"],
        seconds=LOAD_SECONDS, client=results["client"], rows="\n".join(rows), batches=sizes["batches"],
    )  # fmt: skip
    replace_section("## Memory", section)


if __name__ == "__main__":
    main()
