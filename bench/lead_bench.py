# ruff: noqa: E501  (the wrk script and the Markdown table template have long lines)
"""Hospital lead endpoint benchmark: floor (empty FastAPI endpoint) vs POST /v1/lead/risk and the Lead
Safe drop-in's POST /upload/insert/ with an OAuth bearer token, same client.

    .venv/bin/python bench/lead_bench.py [--duration 10] [--connections 16] [--write-readme]

The same runners as bench/serve_bench.py (imported from it): both servers under one uvicorn worker on
loopback, pinned to core 0 with the client on core 1 (--no-pin turns that off), `wrk` when installed
(else an asyncio httpx client), the floor measured in the same run. Each lead request
resolves an address with the offline resolver, finds its tract and community area, counts earlier
tests nearby as of the visit, scores and writes the notes. The homes are the city's own address points;
a second run sends homes between two known addresses (the resolver interpolates them), which miss the
engine's table of known homes and take the slower path. Both are sent again to the drop-in's
`/upload/insert/` with `Authorization: Bearer TOKEN`, the token from `/oauth/token` for an OAuth client
made in the server's database as a hospital's (`civicrisk keys create --client`). With --write-readme
the table is written to bench/README.md, section "Hospital lead endpoint".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd

# The runners, server start-up (with CPU pinning) and the floor app are serve_bench's, so both
# benchmarks measure the same way.
from serve_bench import (
    CLIENT_CPUS,
    KEY,
    ROOT,
    SERVER_CPUS,
    ensure_wrk,
    free_port,
    interleaved,
    load,
    ratios,
    replace_section,
    start,
    start_floor,
    stop,
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


def between_bodies(count: int = ADDRESSES, seed: int = 0) -> list[bytes]:
    """Requests for homes between known addresses: a drawn address point's house number moved by 2
    (the same side of the street), kept where the resolver then interpolates between two known
    numbers. Such a home is not in the engine's table of known homes, so its place and history
    are worked out per request (point in polygon, k-d tree): the slower path, measured on its own."""
    sys.path.insert(0, str(ROOT))
    from training.address import AddressNotFound, load_address_index

    index = load_address_index(ROOT / "data" / "sample" / "chicago" / "address_points.csv.gz")
    points = pd.read_csv(
        ROOT / "data" / "sample" / "chicago" / "address_points.csv.gz", dtype={"zip": "string"}
    )
    chosen = points.dropna(subset=["address", "zip"]).sample(count * 4, random_state=seed)
    bodies = []
    for address, zip_code in zip(chosen["address"], chosen["zip"], strict=True):
        number, _, street = str(address).partition(" ")
        if not number.isdigit():
            continue
        moved = f"{int(number) + 2} {street}".title()
        try:
            if index.resolve(moved).method != "interpolated":
                continue
        except AddressNotFound:
            continue
        bodies.append(lead_body(moved, str(zip_code).split(".")[0]))
        if len(bodies) == count:
            break
    return bodies


def bearer_token(base: str, database_url: str) -> str:
    """An OAuth client in the server's database (as `civicrisk keys create --client` makes one), and
    an access token for it from the server's /oauth/token, as a Lead Safe client gets one."""
    sys.path.insert(0, str(ROOT))
    from app.hospitals.oauth_clients import create_client
    from app.platform.storage.repository import Repository

    entry, secret = create_client(Repository.open(database_url), "bench hospital", ["lead"])
    assert secret is not None
    answer = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(entry.id, secret), timeout=30
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def measure(
    args: argparse.Namespace, wrk: str | None, cpus: tuple[set[int], set[int]] | None
) -> dict[str, Any]:
    env = os.environ | {"CIVICRISK_API_KEYS": KEY}
    results: dict[str, Any] = {"client": "wrk" if wrk else "httpx (asyncio)", "pinned": cpus is not None}
    server_cpus, client_cpus = cpus if cpus is not None else (None, None)

    def run(
        url: str,
        body: bytes | list[bytes],
        server: subprocess.Popen[bytes],
        headers: dict[str, str] | None = None,
    ) -> Callable[[], dict[str, float]]:
        return lambda: load(url, body, args.connections, args.duration, wrk, client_cpus, server.pid, headers)

    port = free_port()
    command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(port), "--workers", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/civicrisk.sqlite3"
        env |= {"CIVICRISK_DATABASE_URL": database_url, "CIVICRISK_KEYS_FILE": f"{tmp}/keys.json"}
        floor_url, floor = start_floor(tmp, env, server_cpus)
        service = start(command, env, server_cpus)
        try:
            url = f"http://127.0.0.1:{port}/v1/lead/risk"
            wait_ready(f"http://127.0.0.1:{port}/health/ready", service)
            headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
            # The first request waits for the lead engine (the city's test history, the address and
            # place indexes) to be built.
            started = time.perf_counter()
            first = httpx.post(url, content=lead_body(), headers=headers, timeout=120)
            assert first.status_code == 200, first.text
            results["first_request_s"] = time.perf_counter() - started
            # Every body is checked once; the load cycles through those that get a score (the others
            # would count as errors in wrk: an address point the resolver cannot place, say).
            bodies = [
                b for b in lead_bodies() if httpx.post(url, content=b, headers=headers).status_code == 200
            ]
            between = [
                b for b in between_bodies() if httpx.post(url, content=b, headers=headers).status_code == 200
            ]
            results["addresses"] = {"sampled": ADDRESSES, "scored": len(bodies), "between": len(between)}
            base = f"http://127.0.0.1:{port}"
            bearer = {"Authorization": f"Bearer {bearer_token(base, database_url)}"}
            insert = f"{base}/upload/insert/"
            assert httpx.post(insert, content=bodies[0], headers=headers | bearer).status_code == 200
            # Each drop-in run right after the /v1/lead/risk run of the same homes: the pairs compare.
            runs = {
                "floor": run(floor_url, b"{}", floor),
                "lead": run(url, bodies, service),
                "insert": run(insert, bodies, service, bearer),
                "lead_between": run(url, between, service),
                "insert_between": run(insert, between, service, bearer),
            }
            results |= interleaved(runs, args.rounds)
        finally:
            stop(floor, service)
    results["ratio"] = ratios(results, "lead")
    results["ratio_between"] = ratios(results, "lead_between")
    results["ratio_insert"] = ratios(results, "insert")
    results["ratio_insert_between"] = ratios(results, "insert_between")
    return results


