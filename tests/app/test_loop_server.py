"""The loop closed, through a real server with two workers: outcomes posted for listed inspections
give the model's weekly performance, the daily list says how old its newest outcome is (JSON, CSV
headers, the page's banner) and /metrics reports the same age from either worker."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import pytest
from app_helpers import (
    ADMIN_KEY,
    MODEL_NAME,
    PARTNER,
    PARTNER_KEY,
    REPO_ROOT,
    copy_bundle,
    serve_process,
)
from sklearn.metrics import roc_auc_score

from training.config import today_in
from training.inspections.config import load_city_config

LIST_DATE = "2014-09-02"  # the sample data ends 2014-08-29
PERFORMANCE_URL = f"/v1/models/{MODEL_NAME}/performance"
CRITICAL = "2. FACILITIES TO MAINTAIN PROPER TEMPERATURE - Comments: too warm"
MINOR = "34. FLOORS: CONSTRUCTED PER CODE, CLEANED, GOOD REPAIR - Comments: dirty"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("loop")
    models = base / "models"
    copy_bundle(models)
    env = os.environ | {
        "CIVICRISK_API_KEYS": PARTNER_KEY,
        "CIVICRISK_ADMIN_KEY": ADMIN_KEY,
        "CIVICRISK_DATABASE_URL": f"sqlite:///{base / 'civicrisk.sqlite3'}",
        "CIVICRISK_KEYS_FILE": str(base / "partner-keys.json"),
        "PROMETHEUS_MULTIPROC_DIR": str(base / "metrics"),
        "CIVICRISK_DAILY_PRECOMPUTE": "false",
    }
    with serve_process(("--models", str(models), "--workers", "2"), env, base / "server.log") as url:
        yield url


CHICAGO = load_city_config(REPO_ROOT / "data" / "sample" / "chicago" / "city.toml")


def _age(newest: str) -> int:
    """Days from `newest` to Chicago's today (its `[city].timezone`), as the list counts them."""
    return (today_in(CHICAGO.timezone) - date.fromisoformat(newest)).days


@contextmanager
def _ages_meanwhile(newest: str) -> Iterator[set[int]]:
    """The ages the server may report for requests made inside the block: the city's date may
    change while they run."""
    ages = {_age(newest)}
    yield ages
    ages.add(_age(newest))


def _outcome(
    number: int, establishment: str, day: str, violations: str | None, **extra: Any
) -> dict[str, Any]:
    result = "Fail" if violations == CRITICAL else "Pass"
    return {
        "inspection_id": f"loop-{number}",
        "establishment_id": establishment,
        "date": day,
        "result": result,
        "inspection_type": "Canvass",
        "violations": violations,
    } | extra


def _scraped_ages(client: httpx.Client) -> set[float]:
    """civicrisk_outcomes_age_days{city="chicago"} from several scrapes (either worker answers)."""
    ages = set()
    for _ in range(6):
        text = client.get("/metrics").text
        found = re.search(r'^civicrisk_outcomes_age_days\{city="chicago"\} (\S+)$', text, re.MULTILINE)
        assert found, text[-2000:]
        ages.add(float(found.group(1)))
    return ages


