"""Every route through TestClient: answers, the one error shape, auth, limits, and private logs."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from app_helpers import ADMIN, MODEL_NAME, MODELS_DIR, PARTNER, SCORE_URL, make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.scoring.schemas import ScoreRequest, ScoreResponse, ScoreTable
from training.bundle import find_bundles

# Every bundle committed under models/ (Chicago inspections, Chicago lead, Boston inspections) is served.
COMMITTED_BUNDLES = len(find_bundles(MODELS_DIR))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def test_health(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {
        "status": "ready",
        "models_loaded": COMMITTED_BUNDLES,
        "model_set": {"state": "current", "generation": None, "refused": None},
        "dependencies": {"database": "ok"},
    }


def test_ready_is_503_without_models(tmp_path: Any) -> None:
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as empty:
        assert empty.get("/health/live").status_code == 200
        assert_error(empty.get("/health/ready"), 503, "model_unavailable")


def test_models_list_and_detail(client: TestClient, manifest: dict[str, Any]) -> None:
    listed = client.get("/v1/models").json()
    names = [m["name"] for m in listed["models"]]
    assert MODEL_NAME in names and len(names) == COMMITTED_BUNDLES and listed["failures"] == []
    chicago = listed["models"][names.index(MODEL_NAME)]
    assert chicago["reasons_method"] == "exact linear contributions"
    detail = client.get(f"/v1/models/{MODEL_NAME}").json()
    assert detail["version"] == manifest["version"] and detail["city"] == "chicago"
    assert detail["tiers"]["cut_points"] == manifest["tiers"]["cut_points"]
    assert detail["data"]["trained_until"] == "2014-08-29"
    facility = next(f for f in detail["feature_schema"] if f["name"] == "facility_type")
    assert facility["type"] == "category" and "Restaurant" in facility["allowed_values"]
    assert detail["metrics"]["mean_auc"]["logistic_C0.1"] == pytest.approx(0.71326, abs=1e-4)
    # The manifest holds NaN; the answer holds null, and is strict JSON.
    assert "NaN" not in client.get(f"/v1/models/{MODEL_NAME}").text
    assert client.get(f"/v1/models/{MODEL_NAME}?version={manifest['version']}").status_code == 200


def test_unknown_model_and_version_are_404(client: TestClient) -> None:
    assert_error(client.get("/v1/models/nope"), 404, "model_not_found")
    assert_error(client.get(f"/v1/models/{MODEL_NAME}?version=nope"), 404, "model_not_found")
    assert_error(client.get("/v1/models/nope/card"), 404, "model_not_found")
    assert_error(
        client.post("/v1/models/nope/score", json={"records": [{}]}, headers=PARTNER), 404, "model_not_found"
    )
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.delete("/v1/models"), 405, "method_not_allowed")


def test_card_is_html_with_plots(client: TestClient) -> None:
    card = client.get(f"/v1/models/{MODEL_NAME}/card")
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/html")
    assert "<h1>Model card: chicago-food-inspections" in card.text and "<table>" in card.text
    assert '<img src="calibration.png"' in card.text
    plot = client.get(f"/v1/models/{MODEL_NAME}/files/calibration.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert_error(client.get(f"/v1/models/{MODEL_NAME}/files/model.joblib"), 404, "model_not_found")


def test_score_one_record(client: TestClient, full_record: dict[str, Any], manifest: dict[str, Any]) -> None:
    response = client.post(SCORE_URL, json={"records": [full_record]}, headers=PARTNER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MODEL_NAME and body["version"] == manifest["version"]
    [result] = body["results"]
    assert 0 < result["score"] < 1
    cuts = manifest["tiers"]["cut_points"]
    expected = (
        "high"
        if result["score"] >= cuts["high"]
        else "medium"
        if result["score"] >= cuts["medium"]
        else "low"
    )
    assert result["tier"] == expected
    assert len(result["reasons"]) == 3
    sizes = [abs(r["contribution"]) for r in result["reasons"]]
    assert sizes == sorted(sizes, reverse=True)
    for reason in result["reasons"]:
        assert reason["text"].startswith(
            "raises the risk" if reason["contribution"] > 0 else "lowers the risk"
        )
        assert reason["feature"] in full_record


def test_score_batch_keeps_order_and_bearer_works(client: TestClient, full_record: dict[str, Any]) -> None:
    records = [full_record | {"prev_critical": float(k)} for k in range(50)]
    response = client.post(
        SCORE_URL, json={"records": records}, headers={"Authorization": "Bearer test-partner-key-0123456789"}
    )
    assert response.status_code == 200
    scores = [r["score"] for r in response.json()["results"]]
    assert len(scores) == 50 and scores == sorted(scores) or scores == sorted(scores, reverse=True)
    single = client.post(SCORE_URL, json={"records": [records[7]]}, headers=PARTNER).json()["results"][0][
        "score"
    ]
    assert single == pytest.approx(scores[7], abs=1e-12)


def test_missing_fields_are_null(client: TestClient) -> None:
    response = client.post(
        SCORE_URL, json={"records": [{}, {"facility_type": None, "prev_critical": None}]}, headers=PARTNER
    )
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["score"] == pytest.approx(second["score"], abs=1e-12)
    assert all(math.isfinite(r["score"]) for r in (first, second))


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"no_such_feature": 1}, "no_such_feature", "unknown field"),
        ({"prev_critical": "2"}, "prev_critical", "must be a number"),
        ({"prev_critical": True}, "prev_critical", "must be a number"),
        ({"prev_critical": [1]}, "prev_critical", "must be a number"),
        ({"facility_type": 3}, "facility_type", "must be a string"),
    ],
)
def test_bad_fields_are_422_with_record_index(
    client: TestClient, record: dict[str, Any], field: str, message: str
) -> None:
    response = client.post(SCORE_URL, json={"records": [{}, {}, record]}, headers=PARTNER)
    error = assert_error(response, 422, "invalid_request")
    [detail] = error["details"]
    assert detail["loc"] == ["records", 2, field] and message in detail["message"]


def test_every_bad_record_is_named(client: TestClient) -> None:
    records = [{"prev_critical": "x"}, {}, {"bogus": 1, "prev_serious": "y"}, 7]
    error = assert_error(
        client.post(SCORE_URL, json={"records": records}, headers=PARTNER), 422, "invalid_request"
    )
    assert {tuple(d["loc"]) for d in error["details"]} == {
        ("records", 0, "prev_critical"),
        ("records", 2, "bogus"),
        ("records", 2, "prev_serious"),
        ("records", 3),
    }


@pytest.mark.parametrize(
    "body", [{"records": []}, {"records": {}}, {"record": [{}]}, {"records": [{}], "extra": 1}, [1, 2]]
)
def test_bad_body_shapes_are_422(client: TestClient, body: Any) -> None:
    assert_error(client.post(SCORE_URL, json=body, headers=PARTNER), 422, "invalid_request")


def test_body_errors(client: TestClient) -> None:
    # A number JSON parsers cannot hold as a double is refused while parsing, before any field check.
    huge = b'{"records": [{"prev_critical": 1e400}]}'
    assert_error(
        client.post(SCORE_URL, content=huge, headers=PARTNER | {"content-type": "application/json"}),
        400,
        "malformed_body",
    )
    assert_error(
        client.post(SCORE_URL, content=b"{not json", headers=PARTNER | {"content-type": "application/json"}),
        400,
        "malformed_body",
    )
    assert_error(
        client.post(SCORE_URL, content=b"records=1", headers=PARTNER | {"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(
        client.post(SCORE_URL, content=b"{}", headers=PARTNER | {"content-type": ""}),
        415,
        "unsupported_media_type",
    )
    assert_error(
        client.post(SCORE_URL, json={"records": [{}] * 10_001}, headers=PARTNER), 413, "payload_too_large"
    )


def test_oversized_body_is_413_unread() -> None:
    with TestClient(create_app(make_settings(max_body_bytes=2048))) as small:
        big = {"records": [{"prev_critical": 1.0}] * 200}
        assert_error(small.post(SCORE_URL, json=big, headers=PARTNER), 413, "payload_too_large")

        def chunks() -> Any:  # no Content-Length: the limit still holds while streaming
            yield b'{"records": ['
            for _ in range(300):
                yield b'{"prev_critical": 1.0},'
            yield b"{}]}"

        streamed = small.post(
            SCORE_URL, content=chunks(), headers=PARTNER | {"content-type": "application/json"}
        )
        assert_error(streamed, 413, "payload_too_large")


def test_partner_auth(client: TestClient) -> None:
    body = {"records": [{}]}
    error = assert_error(client.post(SCORE_URL, json=body), 401, "unauthorized")
    assert "API key" in error["message"]
    assert_error(
        client.post(SCORE_URL, json=body, headers={"X-API-Key": "wrong-key-0123456789"}), 401, "unauthorized"
    )
    assert_error(client.post(SCORE_URL, json=body, headers=ADMIN), 401, "unauthorized")
    assert_error(client.get("/v1/establishments/chicago/1932/risk"), 401, "unauthorized")


def test_no_keys_configured_refuses_clearly() -> None:
    with TestClient(create_app(make_settings(api_keys=(), admin_key=None))) as unkeyed:
        error = assert_error(
            unkeyed.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER), 503, "auth_not_configured"
        )
        assert "CIVICRISK_API_KEYS" in error["message"]
        assert_error(unkeyed.post("/v1/admin/reload", headers=ADMIN), 503, "auth_not_configured")


def test_short_keys_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        make_settings(api_keys=("short",))


def test_establishment_risk(client: TestClient) -> None:
    response = client.get("/v1/establishments/chicago/1932/risk", headers=PARTNER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["establishment"]["establishment_id"] == "1932" and body["date"] == "2014-08-30"
    assert body["data_until"] == "2014-08-29" and body["tier"] in {"high", "medium", "low"}
    assert len(body["reasons"]) == 3 and body["features"]["prior_inspections"] >= 1
    # Point in time: an earlier date sees less history.
    earlier = client.get("/v1/establishments/chicago/1932/risk?date=2013-01-02", headers=PARTNER).json()
    assert earlier["features"]["prior_inspections"] < body["features"]["prior_inspections"]


def test_establishment_errors(client: TestClient) -> None:
    assert_error(client.get("/v1/establishments/atlantis/1932/risk", headers=PARTNER), 404, "city_not_found")
    assert_error(
        client.get("/v1/establishments/chicago/no-such-id/risk", headers=PARTNER),
        404,
        "establishment_not_found",
    )
    # Before its first inspection the establishment is not known yet.
    assert_error(
        client.get("/v1/establishments/chicago/1932/risk?date=2000-01-01", headers=PARTNER),
        404,
        "establishment_not_found",
    )
    error = assert_error(
        client.get("/v1/establishments/chicago/1932/risk?date=31-12-2014", headers=PARTNER),
        422,
        "invalid_request",
    )
    assert error["details"][0]["loc"] == ["query", "date"]
    assert_error(
        client.get("/v1/establishments/chicago/1932/risk?date=9999-01-01", headers=PARTNER),
        422,
        "invalid_request",
    )
    assert_error(
        client.get("/v1/establishments/chicago/1932/risk?model=nope", headers=PARTNER), 404, "model_not_found"
    )


def test_admin_reload_needs_the_admin_key(client: TestClient) -> None:
    assert_error(client.post("/v1/admin/reload"), 401, "unauthorized")
    assert_error(
        client.post("/v1/admin/reload", headers=PARTNER), 403, "forbidden"
    )  # a key without the admin scope
    response = client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 200 and response.json()["models_loaded"] == COMMITTED_BUNDLES


def test_metrics(client: TestClient) -> None:
    client.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER)
    client.get("/v1/models/some-made-up-name")
    text = client.get("/metrics").text
    assert f"civicrisk_models_loaded {COMMITTED_BUNDLES:.1f}" in text
    assert 'route="/v1/models/{name}/score",status="200"' in text.replace(f'model="{MODEL_NAME}",', "")
    assert (
        "civicrisk_request_duration_seconds_bucket" in text
        and f'civicrisk_records_scored_total{{model="{MODEL_NAME}"}}' in text
    )
    assert "some-made-up-name" not in text  # client-chosen names do not become metric labels


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/models/{name}/score",
        "/v1/establishments/{city}/{establishment_id}/risk",
        "/v1/admin/reload",
        "/metrics",
    ):
        assert path in paths
    body = paths["/v1/models/{name}/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    records, table = body["oneOf"]
    assert records["properties"]["records"]["maxItems"] == 10_000 and "examples" in records
    assert table["properties"]["data"]["maxItems"] == 10_000 and "examples" in table
    assert client.post(SCORE_URL, json=table["examples"][0], headers=PARTNER).status_code == 200
    assert client.get("/docs").status_code == 200


def test_the_score_routes_openapi_is_the_schema_classes(client: TestClient) -> None:
    """The score route reads its body itself, so its request body's OpenAPI is built from the schema
    classes: it must be what FastAPI generates for them on ordinary routes, and so must its answer's
    (from `response_model`), so that neither can drift from app/platform/schemas.py."""
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/models/{name}/score"]["post"]
    probe = FastAPI()

    @probe.post("/records", response_model=ScoreResponse)
    def records(body: ScoreRequest) -> None: ...

    @probe.post("/table")
    def table(body: ScoreTable) -> None: ...

    generated = probe.openapi()
    components = generated["components"]["schemas"]

    def body_of(operation: dict[str, Any]) -> Any:
        return operation["requestBody"]["content"]["application/json"]["schema"]

    expected = [
        components[body_of(generated["paths"][path]["post"])["$ref"].rsplit("/", 1)[1]]
        for path in ("/records", "/table")
    ]
    assert body_of(operation) == {"oneOf": expected}
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("name", "path", True),
        ("version", "query", False),
    ]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert (
        answer
        == generated["paths"]["/records"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    )
    for name in ("ScoreResponse", "PartnerScoredRecord", "Reason"):
        assert schema["components"]["schemas"][name] == components[name], name


def test_logs_are_json_lines_without_bodies(
    full_record: dict[str, Any], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.platform.logs import JsonFormatter

    secret = "Zebra-Kitchen-7731"
    with TestClient(create_app(make_settings())) as fresh, caplog.at_level(logging.INFO):
        fresh.post(SCORE_URL, json={"records": [full_record | {"facility_type": secret}]}, headers=PARTNER)
        fresh.post(SCORE_URL, json={"records": [{secret: 1}]}, headers=PARTNER)
        fresh.post(
            SCORE_URL, content=("{" + secret).encode(), headers=PARTNER | {"content-type": "application/json"}
        )
    lines = [JsonFormatter().format(record) for record in caplog.records]
    access = [line for line in lines if '"logger":"civicrisk.access"' in line]
    assert len(access) == 3 and '"route":"/v1/models/{name}/score"' in access[0]
    captured = capsys.readouterr()
    for text in (*lines, captured.out, captured.err):
        assert secret not in text
        assert "test-partner-key" not in text
