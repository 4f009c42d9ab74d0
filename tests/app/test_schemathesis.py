"""Property-based requests generated from the OpenAPI schema: no input may cause a server error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from app_helpers import PARTNER, make_settings
from hypothesis import HealthCheck, settings
from lead_helpers import SERVICE_URL, ehr_key, write_issuers
from schemathesis.checks import not_a_server_error

from app.main import create_app

# A trusted EHR issuer is configured, so generated CDS Hooks calls meet JWT checks (401), not a 503.
_issuers = write_issuers(Path(tempfile.mkdtemp()) / "issuers.json", ehr_key())
app = create_app(make_settings(cds_issuers_file=_issuers, cds_service_url=SERVICE_URL))
app.state.registry.reload()  # schemathesis calls the ASGI app without running its lifespan
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: schemathesis.Case) -> None:
    # With the partner key, generated requests reach validation and scoring rather than stopping at 401.
    response = case.call(headers=PARTNER)
    case.validate_response(response, checks=[not_a_server_error])
    assert "Traceback" not in response.text
