"""Several workers behave as one service: `civicrisk serve --workers 2`, real processes on loopback:
one scrape reports both, one reload reaches both, a CDS Hooks token spent on one is spent on both, a
partner key revoked in the database is refused by both within 2 s; the workers share what their master
loaded, and one that dies is replaced."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from app_helpers import (
    ADMIN,
    ADMIN_KEY,
    PARTNER_KEY,
    SCORE_URL,
    answers,
    copy_bundle,
    counter_values,
    idle_connection_kept,
    serve_process,
)
from lead_helpers import SERVICE_URL, ehr_key, ehr_token, write_issuers

from app.platform.keys import create_key
from app.platform.storage.repository import Repository

REQUESTS = 40
SIGNER = ehr_key()


@pytest.fixture(scope="module")
def workers_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database the two workers share (`--workers 2` turns CIVICRISK_SHARED_STATE on)."""
    return f"sqlite:///{tmp_path_factory.mktemp('workers-database') / 'civicrisk.sqlite3'}"


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, workers_database: str
) -> Iterator[tuple[str, Path]]:
    """A server with two workers, and the directory they keep their metrics in (given by the
    operator here, so the test can see which processes wrote to it)."""
    base = tmp_path_factory.mktemp("workers")
    models, shared = base / "models", base / "metrics"
    copy_bundle(models)
    env = os.environ | {
        "CIVICRISK_API_KEYS": PARTNER_KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_DATABASE_URL": workers_database,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "CIVICRISK_CDS_ISSUERS_FILE": str(write_issuers(base / "issuers.json", SIGNER)),
        "CIVICRISK_CDS_SERVICE_URL": SERVICE_URL,
    }
    with serve_process(("--models", str(models), "--workers", "2"), env, base / "server.log") as url:
        yield url, shared


def _live_requests(metrics: str) -> float:
    """civicrisk_requests_total for GET /health/live, over every status."""
    pattern = r'^civicrisk_requests_total\{([^}]*)\} (\S+)$'
    total = 0.0
    for labels, value in re.findall(pattern, metrics, flags=re.M):
        if 'route="/health/live"' in labels and 'method="GET"' in labels:
            total += float(value)
    return total


def test_a_scrape_of_any_worker_counts_every_workers_requests(two_workers: tuple[str, Path]) -> None:
    url, shared = two_workers
    for _ in range(REQUESTS):  # a new connection each, so the kernel hands them to both workers
        assert httpx.get(f"{url}/health/live", timeout=5).status_code == 200
    deadline = time.monotonic() + 20
    while len(_writers(shared)) < 2 and time.monotonic() < deadline:
        httpx.get(f"{url}/health/ready", timeout=5)  # not counted below: another route
        time.sleep(0.05)
    assert len(_writers(shared)) >= 2, "the requests did not reach both workers"
    # Each scrape lands on either worker; every one must report the requests of both.
    for _ in range(10):
        scraped = httpx.get(f"{url}/metrics", timeout=5)
        assert scraped.status_code == 200
        assert _live_requests(scraped.text) == REQUESTS
    assert "civicrisk_models_loaded 1.0" in scraped.text  # the live workers' largest value, not a sum


def _writers(shared: Path) -> set[str]:
    """The processes that recorded a request (prometheus_client names files by metric kind and pid)."""
    return {path.stem.rsplit("_", 1)[1] for path in shared.glob("counter_*.db")}


def test_a_reload_through_one_worker_reaches_both(two_workers: tuple[str, Path]) -> None:
    url, _ = two_workers
    before = httpx.get(f"{url}/v1/models", timeout=5).json()["generation"]
    reloaded = httpx.post(f"{url}/v1/admin/reload", headers=ADMIN, timeout=30)
    assert reloaded.status_code == 200
    generation = reloaded.json()["generation"]
    assert generation == (before or 0) + 1
    # Within seconds, whichever worker answers (a new connection each) serves the new generation.
    deadline = time.monotonic() + 5
    answers: list[int] = []
    while len(answers) < 10:
        served = httpx.get(f"{url}/v1/models", timeout=5).json()["generation"]
        if served != generation:
            assert time.monotonic() < deadline, f"a worker still serves generation {served}"
            answers.clear()
            time.sleep(0.1)
            continue
        answers.append(served)


HOOK = {
    "hook": "patient-view",
    "hookInstance": "replay",
    "context": {"patientId": "p"},
    "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "birthDate": "2026-05-01"}},
}


def _refusals_by_process(shared: Path) -> dict[str, float]:
    """Per worker (pid), the CDS Hooks calls it answered 401, from that worker's own metrics file."""
    return _answers_by_process(shared, "/cds-services/lead-risk", 401)


def _answers_by_process(shared: Path, route: str, status: int) -> dict[str, float]:
    """Per worker (pid), the requests to `route` it answered with `status` (its own metrics file)."""
    answered: dict[str, float] = {}
    for pid, key, value in counter_values(shared):
        if f'"{route}"' in key and f'"{status}"' in key and "_total" in key:
            answered[pid] = answered.get(pid, 0.0) + value
    return answered


