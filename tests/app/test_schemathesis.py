"""Property-based requests generated from the OpenAPI schema, valid and invalid, with every check
schemathesis has: no server error, and every answer's status code, content type and body as the
OpenAPI document says; schema-valid requests accepted, schema-violating ones refused."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import schemathesis
from app_helpers import PARTNER, make_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from lead_helpers import SERVICE_URL, ehr_key, write_issuers
from schemathesis.config import SchemathesisConfig

from app.main import create_app

# A trusted EHR issuer is configured, so generated CDS Hooks calls meet JWT checks (401), not a 503.
_issuers = write_issuers(Path(tempfile.mkdtemp()) / "issuers.json", ehr_key())
app = create_app(make_settings(cds_issuers_file=_issuers, cds_service_url=SERVICE_URL))
app.state.registry.reload()  # schemathesis calls the ASGI app without running its lifespan
# Where a schema-valid request may still be refused, and why (each a documented gap, not a shortcut):
# - a daily list's date must fall in the range the city's data allows, and its area filter
#   (community_area, a city's [areas]) must name one of the city's areas (422 naming it and the known
#   ones), which no static schema can state; nor that a city's data has no coordinates to split its
#   list into routes (Boston: 422 `city_has_no_coordinates`);
# - the Lead Safe routes answer as Chicago's contract does: 400 for a rule beyond types (a birth
#   date in the future, an address or coordinates required), 412 for a child over one year old;
# - an outcome's result, violation codes and date are checked against the city's data (a result the
#   city records, codes in its severity map, not in the future): 422 naming the field, which no
#   static schema can state for every city (an unknown result, seen in a fresh-clone run);
# - a token request names no real client (none exists here): 400 or 401 in RFC 6749's shape;
# - `GET /get/{id}` is always 404: civicrisk retains no result.
CONFIG = SchemathesisConfig.from_str(
    """
[generation]
mode = "all"

[[operations]]
include-path-regex = "^/(inspector(/routes)?|v1/inspections/.city./daily(/routes)?)$"
checks.positive_data_acceptance.expected-statuses = [200, 401, 403, 404, 422]

[[operations]]
include-path-regex = "^/(v1/lead/risk|upload/insert/)$"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 412]

[[operations]]
include-path = "/v1/inspections/{city}/outcomes"
checks.positive_data_acceptance.expected-statuses = [200, 201, 401, 403, 404, 422]

[[operations]]
include-path = "/oauth/token"
checks.positive_data_acceptance.expected-statuses = [200, 400, 401]

[[operations]]
include-path = "/get/{submission_id}"
checks.positive_data_acceptance.expected-statuses = [401, 404]
"""
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
MIN_CASES = 1_500
cases: list[str] = []


def _parquet(columns: dict[str, list[object]], compression: str) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, compression=compression)
    return buffer.getvalue()


# Parquet bodies: arbitrary bytes, and small real files (known and unknown columns, any values,
# compressed or not), so the columns, types and values are all reached.
_values = st.one_of(
    st.lists(st.one_of(st.none(), st.floats()), min_size=1, max_size=5),
    st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=1, max_size=5),
)
_files = st.builds(
    lambda values, name, compression: _parquet({name: values}, compression),
    _values,
    st.sampled_from(["prev_critical", "facility_type", "no_such_feature"]),
    st.sampled_from(["none", "snappy"]),
)
schemathesis.openapi.media_type("application/vnd.apache.parquet", st.one_of(st.binary(max_size=64), _files))


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_service_does_what_its_openapi_says(case: schemathesis.Case) -> None:
    # With the partner key, generated requests reach validation and scoring rather than stopping at 401.
    response = case.call(headers=PARTNER)
    cases.append(case.operation.label)
    case.validate_response(response)  # every check, as configured above
    assert "Traceback" not in response.text


def test_enough_cases_ran_over_every_operation() -> None:
    """Runs after the generated tests (pytest keeps file order)."""
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert len(cases) >= MIN_CASES, f"only {len(cases)} generated cases"
    assert set(cases) == operations
