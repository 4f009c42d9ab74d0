"""Soak test (not in CI): the service as deployed, under a mixed load for minutes, with reloads and a
worker killed halfway.

    .venv/bin/python bench/soak.py [--minutes 10] [--connections 64] [--workers 2]

`civicrisk serve --workers N` on loopback, with the local PostgreSQL (a fresh schema) when it answers,
else an SQLite file. Load: scoring, Lead Safe, CDS Hooks, daily lists over many dates and outcomes
posts, from `--connections` concurrent clients; `POST /v1/admin/reload` every 30 s; at half time one
worker is killed (SIGKILL). Reported: answers by route and status, p50/p99 per route, connection
errors and when they happened (expected only for requests in flight on the killed worker), the
service's memory (RSS and PSS summed over its processes, the workers' list processes included)
sampled every 5 s and its growth from 90 s after the kill (the replacement worker warmed up) to the
end, and whether every acknowledged outcome is in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
PARTNER_KEY = "soak-partner-key-0123456789"
ADMIN_KEY = "soak-admin-key-0123456789"
SERVICE_URL = "https://risk.example.org"
ISSUER, KID = "https://ehr.example.org", "soak-key"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Share of requests per route; the rest of the mix is scoring.
MIX = {"lead": 0.12, "cds": 0.08, "daily": 0.15, "outcomes": 0.08}
WARM_UP_SECONDS = 90  # after the kill, before the memory growth window opens
DAILY_DATES = [(date(2014, 6, 1) + timedelta(days=day)).isoformat() for day in range(60)]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    connection_errors: list[tuple[float, str, str]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)


def _database() -> tuple[str, str | None]:
    """A fresh PostgreSQL schema (and its name) when the local server answers, else SQLite."""
    try:
        engine = sa.create_engine(POSTGRES, connect_args={"connect_timeout": 3})
        schema = f"soak_{uuid.uuid4().hex[:10]}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        return f"{POSTGRES}?options=-csearch_path%3D{schema}", schema
    except Exception:  # no server here: the single-machine default
        return f"sqlite:///{tempfile.mkdtemp()}/soak.sqlite3", None


def _issuers(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path.write_text(json.dumps({"issuers": {ISSUER: {"keys": [jwk | {"kid": KID, "alg": "ES256"}]}}}))
    return path


def _token(key: ec.EllipticCurvePrivateKey) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": f"{SERVICE_URL}/cds-services/lead-risk", "iat": now, "exp": now + 300}
    return jwt.encode(claims | {"jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": KID})


def _child(days_old: int) -> dict[str, Any]:
    today = date.today()
    return {
        "timestamp": datetime.now(UTC).isoformat(sep=" ", timespec="milliseconds"),
        **{"network_id": "Soak Health", "clinic_id": "EF", "location_id": "loc", "patient_id": "1"},
        **{"address1": "1600 W Division St", "city": "Chicago", "state": "IL", "zip": "60622"},
        "date_of_birth": (today - timedelta(days=days_old)).isoformat(),
        **{"gender": "F", "race": "2054-5", "ethnicity": "2186-5"},
    }


def _patient(days_old: int) -> dict[str, Any]:
    home = {"use": "home", "line": ["1600 W Division St"], "city": "Chicago", "state": "IL"}
    birth = (date.today() - timedelta(days=days_old)).isoformat()
    return {"resourceType": "Patient", "id": "soak", "birthDate": birth, "address": [home]}


def _record(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        entry["name"]: entry["allowed_values"][0] if entry["type"] == "category" else random.random()
        for entry in manifest["feature_schema"]
    }


def _request(route: str, ehr: ec.EllipticCurvePrivateKey, manifest: dict[str, Any]) -> dict[str, Any]:
    partner = {"X-API-Key": PARTNER_KEY}
    if route == "lead":
        return {"method": "POST", "url": "/v1/lead/risk", "json": _child(random.randint(30, 330)),
                "headers": partner}  # fmt: skip
    if route == "cds":
        body = {"hook": "patient-view", "hookInstance": uuid.uuid4().hex,
                "context": {"userId": "Practitioner/1", "patientId": "soak"},
                "prefetch": {"patient": _patient(random.randint(30, 330))}}  # fmt: skip
        return {"method": "POST", "url": "/cds-services/lead-risk", "json": body,
                "headers": {"Authorization": f"Bearer {_token(ehr)}"}}  # fmt: skip
    if route == "daily":
        params = {"date": random.choice(DAILY_DATES), "limit": "100"}
        return {"method": "GET", "url": "/v1/inspections/chicago/daily", "params": params}
    if route == "outcomes":
        outcome = {"inspection_id": f"soak-{uuid.uuid4().hex[:16]}", "establishment_id": "2298459",
                   "date": "2014-08-28", "result": "Pass", "inspection_type": "Canvass"}  # fmt: skip
        return {"method": "POST", "url": "/v1/inspections/chicago/outcomes",
                "json": {"outcomes": [outcome]}, "headers": partner}  # fmt: skip
    records = [_record(manifest) for _ in range(random.choice([1, 1, 1, 5, 50]))]
    return {"method": "POST", "url": "/v1/models/chicago-food-inspections/score",
            "json": {"records": records}, "headers": partner}  # fmt: skip


def _pick() -> str:
    draw, total = random.random(), 0.0
    for route, share in MIX.items():
        total += share
        if draw < total:
            return route
    return "score"


async def _client_loop(
    client: httpx.AsyncClient, stop_at: float, started: float, tally: Tally, ehr: Any, manifest: Any
) -> None:
    while time.monotonic() < stop_at:
        route = _pick()
        request = _request(route, ehr, manifest)
        begun = time.monotonic()
        try:
            response = await client.request(**request)
        except httpx.TransportError as error:
            tally.connection_errors.append((begun - started, route, type(error).__name__))
            continue
        tally.latencies[route].append(time.monotonic() - begun)
        tally.statuses[(route, response.status_code)] += 1
        if route == "outcomes" and response.status_code in (200, 201):
            answer = response.json()
            tally.acknowledged.update(answer["created"] + answer["already_recorded"])


async def _reloads(client: httpx.AsyncClient, stop_at: float, started: float, tally: Tally) -> None:
    while time.monotonic() + 30 < stop_at:
        await asyncio.sleep(30)
        try:
            response = await client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
        except httpx.TransportError as error:  # counted, as a client's would be; the soak goes on
            tally.connection_errors.append((time.monotonic() - started, "reload", type(error).__name__))
            continue
        tally.statuses[("reload", response.status_code)] += 1


def _children(pid: int) -> list[int]:
    """The process's children; none once it (or a thread of it) has ended."""
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        return found
    return found


