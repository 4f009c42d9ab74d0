"""A real uvicorn server on a free loopback port, called over HTTP; reload under concurrent load."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_helpers import (
    ADMIN,
    ADMIN_KEY,
    PARTNER,
    PARTNER_KEY,
    REPO_ROOT,
    SCORE_URL,
    copy_bundle,
    free_port,
    idle_connection_kept,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    models = tmp_path_factory.mktemp("models")
    copy_bundle(models)
    with _serve(models, models.parent / "server.log") as (url, _):
        yield url, models


@pytest.fixture(scope="module")
def committed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Every committed bundle (inspections and lead), as the main job serves them; and its log."""
    log_path = tmp_path_factory.mktemp("committed") / "server.log"
    with _serve(REPO_ROOT / "models", log_path) as (url, _):
        yield url, log_path


@contextmanager
def _serve(models: Path, log_path: Path) -> Iterator[tuple[str, int]]:
    """A one-worker server (one process): its URL and process id."""
    port = free_port()
    env = os.environ | {
        "CIVICRISK_API_KEYS": PARTNER_KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_DATABASE_URL": f"sqlite:///{log_path.parent / 'lists.sqlite3'}",
        "CIVICRISK_KEYS_FILE": str(log_path.parent / "partner-keys.json"),
    }
    command = [sys.executable, "-m", "civicrisk.cli", "serve", "--models", str(models), "--port", str(port)]
    # Logs go to a file: an unread pipe would fill up with access-log lines and stall the server.
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_real_server_scores_and_documents(server: tuple[str, Path], full_record: dict[str, Any]) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        response = client.post(SCORE_URL, json={"records": [full_record] * 3}, headers=PARTNER)
        assert response.status_code == 200 and len(response.json()["results"]) == 3
        assert client.post(SCORE_URL, json={"records": [{}]}).status_code == 401
        assert client.get("/openapi.json").json()["info"]["title"] == "civicrisk"
        assert "civicrisk_requests_total" in client.get("/metrics").text


def test_an_idle_connection_outlives_a_clients_five_seconds(server: tuple[str, Path]) -> None:
    """Kept open longer than clients and load balancers keep theirs (CIVICRISK_KEEP_ALIVE_SECONDS,
    75): at uvicorn's 5 s, a client reusing a connection as the server dropped it was reset."""
    url, _ = server
    assert idle_connection_kept(url, idle_seconds=6)


def test_reload_under_load_fails_no_request(server: tuple[str, Path], full_record: dict[str, Any]) -> None:
    url, models = server
    copy_bundle(models, version="2099-01-01-next", created_at="2099-01-01T00:00:00+00:00")

    async def main() -> tuple[list[int], list[int], set[str]]:
        statuses: list[int] = []
        versions: set[str] = set()
        done = asyncio.Event()
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def score_until_done() -> None:
                while not done.is_set():
                    response = await client.post(
                        SCORE_URL, json={"records": [full_record] * 5}, headers=PARTNER
                    )
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        versions.add(response.json()["version"])

            async def reload_repeatedly() -> list[int]:
                codes = []
                for _ in range(4):
                    await asyncio.sleep(0.1)
                    codes.append((await client.post("/v1/admin/reload", headers=ADMIN)).status_code)
                await asyncio.sleep(0.1)
                done.set()
                return codes

            workers = [asyncio.create_task(score_until_done()) for _ in range(8)]
            reloads = await reload_repeatedly()
            await asyncio.gather(*workers)
        return statuses, reloads, versions

    statuses, reloads, versions = asyncio.run(main())
    assert reloads == [200] * 4
    assert len(statuses) > 20 and set(statuses) == {200}
    assert "2099-01-01-next" in versions  # the swap happened while requests were flowing


def test_real_server_answers_a_hospital_and_an_inspector(committed_server: tuple[str, Path]) -> None:
    from lead_helpers import child_body

    url, _ = committed_server
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/v1/lead/risk", json=child_body(), headers=PARTNER)
        assert answer.status_code == 200, answer.text
        assert 0 < float(answer.json()["risk_score"]) < 1 and answer.json()["risk_score_notes"]
        cards = client.get("/cds-services").json()["services"]
        assert [card["id"] for card in cards] == ["lead-risk"]
        daily = client.get("/v1/inspections/chicago/daily", params={"date": "2014-08-30", "limit": 5})
        assert daily.status_code == 200 and len(daily.json()["rows"]) == 5


def test_real_server_writes_access_lines_without_the_patient(committed_server: tuple[str, Path]) -> None:
    """The server's own access-log writer (app.platform.logs.AccessLineHandler, which TestClient tests do not
    reach): hundreds of requests carrying markers in every field, scored, refused as invalid or not
    found; each gets its line with route, status and partner, and no marker reaches the log."""
    from lead_helpers import marked_body

    url, log_path = committed_server
    marker = "Marker-Quokka-"
    with httpx.Client(base_url=url, timeout=60) as client:
        statuses = [
            client.post("/v1/lead/risk", json=marked_body(marker, index), headers=PARTNER).status_code
            for index in range(200)
        ]
    assert {200, 400, 412} <= set(statuses)
    deadline, lead_lines = time.monotonic() + 10, []
    while time.monotonic() < deadline and len(lead_lines) < len(statuses):
        time.sleep(0.05)
        text = log_path.read_text()
        lead_lines = [line for line in text.splitlines() if '"route":"/v1/lead/risk"' in line]
    assert len(lead_lines) >= len(statuses), text[-2000:]
    assert all('"partner":"env-key-' in line for line in lead_lines)
    assert marker not in log_path.read_text()