def test_posted_outcomes_give_weekly_performance_and_fresher_lists(served: str) -> None:
    with httpx.Client(base_url=served, timeout=300) as client:
        with _ages_meanwhile("2014-08-29") as ages:
            before = client.get("/v1/inspections/chicago/daily", params={"date": LIST_DATE, "limit": 10_000})
        assert before.status_code == 200, before.text
        staleness = before.json()["staleness"]
        assert staleness["newest_outcome"] == "2014-08-29"
        assert staleness["age_days"] in ages
        assert staleness["max_age_days"] == 14 and staleness["stale"] is True and staleness["warning"]
        assert before.headers["X-Data-Age-Days"] == str(staleness["age_days"])
        rows = before.json()["rows"]

        # The week of 2014-09-01: the 15 highest-ranked and 15 lowest-ranked establishments inspected,
        # a critical violation found at 8 of the highest and 2 of the lowest. The next week: 3
        # inspections, none critical (AUC cannot be measured). Besides: one establishment no list
        # ranks, one complaint inspection (not routine), one of no stated type and one "Out of
        # Business" (no inspection took place).
        top, bottom = rows[:15], rows[-15:]
        posted, expected = [], []
        for number, row in enumerate(top + bottom):
            critical = number < 8 or 15 <= number < 17
            day = f"2014-09-0{2 + number % 4}"
            posted.append(_outcome(number, row["establishment_id"], day, CRITICAL if critical else MINOR))
            expected.append((row["score"], int(critical), row["tier"]))
        for number, row in enumerate(rows[100:103], start=100):
            posted.append(_outcome(number, row["establishment_id"], "2014-09-09", None))
        posted.append(_outcome(200, "no-such-establishment", "2014-09-03", None))
        posted.append(
            _outcome(201, rows[50]["establishment_id"], "2014-09-03", None, inspection_type="Complaint")
        )
        posted.append(
            _outcome(202, rows[51]["establishment_id"], "2014-09-04", None, result="Out of Business")
        )
        posted.append(_outcome(203, rows[52]["establishment_id"], "2014-09-04", None, inspection_type=None))
        recorded = client.post("/v1/inspections/chicago/outcomes", json={"outcomes": posted}, headers=PARTNER)
        assert recorded.status_code == 201, recorded.text

        performance = client.get(
            PERFORMANCE_URL, params={"since": "2014-09-01", "until": "2014-09-14"}, headers=PARTNER
        )
        assert performance.status_code == 200, performance.text
        answer = performance.json()
        assert answer["outcomes"] == {"posted": 37, "out_of_scope": 3, "not_on_a_list": 1, "matched": 33}
        first, second = answer["weeks"]
        assert (first["week_start"], first["week_end"]) == ("2014-09-01", "2014-09-07")
        assert first["inspections"] == 30 and first["with_critical"] == 10
        scores = [score for score, _, _ in expected]
        labels = [label for _, label, _ in expected]
        assert first["auc"]["value"] == pytest.approx(roc_auc_score(labels, scores))
        assert first["auc"]["count"] == 30
        ranked = [label for _, label in sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])]
        assert first["precision_top_10"] == {
            "value": pytest.approx(sum(ranked[:3]) / 3),
            "count": 3,
            "note": None,
        }
        assert first["precision_top_20"]["value"] == pytest.approx(sum(ranked[:6]) / 6)
        assert first["days_earlier"]["count"] == 10 and first["days_earlier"]["value"] is not None
        for tier in first["tiers"]:
            in_tier = [label for _, label, name in expected if name == tier["tier"]]
            assert (tier["count"], tier["with_critical"]) == (len(in_tier), sum(in_tier))
            share = tier["share_with_critical"]
            assert share is None if not in_tier else math.isclose(share, sum(in_tier) / len(in_tier))
        assert first["note"] is None  # 30 inspections: enough not to be called an anecdote
        assert second["week_start"] == "2014-09-08" and second["inspections"] == 3
        assert second["auc"]["value"] is None and "both with and without" in second["auc"]["note"]
        assert second["days_earlier"]["value"] is None and second["note"]
        assert answer["overall"]["inspections"] == 33

        # The list now rests on outcomes up to 2014-09-09: 11 days fresher, in JSON, CSV and metrics.
        with _ages_meanwhile("2014-09-09") as ages:
            after = client.get("/v1/inspections/chicago/daily", params={"date": "2014-09-10", "limit": 5})
            csv = client.get(
                "/v1/inspections/chicago/daily", params={"date": "2014-09-10", "limit": 5, "format": "csv"}
            )
            scraped = _scraped_ages(client)
        assert after.status_code == 200, after.text
        assert after.json()["staleness"]["newest_outcome"] == "2014-09-09"
        assert after.json()["staleness"]["age_days"] in ages
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.headers["X-Data-Newest-Outcome"] == "2014-09-09"
        assert int(csv.headers["X-Data-Age-Days"]) in ages and csv.headers["X-Data-Stale"] == "true"
        assert scraped <= {float(age) for age in ages}

        page = client.get("/inspector", params={"city": "chicago", "date": "2014-09-10"})
        assert page.status_code == 200
        assert 'id="staleness"' in page.text and "Old data." in page.text
        assert 'id="performance-weeks"' in page.text and "2014-09-01" in page.text


def test_performance_refuses_bad_dates_and_missing_keys(served: str) -> None:
    with httpx.Client(base_url=served, timeout=60) as client:
        assert client.get(PERFORMANCE_URL).status_code == 401
        for params, field in (
            ({"since": "2014-13-01"}, "since"),
            ({"until": "yesterday"}, "until"),
            ({"since": "2014-09-10", "until": "2014-09-01"}, "since"),
            ({"since": "2012-01-01", "until": "2014-09-01"}, "until"),
        ):
            refused = client.get(PERFORMANCE_URL, params=params, headers=PARTNER)
            assert refused.status_code == 422, (params, refused.text)
            details = refused.json()["error"]["details"]
            assert [field] == [problem["loc"][-1] for problem in details], refused.text
        assert client.get("/v1/models/no-such-model/performance", headers=PARTNER).status_code == 404


def test_an_empty_record_is_scored_as_insufficient_data(served: str) -> None:
    with httpx.Client(base_url=served, timeout=60) as client:
        answer = client.post(f"/v1/models/{MODEL_NAME}/score", json={"records": [{}]}, headers=PARTNER)
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert result["tier"] == "insufficient_data" and "not trusted" in result["tier_reason"]
        assert 0 <= result["score"] <= 1 and result["unknown_categories"] == {}
        detail = client.get(f"/v1/models/{MODEL_NAME}").json()
        assert sorted(result["missing"]) == sorted(entry["name"] for entry in detail["feature_schema"])