SECTION = """## Hospital lead endpoint

One uvicorn worker per server, pinned to core 0 ({pinned}), client {client} on core 1 at {connections}
connections, {rounds} rounds of {duration} s, floor and lead endpoint taking turns; each row its median
round, "vs floor" with the lowest and highest round's ratio; civicrisk with its default settings:

    python bench/lead_bench.py --duration {duration} --rounds {rounds} --write-readme

| run | throughput | p50 | p99 | vs floor | server CPU per request | vs floor, by CPU | target |
|---|---|---|---|---|---|---|---|
| empty FastAPI endpoint (floor) | {floor_rps:,.0f} req/s | {floor_p50:.2f} ms | {floor_p99:.2f} ms | 1.00 | {floor_cpu:.0f} µs | 1.00 | |
| `POST /v1/lead/risk`: address → tract → features → score → notes, homes at known addresses | {lead_rps:,.0f} req/s | {lead_p50:.2f} ms | {lead_p99:.2f} ms | {ratio:.3f} ({low:.2f}–{high:.2f}) | {lead_cpu:.0f} µs | {cpu_ratio:.3f} | ≥ 0.50, p99 ≤ 30 ms |
| the same, homes between known addresses (interpolated) | {between_rps:,.0f} req/s | {between_p50:.2f} ms | {between_p99:.2f} ms | {between_ratio:.3f} ({between_low:.2f}–{between_high:.2f}) | {between_cpu:.0f} µs | {between_cpu_ratio:.3f} | ≥ 0.50 (issue #20) |
| Lead Safe drop-in `POST /upload/insert/` with `Authorization: Bearer` (an OAuth token), homes at known addresses | {insert_rps:,.0f} req/s | {insert_p50:.2f} ms | {insert_p99:.2f} ms | {insert_ratio:.3f} ({insert_low:.2f}–{insert_high:.2f}) | {insert_cpu:.0f} µs | {insert_cpu_ratio:.3f} | ≥ 0.50 (issue #20) |
| the same, homes between known addresses | {insert_between_rps:,.0f} req/s | {insert_between_p50:.2f} ms | {insert_between_p99:.2f} ms | {insert_between_ratio:.3f} ({insert_between_low:.2f}–{insert_between_high:.2f}) | {insert_between_cpu:.0f} µs | {insert_between_cpu_ratio:.3f} | ≥ 0.50 (issue #20) |

Per round, req/s: floor {floor_rounds}, lead {lead_rounds}, between {between_rounds}, insert
{insert_rounds}, insert between {insert_between_rounds}; server CPU µs a request: floor {floor_cpu_rounds},
lead {lead_cpu_rounds}, between {between_cpu_rounds}, insert {insert_cpu_rounds}, insert between
{insert_between_cpu_rounds}. Errors: floor {floor_errors:.0f}, lead {lead_errors:.0f}, between
{between_errors:.0f}, insert {insert_errors:.0f}, insert between {insert_between_errors:.0f}. The load cycles through {scored} of {sampled} homes drawn (seeded)
from the city's address points, each resolved afresh; the second row's {between} homes (house numbers moved
by 2 between two known ones) are not in the known-homes table: each is placed per request from the boundary shapes
that meet its prepared 40 m cell and its earlier tests nearby counted from the cell's lists (`app/hospitals/nearby_tests.py`;
the city-wide grid and k-d tree for a cell holding no known address). The drop-in rows send the same homes to `/upload/insert/` with `Authorization: Bearer` and a token from
`/oauth/token`. The first request after start-up took {first:.1f} s (it waits for the engine's start-up build).
"""


