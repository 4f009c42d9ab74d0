"""A fleet on one machine (issue #18, item 6): two `civicrisk serve --workers 2` replicas behind HAProxy,
sharing the local PostgreSQL, behave as one service. Requests go through the balancer, or straight to
one replica where the case is about replicas disagreeing.

Needs HAProxy and PostgreSQL (./scripts/test provides both where it can); without them the test fails,
unless CIVICRISK_FLEET_TEST=skip (fleet_helpers.OPT_OUT)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from app_helpers import ADMIN, ADMIN_KEY, PARTNER, PARTNER_KEY, REPO_ROOT, SCORE_URL, copy_bundle, free_port
from fleet_helpers import (
    REPLICA_HEADER,
    Replica,
    haproxy_problem,
    requests_by_worker,
    require,
    start_haproxy,
    start_replica,
    wait_for_balancer,
    wait_until_ready,
)
from lead_helpers import SERVICE_URL, ehr_key, ehr_token, write_issuers

WORKERS_PER_REPLICA = 2
SIGNER = ehr_key()
SCORE_ROUTE = "/v1/models/{name}/score"


@dataclass
class Fleet:
    url: str  # the balancer
    replicas: dict[str, Replica]
    database_url: str
    env: dict[str, str]  # the replicas' environment, for CLI commands against the same database
    models: Path  # the models directory both replicas serve

    def count(self, sql: str, **params: Any) -> int:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(sa.text(sql), params).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require(haproxy_problem())
    try:
        new_schema: Callable[[], tuple[str, Callable[[], None]]] = request.getfixturevalue(
            "postgres_schema_factory"
        )
    except pytest.skip.Exception as unreachable:  # other storage tests skip; this one must not
        require(str(unreachable))
        raise
    base = tmp_path_factory.mktemp("fleet")
    models = base / "models"
    copy_bundle(models)  # one models directory for both: the fleet's shared models volume
    database_url, drop = new_schema()
    env = {
        **os.environ,
        "CIVICRISK_DATABASE_URL": database_url,
        "CIVICRISK_SHARED_STATE": "true",
        "CIVICRISK_API_KEYS": PARTNER_KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_CDS_ISSUERS_FILE": str(write_issuers(base / "issuers.json", SIGNER)),
        "CIVICRISK_CDS_SERVICE_URL": SERVICE_URL,
    }
    with ExitStack() as cleanup:  # unwinds in reverse: balancer, replicas, then the schema
        cleanup.callback(drop)
        upgrade = _civicrisk(env, "db", "upgrade")  # as an operator migrates before a rollout
        assert upgrade.returncode == 0, upgrade.stderr
        ports = {name: free_port() for name in ("a", "b")}
        replicas = {}
        for name, port in ports.items():  # both start at once: start-up is most of this test's time
            replicas[name] = start_replica(name, base, port, models, env)
            cleanup.callback(replicas[name].process.stop)
        wait_until_ready(list(replicas.values()), seconds=120)
        balancer_port = free_port()
        balancer = start_haproxy(base, balancer_port, ports)
        cleanup.callback(balancer.stop)
        url = f"http://127.0.0.1:{balancer_port}"
        wait_for_balancer(balancer, url, replicas=len(replicas), seconds=20)
        yield Fleet(url, replicas, database_url, env, models)


def _civicrisk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "civicrisk.cli", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def _worker_counts(fleet: Fleet, route: str, method: str) -> dict[str, float]:
    """Requests to `route` per worker of the fleet, named `replica/pid`."""
    return {
        f"{name}/{pid}": count
        for name, replica in fleet.replicas.items()
        for pid, count in requests_by_worker(replica.metrics_dir, route, method).items()
    }


def _ask_a_worker(fleet: Fleet, path: str) -> tuple[str, httpx.Response]:
    """GET `path` through the balancer, and which worker answered it: the one whose request count
    for the route grew (a worker counts a request just after sending its answer; nothing else asks
    this route meanwhile)."""
    before = _worker_counts(fleet, path, "GET")
    response = httpx.get(f"{fleet.url}{path}", timeout=10)  # a new connection each time
    deadline = time.monotonic() + 5
    while True:
        after = _worker_counts(fleet, path, "GET")
        grown = [worker for worker, count in after.items() if count > before.get(worker, 0)]
        if grown:
            assert len(grown) == 1, f"other requests to {path} meanwhile: {grown}"
            return grown[0], response
        assert time.monotonic() < deadline, f"no worker counted the request to {path}"
        time.sleep(0.005)


def _every_worker_serves(fleet: Fleet, generation: int, seconds: float) -> dict[str, int]:
    """Ask GET /v1/models until each of the fleet's workers has answered with `generation`; fail
    if that takes longer than `seconds`. Returns the generation each worker last reported."""
    workers = WORKERS_PER_REPLICA * len(fleet.replicas)
    latest: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while len(latest) < workers or set(latest.values()) != {generation}:
        assert time.monotonic() < deadline, f"{seconds} s after the reload, generation by worker: {latest}"
        worker, response = _ask_a_worker(fleet, "/v1/models")
        assert response.status_code == 200, response.text
        latest[worker] = response.json()["generation"]
    return latest


def _reload(fleet: Fleet) -> int:
    reloaded = httpx.post(f"{fleet.url}/v1/admin/reload", headers=ADMIN, timeout=60)
    assert reloaded.status_code == 200, reloaded.text
    generation: int = reloaded.json()["generation"]
    return generation


def test_a_reload_through_the_balancer_reaches_all_four_workers(fleet: Fleet) -> None:
    before = httpx.get(f"{fleet.url}/v1/models", timeout=10).json()["generation"] or 0
    generation = _reload(fleet)
    assert generation == before + 1
    served = _every_worker_serves(fleet, generation, seconds=5)
    replicas = Counter(worker.split("/")[0] for worker in served)
    assert replicas == {"a": WORKERS_PER_REPLICA, "b": WORKERS_PER_REPLICA}, served


def test_no_request_fails_while_the_fleet_reloads(fleet: Fleet, full_record: dict[str, Any]) -> None:
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    stop = threading.Event()

    def score_until_stopped() -> None:
        with httpx.Client(base_url=fleet.url, headers=PARTNER, timeout=30) as client:
            while not stop.is_set():
                try:
                    statuses[client.post(SCORE_URL, json={"records": [full_record]}).status_code] += 1
                except httpx.HTTPError as error:
                    errors.append(repr(error))

    scored_before = _worker_counts(fleet, SCORE_ROUTE, "POST")
    client = threading.Thread(target=score_until_stopped, name="scoring-load")
    client.start()
    try:
        for _ in range(3):  # each reload reaches every worker while the requests keep coming
            _every_worker_serves(fleet, _reload(fleet), seconds=5)
    finally:
        stop.set()
        client.join(timeout=60)
    failed = {status: count for status, count in statuses.items() if not 200 <= status < 300}
    assert not errors and not failed, f"failed during reloads: {failed}, {errors[:3]}"
    assert sum(statuses.values()) >= 20, f"too little load to show anything: {statuses}"
    scored = _worker_counts(fleet, SCORE_ROUTE, "POST")
    busy = [worker for worker, count in scored.items() if count > scored_before.get(worker, 0)]
    assert len(busy) == WORKERS_PER_REPLICA * len(fleet.replicas), f"the load reached only {busy}"


def _scored_requests(replica: Replica) -> float:
    """civicrisk_requests_total for the scoring route in one scrape of a replica (all its workers)."""
    scraped = httpx.get(f"{replica.url}/metrics", timeout=10)
    assert scraped.status_code == 200
    total = 0.0
    # The route template has braces of its own: the labels run to the last "} " of the line.
    for labels, value in re.findall(r"^civicrisk_requests_total\{(.*)\} (\S+)$", scraped.text, re.M):
        if f'route="{SCORE_ROUTE}"' in labels:
            total += float(value)
    return total


def test_metrics_summed_over_the_replicas_count_the_requests_sent(
    fleet: Fleet, full_record: dict[str, Any]
) -> None:
    sent = 30
    before = {name: _scored_requests(replica) for name, replica in fleet.replicas.items()}
    answered_by: Counter[str] = Counter()
    for _ in range(sent):
        response = httpx.post(f"{fleet.url}{SCORE_URL}", json={"records": [full_record]}, headers=PARTNER)
        assert response.status_code == 200, response.text
        answered_by[response.headers[REPLICA_HEADER]] += 1
    after = {name: _scored_requests(replica) for name, replica in fleet.replicas.items()}
    counted = {name: after[name] - before[name] for name in fleet.replicas}
    # The balancer's health checks and these scrapes are other routes: only the test's requests count.
    assert sum(counted.values()) == sent
    assert counted == dict(answered_by), "each replica's scrape counts exactly what it answered"


HOOK = {
    "hook": "patient-view",
    "hookInstance": "fleet-replay",
    "context": {"patientId": "p"},
    "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "birthDate": "2026-05-01"}},
}


def test_a_cds_hooks_token_used_on_one_replica_is_refused_on_the_other(fleet: Fleet) -> None:
    token = {"Authorization": f"Bearer {ehr_token(SIGNER)}"}
    a, b = fleet.replicas["a"].url, fleet.replicas["b"].url
    first = httpx.post(f"{a}/cds-services/lead-risk", json=HOOK, headers=token, timeout=30)
    assert first.status_code != 401, first.text
    replay = httpx.post(f"{b}/cds-services/lead-risk", json=HOOK, headers=token, timeout=30)
    assert replay.status_code == 401 and "used before" in replay.text


def _both_at_once(fleet: Fleet, send: Callable[[str], httpx.Response]) -> list[httpx.Response]:
    """`send` to each replica at the same moment (as far as two threads can)."""
    start = threading.Barrier(len(fleet.replicas))

    def on(url: str) -> httpx.Response:
        start.wait(timeout=30)
        return send(url)

    with ThreadPoolExecutor(len(fleet.replicas)) as pool:
        return list(pool.map(on, [replica.url for replica in fleet.replicas.values()]))


def test_an_outcomes_batch_posted_to_both_replicas_at_once_is_stored_once(fleet: Fleet) -> None:
    batch_tag = f"fleet-{uuid.uuid4().hex[:8]}"
    ids = [f"{batch_tag}-{n}" for n in range(5)]
    batch = {
        "outcomes": [
            {"inspection_id": i, "establishment_id": "1", "date": "2014-08-29", "result": "Pass"} for i in ids
        ]
    }

    def post(url: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/inspections/chicago/outcomes", json=batch, headers=PARTNER, timeout=60)

    answers = _both_at_once(fleet, post)
    assert all(answer.status_code in (200, 201) for answer in answers), [a.text for a in answers]
    created = [i for answer in answers for i in answer.json()["created"]]
    assert sorted(created) == sorted(ids), "each outcome created by exactly one of the two requests"
    stored = fleet.count(
        "SELECT count(*) FROM inspection_outcomes WHERE city = 'chicago' AND inspection_id LIKE :prefix",
        prefix=f"{batch_tag}-%",
    )
    assert stored == len(ids)


def test_the_daily_list_asked_of_both_replicas_has_one_id(fleet: Fleet) -> None:
    params: dict[str, str | int] = {"date": "2014-08-28", "limit": 10}
    answers = _both_at_once(
        fleet, lambda url: httpx.get(f"{url}/v1/inspections/chicago/daily", params=params, timeout=180)
    )
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    lists = [answer.json() for answer in answers]
    assert lists[0]["list_id"] == lists[1]["list_id"]
    assert lists[0]["rows"] == lists[1]["rows"]
    assert fleet.count("SELECT count(*) FROM issued_lists WHERE list_date = '2014-08-28'") == 1


def test_a_key_revoked_in_the_database_is_refused_by_every_replica_within_2_s(
    fleet: Fleet, full_record: dict[str, Any], tmp_path: Path
) -> None:
    # The operator's machine shares only the database with the replicas, not a keys file.
    operator = fleet.env | {"CIVICRISK_KEYS_FILE": str(tmp_path / "operator-keys.json")}
    created = _civicrisk(operator, "keys", "create", "--partner", "fleet-test", "--scope", "inspections")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]  # printed once, on the last line
    found = re.search(r"key id (\S+)", created.stdout)
    assert found, created.stdout
    urls = [replica.url for replica in fleet.replicas.values()]

    def status_on(url: str) -> int:
        body, headers = {"records": [full_record]}, {"X-API-Key": key}
        return httpx.post(f"{url}{SCORE_URL}", json=body, headers=headers, timeout=30).status_code

    deadline = time.monotonic() + 2  # each process re-reads the keys every second
    while [status_on(url) for url in urls] != [200, 200]:
        assert time.monotonic() < deadline, "the new key does not work on every replica within 2 s"
        time.sleep(0.05)
    revoked = _civicrisk(operator, "keys", "revoke", found.group(1))
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 2
    while [status_on(url) for url in urls] != [401, 401]:
        assert time.monotonic() < deadline, "a replica still accepts the key 2 s after its revocation"
        time.sleep(0.05)


def test_a_tampered_bundle_in_a_new_generation_is_refused_by_every_worker_alike(fleet: Fleet) -> None:
    """All or nothing, fleet-wide: the new set holding a tampered bundle is refused by all four
    workers with the same reason, and each keeps serving its last good set; once the bundle is gone,
    the next reload is taken everywhere."""
    bad = copy_bundle(fleet.models, version="2099-01-01-tampered", created_at="2099-01-01T00:00:00+00:00")
    with (bad / "model.joblib").open("ab") as handle:
        handle.write(b"edited after signing")
    try:
        refused = httpx.post(f"{fleet.url}/v1/admin/reload", headers=ADMIN, timeout=60)
        assert refused.status_code == 409, refused.text
        states: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 10
        while len(states) < WORKERS_PER_REPLICA * len(fleet.replicas):
            assert time.monotonic() < deadline, f"workers that refused the set so far: {sorted(states)}"
            # /v1/models, not /health/ready, which the balancer's health checks also ask
            worker, listed = _ask_a_worker(fleet, "/v1/models")
            if listed.json()["refused"] is not None:
                states[worker] = listed.json()
        reasons = {repr(state["refused"]["failures"]) for state in states.values()}
        assert len(reasons) == 1, reasons
        assert "model.joblib" in reasons.pop()
        assert len({state["generation"] for state in states.values()}) == 1  # the last good one
        for state in states.values():
            assert "2099-01-01-tampered" not in state["models"][0]["versions"]
        for replica in fleet.replicas.values():  # still ready: the last good set serves
            ready = httpx.get(f"{replica.url}/health/ready", timeout=10)
            assert ready.status_code == 200 and ready.json()["model_set"]["state"] == "last_good"
    finally:
        shutil.rmtree(bad)
    _every_worker_serves(fleet, _reload(fleet), seconds=5)