def _descendants(pid: int) -> list[int]:
    """The workers and what they forked (their list processes)."""
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in _children(parent)]
        found += frontier
    return found


def _memory_mb(pids: list[int]) -> tuple[float, float]:
    rss = pss = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss, pss


async def _watch(master: int, stop_at: float, started: float, kill_at: float, samples: list[Any]) -> None:
    killed = False
    while time.monotonic() < stop_at:
        pids = [master, *_descendants(master)]  # the workers' list processes too
        samples.append((time.monotonic() - started, *_memory_mb(pids)))
        if not killed and time.monotonic() >= kill_at:
            workers = _children(master)
            os.kill(workers[-1], signal.SIGKILL)
            samples.append((time.monotonic() - started, "killed", workers[-1]))
            killed = True
        await asyncio.sleep(5)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _run(
    url: str, master: int, args: argparse.Namespace, ehr: Any, manifest: Any
) -> tuple[Tally, list[Any]]:
    tally, samples = Tally(), []
    started = time.monotonic()
    stop_at = started + args.minutes * 60
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(_client_loop(client, stop_at, started, tally, ehr, manifest) for _ in range(args.connections)),
            _reloads(client, stop_at, started, tally),
            _watch(master, stop_at, started, started + args.minutes * 30, samples),
        )
    return tally, samples