def test_a_token_spent_on_one_worker_is_refused_by_both(two_workers: tuple[str, Path]) -> None:
    """`--workers 2` shares state (CIVICRISK_SHARED_STATE): a replay is refused whichever worker
    answers, not only by the one that saw the token first."""
    url, shared = two_workers
    token = {"Authorization": f"Bearer {ehr_token(SIGNER)}"}
    first = httpx.post(f"{url}/cds-services/lead-risk", json=HOOK, headers=token, timeout=30)
    assert first.status_code != 401
    for _ in range(60):  # a new connection each, until both workers have refused it
        replay = httpx.post(f"{url}/cds-services/lead-risk", json=HOOK, headers=token, timeout=30)
        assert replay.status_code == 401 and "used before" in replay.text
        if len(_refusals_by_process(shared)) >= 2:
            break
    assert len(_refusals_by_process(shared)) >= 2, "the replays did not reach both workers"


SCORE_ROUTE = "/v1/models/{name}/score"


def _score(url: str, key: str) -> int:
    """A score request on a new connection (so the kernel hands them to both workers)."""
    answer = httpx.post(f"{url}{SCORE_URL}", json={"records": [{}]}, headers={"X-API-Key": key}, timeout=30)
    return answer.status_code


def test_a_key_revoked_in_the_database_is_refused_by_both_workers_within_2_s(
    two_workers: tuple[str, Path], workers_database: str
) -> None:
    url, shared = two_workers
    repository = Repository.open(workers_database)
    stored, key = create_key(repository, "Fleet partner", ["inspections"])
    # Both workers take it up (each reads the keys every second) and accept it.
    accepted_before = _answers_by_process(shared, SCORE_ROUTE, 200)
    deadline = time.monotonic() + 20
    while sum(
        _answers_by_process(shared, SCORE_ROUTE, 200).get(pid, 0) > accepted_before.get(pid, 0)
        for pid in _writers(shared)
    ) < 2:
        assert time.monotonic() < deadline, "the new key did not reach both workers"
        if _score(url, key) != 200:
            time.sleep(0.1)
    refused_before = _answers_by_process(shared, SCORE_ROUTE, 401)

    revoked_at = time.monotonic()
    repository.revoke_partner_key(stored.id)
    time.sleep(max(0.0, revoked_at + 2.0 - time.monotonic()))
    # From 2 s after the revocation on, every worker refuses it.
    for _ in range(60):
        assert _score(url, key) == 401
        refused = _answers_by_process(shared, SCORE_ROUTE, 401)
        if all(refused.get(pid, 0) > refused_before.get(pid, 0) for pid in _writers(shared)):
            break
    refused = _answers_by_process(shared, SCORE_ROUTE, 401)
    assert len(_writers(shared)) >= 2
    assert all(refused.get(pid, 0) > refused_before.get(pid, 0) for pid in _writers(shared)), refused


def _memory_kb(pid: int) -> dict[str, int]:
    """Resident, proportional (PSS) and private memory of a process, kB (/proc/PID/smaps_rollup)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            fields[name] = int(value.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"], "pss": fields["Pss"], "private": private}


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _two_worker_pids(url: str, shared: Path) -> list[int]:
    """The two workers' pids, once each has answered (and so written its metrics file)."""
    deadline = time.monotonic() + 20
    while len(_writers(shared)) < 2 and time.monotonic() < deadline:
        httpx.get(f"{url}/health/live", timeout=5)
    assert len(_writers(shared)) >= 2, "the requests did not reach both workers"
    return sorted(int(pid) for pid in _writers(shared) if Path(f"/proc/{pid}").exists())


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc smaps_rollup")
def test_workers_are_forked_from_a_master_that_loaded_everything(two_workers: tuple[str, Path]) -> None:
    """The models, the cities' data and the libraries are loaded once, in the master, and the workers
    share those pages: most of a worker's resident memory is shared (its PSS well below its RSS) and
    its private memory is a fraction of it. Workers that each loaded their own copy (uvicorn's
    `--workers`, spawned processes) hold nearly all of it privately."""
    url, shared = two_workers
    workers = _two_worker_pids(url, shared)
    masters = {_parent(pid) for pid in workers}
    assert len(masters) == 1, f"the workers have different parents: {masters}"
    master = masters.pop()
    assert b"serve" in Path(f"/proc/{master}/cmdline").read_bytes()  # `civicrisk serve` itself
    for pid in workers:
        memory = _memory_kb(pid)
        assert memory["pss"] < 0.6 * memory["rss"], memory
        assert memory["private"] < 0.4 * memory["rss"], memory
        assert memory["rss"] - memory["private"] > 150 * 1024, memory  # shared: libraries, models, data


def test_a_worker_that_dies_is_replaced(two_workers: tuple[str, Path]) -> None:
    """gunicorn forks a new worker from the master; the service keeps answering meanwhile."""
    url, shared = two_workers
    workers = _two_worker_pids(url, shared)
    master = _parent(workers[0])
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        assert httpx.get(f"{url}/health/live", timeout=5).status_code == 200
        current = _children(master)
        if len(current) == 2 and workers[0] not in current:
            break
        assert time.monotonic() < deadline, f"no new worker: {current}"
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while not answers(f"{url}/health/ready"):
        assert time.monotonic() < deadline, "the service is not ready again"
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_workers_idle_connection_outlives_a_clients_five_seconds(two_workers: tuple[str, Path]) -> None:
    """gunicorn's workers keep an idle connection as long as a single server does (75 s)."""
    url, _ = two_workers
    assert idle_connection_kept(url, idle_seconds=6)
