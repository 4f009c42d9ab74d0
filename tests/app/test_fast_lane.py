"""The fast lane (app/platform/fast_lane.py) answers exactly as the full FastAPI stack does for the same
routes, keeps the access log and metrics, and passes on everything that is not a POST to a lane route."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from app_helpers import PARTNER, SCORE_URL, make_settings
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from lead_helpers import Keys, child_body, ehr_key, ehr_token, lead_settings
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from app.hospitals.cds_cors import CdsCors
from app.main import create_app
from app.platform.errors import ServiceError
from app.platform.fast_lane import FastLane, ServiceApp
from app.platform.middleware import ObserveRequests

Clients = tuple[TestClient, TestClient, Keys]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    """The service with its fast lane, and the same service with the lane turned off."""
    settings, keys = lead_settings(tmp_path_factory.mktemp("lane"), ehr_key())
    laned, full = create_app(settings), create_app(settings)
    full.fast_routes = ()
    with TestClient(laned) as with_lane, TestClient(full) as without_lane:
        yield with_lane, without_lane, keys


def test_the_lane_is_in_front_of_the_stack(clients: Clients) -> None:
    with_lane, without_lane, _ = clients
    with_lane.get("/health/live")
    without_lane.get("/health/live")
    assert isinstance(with_lane.app.middleware_stack, FastLane)  # type: ignore[attr-defined]
    assert not isinstance(without_lane.app.middleware_stack, FastLane)  # type: ignore[attr-defined]


def _record(client: TestClient) -> dict[str, Any]:
    schema = client.get("/v1/models/chicago-food-inspections").json()["feature_schema"]
    return {f["name"]: (f["allowed_values"][0] if f.get("allowed_values") else 1.0) for f in schema}


SCORE_CASES: list[tuple[str, dict[str, str], bytes | None, str]] = [
    # (path, headers, body or None for a valid record, what it exercises)
    (SCORE_URL, PARTNER, None, "a valid record"),
    (SCORE_URL, PARTNER, b'{"records": [{"inspections_before": "many"}]}', "422 naming the field"),
    (SCORE_URL, PARTNER, b'{"records": [', "400 not JSON"),
    (SCORE_URL, {}, b'{"records": []}', "401 without a key"),
    ("/v1/models/no-such-model/score", PARTNER, b'{"records": [{}]}', "404 unknown model"),
    (f"{SCORE_URL}?version=nope", PARTNER, b'{"records": [{}]}', "404 unknown version"),
    (SCORE_URL, PARTNER | {"Content-Type": "text/plain"}, b"{}", "415 wrong content type"),
]


@pytest.mark.parametrize(("path", "headers", "body", "case"), SCORE_CASES, ids=[c[3] for c in SCORE_CASES])
def test_score_answers_match_the_full_stack(
    clients: Clients, path: str, headers: dict[str, str], body: bytes | None, case: str
) -> None:
    with_lane, without_lane, _ = clients
    if body is None:
        body = json.dumps({"records": [_record(with_lane)]}).encode()
    sent = {"Content-Type": "application/json"} | headers
    laned = with_lane.post(path, content=body, headers=sent)
    full = without_lane.post(path, content=body, headers=sent)
    assert (laned.status_code, laned.json()) == (full.status_code, full.json()), case
    assert laned.headers.get("www-authenticate") == full.headers.get("www-authenticate")


@pytest.mark.parametrize(
    "change",
    [{}, {"date_of_birth": ""}, {"zip": "6062"}, {"city": "Evanston"}, {"address1": "1 Nowhere Rd"}],
    ids=["scored", "missing birth date", "bad zip", "outside the city", "unknown address"],
)
@pytest.mark.parametrize("path", ["/v1/lead/risk", "/upload/insert/"])
def test_lead_answers_match_the_full_stack(clients: Clients, change: dict[str, str], path: str) -> None:
    with_lane, without_lane, keys = clients
    body, headers = child_body(**change), {"X-API-Key": keys.lead}
    laned = with_lane.post(path, json=body, headers=headers)
    full = without_lane.post(path, json=body, headers=headers)
    assert laned.status_code == full.status_code
    answer, expected = laned.json(), full.json()
    answer.pop("timestamp", None)  # the time of the answer
    expected.pop("timestamp", None)
    assert answer == expected


def test_other_methods_and_paths_take_the_full_stack(clients: Clients) -> None:
    with_lane, without_lane, _ = clients
    for method, path in [("GET", SCORE_URL), ("PUT", "/v1/lead/risk"), ("POST", f"{SCORE_URL}/extra")]:
        laned, full = with_lane.request(method, path), without_lane.request(method, path)
        assert laned.status_code == full.status_code in (404, 405), (method, path)
        assert laned.json() == full.json()


def test_lane_requests_are_counted_and_logged(clients: Clients, caplog: pytest.LogCaptureFixture) -> None:
    with_lane, _, keys = clients
    with caplog.at_level(logging.INFO, logger="civicrisk.access"):
        answer = with_lane.post("/v1/lead/risk", json=child_body(), headers={"X-API-Key": keys.lead})
    assert answer.status_code == 200
    [line] = [r for r in caplog.records if r.name == "civicrisk.access"]
    assert line.facts["route"] == "/v1/lead/risk" and line.facts["status"] == 200  # type: ignore[attr-defined]
    assert line.partner == "Lurie Children's"  # type: ignore[attr-defined]
    metrics = with_lane.get("/metrics").text
    assert 'civicrisk_requests_total{method="POST",model="",route="/v1/lead/risk",status="200"}' in metrics


def test_an_unexpected_error_is_the_usual_500(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with_lane, without_lane, _ = clients

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("scorer broke")

    monkeypatch.setattr("app.scoring.bodies.json_body.score_records", broken)
    body = json.dumps({"records": [_record(with_lane)]}).encode()
    headers = PARTNER | {"Content-Type": "application/json"}
    with caplog.at_level(logging.ERROR):
        laned = with_lane.post(SCORE_URL, content=body, headers=headers)
    assert laned.status_code == 500
    assert laned.json()["error"]["code"] == "internal_error"
    assert "Traceback" not in laned.text and "scorer broke" not in laned.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["unhandled error"]
    with pytest.raises(RuntimeError):  # the full stack answers the same, then re-raises to the server
        without_lane.post(SCORE_URL, content=body, headers=headers)


def test_other_score_bodies_and_a_version_match_the_full_stack(clients: Clients) -> None:
    with_lane, without_lane, _ = clients
    record = _record(with_lane)
    version = with_lane.get("/v1/models/chicago-food-inspections").json()["version"]
    buffer = io.BytesIO()
    pq.write_table(pa.table({"prev_critical": [1.0, None]}), buffer, compression="none")
    table = {"columns": list(record), "data": [list(record.values())]}
    for path, body, media_type in [
        (SCORE_URL, json.dumps(table).encode(), "application/json"),
        (SCORE_URL, buffer.getvalue(), "application/vnd.apache.parquet"),
        (f"{SCORE_URL}?version={version}", json.dumps({"records": [record]}).encode(), "application/json"),
    ]:
        sent = PARTNER | {"Content-Type": media_type}
        laned, full = (
            with_lane.post(path, content=body, headers=sent),
            without_lane.post(path, content=body, headers=sent),
        )
        assert laned.status_code == 200, laned.text
        assert (laned.status_code, laned.json()) == (full.status_code, full.json()), (path, media_type)


def test_the_framework_still_offers_what_the_lane_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    """ServiceApp and FastLane lean on Starlette's and FastAPI's internals: an upgrade that changes
    one of them must fail here, not quietly change what the partner routes answer."""
    app = create_app(make_settings(), load_models=False)
    assert isinstance(app, ServiceApp) and len(app.fast_routes) == 4
    # The app's own middleware, which the lane rebuilds: entries unpack as (cls, args, kwargs).
    entries = [tuple(entry) for entry in app.user_middleware]
    assert [len(entry) for entry in entries] == [3, 3]
    [(cls, args, kwargs), (inner, _, _)] = entries
    assert cls is ObserveRequests and isinstance(args, tuple | list) and isinstance(kwargs, dict)
    assert inner is CdsCors  # inside the metrics and the access log, as in the full stack
    # Exception handlers: a mapping of exception class to handler, looked up along the error's MRO.
    handlers = app.exception_handlers
    assert isinstance(handlers, dict)
    for kind in (Exception, ServiceError, StarletteHTTPException, RequestValidationError):
        assert callable(handlers[kind]), kind

    # Starlette builds its stack once, on the first call, with build_middleware_stack, and serves it.
    built: list[Any] = []
    build = app.build_middleware_stack

    def counted() -> Any:
        built.append(build())
        return built[-1]

    monkeypatch.setattr(app, "build_middleware_stack", counted)
    with TestClient(app) as client:
        for _ in range(3):
            client.get("/health/live")
            client.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER)
    assert len(built) == 1 and isinstance(built[0], FastLane) and app.middleware_stack is built[0]

    # A route's path_regex and param_convertors: the lane matches as the router does, the same route,
    # endpoint and path parameters.
    seen: list[Scope] = []

    async def lane(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))

    async def full(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a lane path went to the full stack")

    dispatch = FastLane(full, lane, app.fast_routes)
    paths = (SCORE_URL, "/v1/lead/risk", "/upload/insert/", "/cds-services/lead-risk")
    for route, path in zip(app.fast_routes, paths, strict=True):
        scope: Scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "path_params": {}}
        match, child = route.matches(dict(scope))
        assert match is Match.FULL and child["route"] is route
        anyio.run(dispatch, dict(scope), None, None)
        assert seen[-1]["route"] is route and seen[-1]["route"].endpoint is child["endpoint"]
        assert seen[-1]["path_params"] == child["path_params"]


def _without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """A CDS Hooks answer less what differs between two calls (uuids, the assessment's time)."""
    text = json.dumps(answer)
    for card in answer.get("cards", []):
        text = text.replace(card["uuid"], "")
        for suggestion in card.get("suggestions", []):
            text = text.replace(suggestion["uuid"], "")
    for action in answer.get("systemActions", []):
        text = text.replace(action["resource"]["occurrenceDateTime"], "")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_the_cds_hook_answers_alike_on_the_lane(tmp_path: Path) -> None:
    signer = ehr_key()
    settings, _ = lead_settings(tmp_path, signer)
    laned, full = create_app(settings), create_app(settings)
    full.fast_routes = ()
    home = {"line": ["1600 W Division St"], "city": "Chicago", "state": "IL"}
    patient = {"resourceType": "Patient", "id": "example", "birthDate": "2026-05-01", "address": [home]}
    hook = {
        "hook": "patient-view",
        "hookInstance": "lane",
        "context": {"patientId": "example"},
        "prefetch": {"patient": patient},
    }
    with TestClient(laned) as with_lane, TestClient(full) as without_lane:
        answers = [
            client.post(
                "/cds-services/lead-risk", json=hook, headers={"Authorization": f"Bearer {ehr_token(signer)}"}
            )
            for client in (with_lane, without_lane)
        ]
        assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
        assert _without_ids(answers[0].json()) == _without_ids(answers[1].json())
        assert answers[0].json()["cards"]
        refusals = [client.post("/cds-services/lead-risk", json=hook) for client in (with_lane, without_lane)]
        assert [r.status_code for r in refusals] == [401, 401]
        assert (
            refusals[0].json() == refusals[1].json()
            and refusals[0].json()["resourceType"] == "OperationOutcome"
        )
        assert refusals[0].headers["www-authenticate"] == refusals[1].headers["www-authenticate"]
