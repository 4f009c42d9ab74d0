"""Property-based requests generated from the OpenAPI schema: no input may cause a server error."""

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
from schemathesis.checks import not_a_server_error

from app.main import create_app

# A trusted EHR issuer is configured, so generated CDS Hooks calls meet JWT checks (401), not a 503.
_issuers = write_issuers(Path(tempfile.mkdtemp()) / "issuers.json", ehr_key())
app = create_app(make_settings(cds_issuers_file=_issuers, cds_service_url=SERVICE_URL))
app.state.registry.reload()  # schemathesis calls the ASGI app without running its lifespan
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


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
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: schemathesis.Case) -> None:
    # With the partner key, generated requests reach validation and scoring rather than stopping at 401.
    response = case.call(headers=PARTNER)
    case.validate_response(response, checks=[not_a_server_error])
    assert "Traceback" not in response.text