def write_readme(results: dict[str, Any], args: argparse.Namespace) -> None:
    floor, lead, ratio = results["floor"], results["lead"], results["ratio"]
    between = results["lead_between"]
    rows = {}
    for name in ("insert", "insert_between"):
        run, ratio_of = results[name], results[f"ratio_{name}"]
        rows |= {
            f"{name}_rps": run["rps"], f"{name}_p50": run["p50_ms"], f"{name}_p99": run["p99_ms"],
            f"{name}_ratio": ratio_of["median"], f"{name}_low": ratio_of["low"], f"{name}_high": ratio_of["high"],
            f"{name}_cpu_ratio": ratio_of["cpu"], f"{name}_cpu": statistics.median(run["rounds_cpu_us"]),
            f"{name}_rounds": run["rounds_rps"], f"{name}_cpu_rounds": run["rounds_cpu_us"],
            f"{name}_errors": run["errors"],
        }  # fmt: skip
    text = SECTION.format(
        **rows,
        client=results["client"], pinned="yes" if results["pinned"] else "no", connections=args.connections,
        duration=args.duration, rounds=args.rounds,
        floor_rps=floor["rps"], floor_p50=floor["p50_ms"], floor_p99=floor["p99_ms"],
        lead_rps=lead["rps"], lead_p50=lead["p50_ms"], lead_p99=lead["p99_ms"],
        ratio=ratio["median"], low=ratio["low"], high=ratio["high"], cpu_ratio=ratio["cpu"],
        floor_cpu=statistics.median(floor["rounds_cpu_us"]), lead_cpu=statistics.median(lead["rounds_cpu_us"]),
        floor_cpu_rounds=floor["rounds_cpu_us"], lead_cpu_rounds=lead["rounds_cpu_us"],
        floor_rounds=floor["rounds_rps"], lead_rounds=lead["rounds_rps"],
        floor_errors=floor["errors"], lead_errors=lead["errors"],
        between_rps=between["rps"], between_p50=between["p50_ms"], between_p99=between["p99_ms"],
        between_ratio=results["ratio_between"]["median"], between_low=results["ratio_between"]["low"],
        between_high=results["ratio_between"]["high"], between_cpu_ratio=results["ratio_between"]["cpu"],
        between_cpu=statistics.median(between["rounds_cpu_us"]), between_rounds=between["rounds_rps"],
        between_cpu_rounds=between["rounds_cpu_us"], between_errors=between["errors"],
        between=results["addresses"]["between"],
        scored=results["addresses"]["scored"], sampled=results["addresses"]["sampled"],
        first=results["first_request_s"],
    )  # fmt: skip
    replace_section("## Hospital lead endpoint", text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="floor / lead runs, interleaved")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=["auto", "httpx"], default="auto")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to cores")
    parser.add_argument("--cds", action="store_true", help="the CDS Hooks case instead (bench/cds_load.py)")
    args = parser.parse_args()
    cpus = None
    if not args.no_pin and len(os.sched_getaffinity(0)) >= 2:
        cpus = (SERVER_CPUS, CLIENT_CPUS)
        os.sched_setaffinity(0, CLIENT_CPUS)  # this process sends the first request
    wrk = ensure_wrk() if args.client == "auto" else None
    if args.cds:
        from cds_load import measure_cds, write_cds_readme

        results = measure_cds(args, wrk, cpus)
        print(json.dumps(results, indent=2))
        if args.write_readme:
            write_cds_readme(results, args)
        return
    results = measure(args, wrk, cpus)
    print(json.dumps(results, indent=2))
    if args.write_readme:
        write_readme(results, args)


if __name__ == "__main__":
    main()