def _stored(database_url: str, ids: set[str]) -> int:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT inspection_id FROM inspection_outcomes")).scalars()
        found = ids & set(rows)
    engine.dispose()
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="civicrisk-soak-"))
    database_url, schema = _database()
    ehr = ec.generate_private_key(ec.SECP256R1())
    env = os.environ | {
        "CIVICRISK_API_KEYS": PARTNER_KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_DATABASE_URL": database_url,
        "CIVICRISK_KEYS_FILE": str(scratch / "no-keys-file.json"),
        "CIVICRISK_CDS_ISSUERS_FILE": str(_issuers(scratch / "issuers.json", ehr)),
        "CIVICRISK_CDS_SERVICE_URL": SERVICE_URL,
        "CIVICRISK_ACCESS_LOG": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics"),
    }
    command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(args.port),
               "--workers", str(args.workers)]  # fmt: skip
    log = (scratch / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {scratch / 'server.log'}")
            time.sleep(0.5)
        time.sleep(5)  # the lead engine's warm-up
        manifest = httpx.get(f"{url}/v1/models/chicago-food-inspections").json()
        tally, samples = asyncio.run(_run(url, server.pid, args, ehr, manifest))
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    stored = _stored(database_url, tally.acknowledged)
    if schema is not None:
        engine = sa.create_engine(POSTGRES)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    _report(args, tally, samples, stored, database_url)


def _report(
    args: argparse.Namespace, tally: Tally, samples: list[Any], stored: int, database_url: str
) -> None:
    print(f"# soak: {args.minutes:g} min, {args.connections} connections, {args.workers} workers, "
          f"{'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'}")  # fmt: skip
    print("| route | answers | statuses | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for route in sorted(tally.latencies):
        statuses = ", ".join(
            f"{status}: {n}" for (r, status), n in sorted(tally.statuses.items()) if r == route
        )
        values = tally.latencies[route]
        print(f"| {route} | {len(values)} | {statuses} | {_p(values, 0.5):.1f} | {_p(values, 0.99):.1f} |")
    reloads = {status: n for (route, status), n in tally.statuses.items() if route == "reload"}
    print(f"reloads: {reloads}")
    kill = next((s for s in samples if s[1] == "killed"), None)
    print(f"worker killed at {kill[0]:.0f} s (pid {kill[2]})" if kill else "no worker killed")
    errors = Counter((round(at), route, kind) for at, route, kind in tally.connection_errors)
    print(f"connection errors: {len(tally.connection_errors)} {dict(errors)}")
    memory = [s for s in samples if s[1] != "killed"]
    # Growth is read from once the worker started in place of the killed one has warmed up (its
    # lead engine, city data and first lists: about a minute on a 2-vCPU host), to the end.
    warmed = (kill[0] if kill else args.minutes * 30) + WARM_UP_SECONDS
    second_half = [s for s in memory if s[0] >= warmed]
    if second_half:
        first, last = second_half[0], second_half[-1]
        growth = (last[1] / first[1] - 1) * 100
        print(f"memory: RSS {first[1]:.0f} -> {last[1]:.0f} MB ({growth:+.1f}%), "
              f"PSS {first[2]:.0f} -> {last[2]:.0f} MB from {first[0]:.0f} s to {last[0]:.0f} s")  # fmt: skip
    print(f"memory samples (s, RSS MB, PSS MB): {[(round(s[0]), round(s[1]), round(s[2])) for s in memory]}")
    print(f"outcomes acknowledged: {len(tally.acknowledged)}, found in the database: {stored}")
    unexpected = {key: n for key, n in tally.statuses.items() if not 200 <= key[1] < 300}
    print(f"non-2xx answers: {unexpected or 'none'}")


if __name__ == "__main__":
    main()
