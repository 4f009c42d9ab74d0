# ruff: noqa: E501  (the wrk script and the Markdown table template have long lines)
"""The CDS Hooks case of bench/lead_bench.py (`--cds`): `POST /cds-services/lead-risk` as an EHR calls
it, every request with a fresh JWT (its own `jti`, signed just before the round, RS384 and ES384 as
CDS Hooks 2.0 recommends) and the prefetch (the Patient at a home drawn from the city's address
points, and a searchset of one earlier blood lead Observation). Same runners as the Lead Safe case
(serve_bench's): one uvicorn worker pinned to core 0, wrk on core 1, the floor measured between.

A token is accepted once, so wrk's Lua script gives each request the next unused token of its
thread's share; a run that used them all would show 401s as errors (none did).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pandas as pd
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from serve_bench import (
    CLIENT_CPUS,
    ROOT,
    WRK_DONE,
    cpu_seconds,
    free_port,
    interleaved,
    load,
    ratios,
    replace_section,
    start,
    start_floor,
    stop,
    wait_ready,
    wrk_results,
)

SERVICE_URL = "https://lead.hospital.example"
HOOK_PATH = "/cds-services/lead-risk"
ISSUER = "https://ehr.hospital.example"
HOMES = 300
TOKENS_PER_SECOND = 7000  # more than either run answers a second: no request goes without a fresh token
THREADS = 2


def _keys() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Signing keys by algorithm, with the public JWK the issuers file lists."""
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = {}
    for alg, key, kind in (
        ("ES384", ec_key, jwt.algorithms.ECAlgorithm),
        ("RS384", rsa_key, jwt.algorithms.RSAAlgorithm),
    ):
        public = json.loads(kind.to_jwk(key.public_key())) | {"kid": alg.lower(), "alg": alg, "use": "sig"}
        keys[alg] = (key, public)
    return keys


def hook_bodies(count: int = HOMES, seed: int = 0) -> list[bytes]:
    points = pd.read_csv(
        ROOT / "data" / "sample" / "chicago" / "address_points.csv.gz", dtype={"zip": "string"}
    )
    chosen = points.dropna(subset=["address"]).sample(count, random_state=seed)
    born = (date.today() - timedelta(days=300)).isoformat()
    tested = (date.today() - timedelta(days=30)).isoformat()
    bodies = []
    for index, address in enumerate(chosen["address"]):
        patient_id = f"bench-{index}"
        observation = {
            "resourceType": "Observation",
            "id": f"bll-{index}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "10368-9"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": tested,
            "valueQuantity": {
                "value": 2.0,
                "unit": "ug/dL",
                "system": "http://unitsofmeasure.org",
                "code": "ug/dL",
            },
        }
        body = {
            "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": patient_id},
            "prefetch": {
                "patient": {"resourceType": "Patient", "id": patient_id, "birthDate": born,
                            "address": [{"use": "home", "line": [str(address).title()], "city": "Chicago", "state": "IL"}]},
                "bloodLead": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": observation}]},
            },
        }  # fmt: skip
        bodies.append(json.dumps(body).encode())
    return bodies


