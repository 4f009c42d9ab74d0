"""CDS Hooks 2.0 for EHRs: discovery, and the `lead-risk` service on the `patient-view` hook.

The EHR's bearer JWT is verified against the trusted issuers' keys (app/hospitals/ehr_tokens.py). The
patient comes in `prefetch.patient`; the service never calls back to the EHR's FHIR server (no
outbound calls), so a missing prefetch is a 412. An ineligible child or a home outside the city gets
no card (`{"cards": []}`): there is nothing to show a clinician. Nothing of the patient is kept.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.hospitals.ehr_tokens import EhrTokenVerifier, TokenRejected
from app.hospitals.errors import OutsideArea
from app.hospitals.fhir_patient import patient_home
from app.hospitals.lead_answers import card
from app.hospitals.lead_risk import Home, LeadService
from app.hospitals.lead_routes import STATES, ready_engine
from app.hospitals.replay import SpentTokens
from app.platform.bodies import read_json
from app.platform.errors import AuthNotConfigured, InvalidRequest, PreconditionFailed, Problem, Unauthorized
from app.platform.handlers import JSONBytes

router = APIRouter(tags=["hospitals"])
SERVICE_ID = "lead-risk"
HOOK = "patient-view"
DISCOVERY = {
    "services": [
        {
            "hook": HOOK,
            "id": SERVICE_ID,
            "title": "Childhood lead exposure risk",
            "description": "Chance that a child under 3 has a blood lead test at or above 5 µg/dL before"
            " age 3, from the home's housing age, neighbourhood and earlier tests nearby, with the reasons"
            " and a recommended action. Uses only the birth date and home address; keeps nothing.",
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
        }
    ]
}
NO_CARDS: dict[str, list[Any]] = {"cards": []}


@router.get("/cds-services")
async def discovery() -> dict[str, Any]:
    """CDS Hooks discovery: the services this CDS Service offers."""
    return DISCOVERY


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


async def _verify(request: Request) -> None:
    verifier: EhrTokenVerifier | None = request.app.state.ehr_tokens
    if verifier is None:
        raise AuthNotConfigured("no trusted EHR issuers are configured (set CIVICRISK_CDS_ISSUERS_FILE)")
    try:
        token = verifier.verify(_bearer(request))
    except TokenRejected as rejected:
        raise Unauthorized(str(rejected)) from None
    # Each token once (app/hospitals/replay.py).
    spent: SpentTokens = request.app.state.spent_tokens
    if not await spent.first_use(token.replay_key, token.forget_after):
        raise Unauthorized("token has been used before (its jti is spent)")


def _fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object", (Problem(("body",), "expected an object"),))
    problems = []
    if body.get("hook") != HOOK:
        problems.append(Problem(("body", "hook"), f"must be {HOOK!r}"))
    if not isinstance(body.get("hookInstance"), str):
        problems.append(Problem(("body", "hookInstance"), "required (a string)"))
    context = body.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
        problems.append(Problem(("body", "context", "patientId"), "required (a string)"))
    if problems:
        raise InvalidRequest("the request is not a patient-view CDS Hooks call", tuple(problems))
    return body


@router.post(
    f"/cds-services/{SERVICE_ID}",
    responses={
        401: {"description": "Missing, untrusted or invalid EHR JWT"},
        412: {"description": "prefetch.patient was not sent"},
    },
    openapi_extra={"security": [{"Bearer": []}]},
)
async def lead_risk_hook(request: Request) -> Response:
    """The lead-risk card for the patient in view (or no card when the child is not eligible)."""
    await _verify(request)
    body = _fields(await read_json(request, request.app.state.settings))
    prefetch = body.get("prefetch")
    patient = prefetch.get("patient") if isinstance(prefetch, dict) else None
    if patient is None:
        raise PreconditionFailed("prefetch.patient is required (this service does not call the FHIR server)")
    home = patient_home(patient)
    service: LeadService = request.app.state.lead
    model = service.model()
    engine = await ready_engine(service, model)
    today = date.today()
    if home.birth is None or home.line is None or home.birth > today:
        return JSONBytes(NO_CARDS)
    if (today - home.birth).days >= engine.horizon_days:
        return JSONBytes(NO_CARDS)
    city, state = (home.city or "").strip().upper(), (home.state or "").strip().upper()
    if city != engine.config.display_name.upper() or state not in STATES:
        return JSONBytes(NO_CARDS)
    try:
        result = service.score(engine, model, home.birth, today, Home(address=home.line))
    except OutsideArea:
        return JSONBytes(NO_CARDS)
    label = f"civicrisk {engine.config.display_name} lead-risk model {model.version}"
    return JSONBytes({"cards": [card(result, label)]})