def tokens(key: Any, alg: str, count: int) -> list[str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": f"{SERVICE_URL}{HOOK_PATH}", "iat": now, "exp": now + 300}
    headers = {"kid": alg.lower(), "typ": "JWT"}
    return [
        jwt.encode(claims | {"jti": str(uuid.uuid4())}, key, algorithm=alg, headers=headers)
        for _ in range(count)
    ]


def _script(tmp: Path, body_file: Path, token_file: Path) -> Path:
    """wrk's Lua: thread i of THREADS sends tokens i, i + THREADS, ... (each once), cycling the bodies."""
    script = tmp / "cds.lua"
    script.write_text(
        "local counter = 1\n"
        "function setup(thread)\n  thread:set('id', counter)\n  counter = counter + 1\nend\n"
        "function init(args)\n"
        "  tokens = {}\n"
        f"  for line in io.lines({json.dumps(str(token_file))}) do tokens[#tokens + 1] = line end\n"
        "  bodies = {}\n"
        f"  for line in io.lines({json.dumps(str(body_file))}) do bodies[#bodies + 1] = line end\n"
        "  n = id\n"
        "end\n"
        "request = function()\n"
        "  local token = tokens[n] or 'spent'\n"
        f"  n = n + {THREADS}\n"
        "  local headers = {['Content-Type'] = 'application/json', ['Authorization'] = 'Bearer ' .. token}\n"
        "  return wrk.format('POST', nil, headers, bodies[n % #bodies + 1])\n"
        "end\n" + WRK_DONE
    )
    return script


def cds_run(
    url: str,
    bodies: list[bytes],
    key: Any,
    alg: str,
    args: Any,
    wrk: str,
    server: subprocess.Popen[bytes],
    tmp: Path,
    p99s: list[float],
) -> Callable[[], dict[str, float]]:
    """One round: fresh tokens signed, then wrk; each round's p99 is appended to `p99s`."""
    body_file = tmp / "bodies.lines"
    body_file.write_text("\n".join(body.decode() for body in bodies) + "\n")

    def run() -> dict[str, float]:
        token_file = tmp / f"tokens-{alg}.txt"
        token_file.write_text("\n".join(tokens(key, alg, TOKENS_PER_SECOND * args.duration)) + "\n")
        script = str(_script(tmp, body_file, token_file))
        before = cpu_seconds(server.pid)
        result = wrk_results(wrk, url, script, args.connections, args.duration, args.client_cpus, THREADS)
        after = cpu_seconds(server.pid)
        if before is not None and after is not None and result["requests"]:
            result["cpu_us"] = (after - before) / result["requests"] * 1e6
        p99s.append(result["p99_ms"])
        return result

    return run  # fmt: skip


def measure_cds(args: Any, wrk: str | None, cpus: tuple[set[int], set[int]] | None) -> dict[str, Any]:
    if wrk is None:
        raise SystemExit("the CDS Hooks case needs wrk: its Lua script gives each request a fresh token")
    server_cpus = cpus[0] if cpus else None
    args.client_cpus = CLIENT_CPUS if cpus else None
    keys = _keys()
    p99s: dict[str, list[float]] = {"cds_rs384": [], "cds_es384": []}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        issuers = tmp / "issuers.json"
        issuers.write_text(
            json.dumps({"issuers": {ISSUER: {"keys": [public for _, public in keys.values()]}}})
        )
        env = os.environ | {
            "CIVICRISK_API_KEYS": "bench-partner-key-0123456789",
            "CIVICRISK_CDS_ISSUERS_FILE": str(issuers),
            "CIVICRISK_CDS_SERVICE_URL": SERVICE_URL,
        }
        floor_url, floor = start_floor(folder, env, server_cpus)
        port = free_port()
        command = [sys.executable, "-m", "civicrisk.cli", "serve", "--port", str(port), "--workers", "1"]
        service = start(command, env, server_cpus)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/health/ready", service)
            url = f"{base}{HOOK_PATH}"
            bodies = hook_bodies()
            rs_key = keys["RS384"][0]
            started = time.perf_counter()
            (token,) = tokens(rs_key, "RS384", 1)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            first = httpx.post(url, content=bodies[0], timeout=120, headers=headers)
            assert first.status_code == 200, first.text
            first_s = time.perf_counter() - started
            carded = 0  # every body is checked once: each answers 200, most with a card
            for body, token in zip(bodies, tokens(rs_key, "RS384", len(bodies)), strict=True):
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
                answer = httpx.post(url, content=body, headers=headers)
                assert answer.status_code == 200, answer.text
                carded += bool(answer.json()["cards"])
            runs = {
                "floor": lambda: load(
                    floor_url, b"{}", args.connections, args.duration, wrk, args.client_cpus, floor.pid
                ),
                "cds_rs384": cds_run(
                    url, bodies, rs_key, "RS384", args, wrk, service, tmp, p99s["cds_rs384"]
                ),
                "cds_es384": cds_run(
                    url, bodies, keys["ES384"][0], "ES384", args, wrk, service, tmp, p99s["cds_es384"]
                ),
            }
            results = interleaved(runs, args.rounds)
        finally:
            stop(floor, service)
    for name, rounds in p99s.items():
        results[name]["rounds_p99"] = rounds
    results |= {
        "first_request_s": first_s,
        "homes": len(bodies),
        "with_card": carded,
        "pinned": cpus is not None,
    }
    results["ratio_rs384"] = ratios(results, "cds_rs384")
    results["ratio_es384"] = ratios(results, "cds_es384")
    return results


SECTION = """## CDS Hooks call

`POST /cds-services/lead-risk` as an EHR calls it: every request with a fresh JWT (its own `jti`,
signed before the round; the service checks signature, `kid`, `typ`, `aud`, lifetime and spends the
`jti`) and the prefetch (a Patient at one of {homes} homes drawn from the city's address points, {with_card}
of which get a card, and one earlier blood lead Observation); the answer is the card and the FHIR
RiskAssessment. One uvicorn worker, wrk, pinned to cores 0 and 1: {pinned}, at {connections} connections,
{rounds} rounds of {duration} s, the floor between; each row its median round:

    python bench/lead_bench.py --cds --duration {duration} --rounds {rounds} --write-readme

| run | throughput | p50 | p99 (median round) | p99, every round | server CPU per request | target |
|---|---|---|---|---|---|---|
| empty FastAPI endpoint (floor) | {floor_rps:,.0f} req/s | {floor_p50:.2f} ms | {floor_p99:.2f} ms | | {floor_cpu:.0f} µs | |
| CDS Hooks call, RS384 token | {rs_rps:,.0f} req/s | {rs_p50:.2f} ms | {rs_p99:.2f} ms | {rs_rounds} | {rs_cpu:.0f} µs | p99 ≤ 15 ms |
| CDS Hooks call, ES384 token | {es_rps:,.0f} req/s | {es_p50:.2f} ms | {es_p99:.2f} ms | {es_rounds} | {es_cpu:.0f} µs | p99 ≤ 15 ms |

Errors (non-2xx, a spent token included): floor {floor_errors:.0f}, RS384 {rs_errors:.0f}, ES384 {es_errors:.0f}.
Verifying the signature is most of the difference between the two rows: ES384 (P-384 ECDSA) costs
about 0.5 ms of CPU a token here, RS384 (RSA-2048) about 0.06 ms (PyJWT with `cryptography`).
"""


def write_cds_readme(results: dict[str, Any], args: Any) -> None:
    floor, rs, es = results["floor"], results["cds_rs384"], results["cds_es384"]
    text = SECTION.format(
        homes=results["homes"], with_card=results["with_card"], pinned="yes" if results["pinned"] else "no",
        connections=args.connections, rounds=args.rounds, duration=args.duration,
        floor_rps=floor["rps"], floor_p50=floor["p50_ms"], floor_p99=floor["p99_ms"],
        floor_cpu=statistics.median(floor["rounds_cpu_us"]),
        rs_rps=rs["rps"], rs_p50=rs["p50_ms"], rs_p99=rs["p99_ms"], rs_cpu=statistics.median(rs["rounds_cpu_us"]),
        es_rps=es["rps"], es_p50=es["p50_ms"], es_p99=es["p99_ms"], es_cpu=statistics.median(es["rounds_cpu_us"]),
        rs_rounds=", ".join(f"{p:.1f}" for p in rs["rounds_p99"]), es_rounds=", ".join(f"{p:.1f}" for p in es["rounds_p99"]),
        floor_errors=floor["errors"], rs_errors=rs["errors"], es_errors=es["errors"],
    )  # fmt: skip
    replace_section("## CDS Hooks call", text)
