"""CDS Hooks 2.0 for EHRs: discovery, the `lead-risk` service on the `patient-view` hook, and its
feedback endpoint; plus the feedback summary for the city's model team.

Every call carries the EHR's signed JWT (app/hospitals/ehr_tokens.py), whose `aud` is the URL of the
endpoint called. The patient and the child's earlier blood lead results come in the prefetch; when
the prefetch lacks them the service reads them from the EHR's FHIR server only if that server is
allowlisted (app/hospitals/fhir_fetch.py; none by default). A prefetched resource of another patient
than `context.patientId` refuses the call before anything is scored. An ineligible child or a home
outside the city gets no card (`{"cards": []}`). Nothing of the patient is kept; refusals are FHIR
OperationOutcomes (app/hospitals/cds_errors.py).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response

from app.hospitals.cds_cards import CardContext, answer
from app.hospitals.cds_errors import CdsRoute, outcome_doc, refusals_as_outcomes
from app.hospitals.cds_feedback import ModelTags, parse, summary
from app.hospitals.ehr_tokens import EhrTokenVerifier, TokenRejected, VerifiedToken
from app.hospitals.errors import OutsideArea
from app.hospitals.fhir_fetch import FhirFetcher
from app.hospitals.fhir_labs import NOT_SENT, SEARCH, BloodLead, blood_lead, wrong_patient
from app.hospitals.fhir_patient import PatientHome, patient_home
from app.hospitals.lead_risk import Home, LeadEngine, LeadService
from app.hospitals.lead_routes import STATES, ready_engine
from app.hospitals.replay import SpentTokens
from app.platform.bodies import read_json
from app.platform.deps import SECURITY, AdminDep, ModelDep
from app.platform.errors import (
    AuthNotConfigured,
    InvalidRequest,
    PreconditionFailed,
    Problem,
    ServiceError,
    Unauthorized,
)
from app.platform.handlers import JSONBytes
from app.platform.metrics import ServiceMetrics
from app.platform.registry import LoadedModel
from app.platform.schemas import ErrorResponse
from app.platform.settings import Settings
from training.serving import today_in

security_log = logging.getLogger("civicrisk.security")

router = APIRouter(tags=["hospitals"], route_class=CdsRoute)
summary_router = APIRouter(tags=["models"])
SERVICE_ID = "lead-risk"
HOOK = "patient-view"
HOOK_PATH = f"/cds-services/{SERVICE_ID}"
FEEDBACK_PATH = f"{HOOK_PATH}/feedback"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "bloodLead": SEARCH.format(patient="{{context.patientId}}"),
}
DESCRIPTION = (
    "Chance that a child under 3 has a blood lead test at or above 5 µg/dL before age 3, from the"
    " home's housing age, neighbourhood and earlier tests nearby, with the reasons and a recommended"
    " action; earlier blood lead results on record are flagged for follow-up. Uses only the birth"
    " date, the home address and earlier blood lead results; keeps nothing."
)
NO_CARDS: dict[str, list[Any]] = {"cards": []}
ABSENT = object()  # a prefetch key the EHR did not satisfy
_HOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: outcome_doc("The body is not JSON"),
    401: outcome_doc("Missing, untrusted or invalid EHR JWT, or one used before"),
    412: outcome_doc("No Patient in the prefetch, and no allowlisted FHIR server to read it from"),
    413: outcome_doc("Body over the size limit"),
    415: outcome_doc("Content-Type is not JSON"),
    422: outcome_doc("Not a patient-view call, or a prefetched resource of another patient"),
    503: outcome_doc("No trusted EHR issuer configured, or no lead model loaded"),
}


def _usage(request: Request) -> str:
    """Who the service is for, from the manifest of the lead model being served: the city, the age,
    and whether its outcomes are synthetic."""
    service: LeadService = request.app.state.lead
    try:
        model = service.model()
    except ServiceError:  # no lead model loaded: the hook answers 503 until one is
        return "No lead-risk model is loaded at the moment: calls answer 503 until one is."
    city = model.manifest.get("city_display_name") or model.city
    horizon = int(model.manifest.get("label", {}).get("horizon_days", 1096))
    text = (
        f"For children under {horizon // 365} years old ({horizon} days, the model's horizon) whose"
        f" home address is in {city}; other children get no card. Needs an EHR-signed JWT from a"
        " trusted issuer (aud: the URL called) and the `patient` and `bloodLead` prefetch (or an"
        " allowlisted FHIR server)."
    )
    if model.manifest.get("synthetic"):
        text += (
            f" The model served ({model.name} {model.version}) was trained and validated on"
            " synthetic blood-test outcomes: it demonstrates the integration and is not for clinical"
            " decisions."
        )
    return text


@router.get("/cds-services")
async def discovery(request: Request) -> dict[str, Any]:
    """CDS Hooks discovery: the services this CDS Service offers."""
    service = {
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "Childhood lead exposure risk",
        "description": DESCRIPTION,
        "prefetch": PREFETCH,
        "usageRequirements": _usage(request),
    }
    return {"services": [service]}


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _security_event(request: Request, client: str | None, reason: str) -> None:
    """A replayed or misdirected token: logged with who sent it and why, nothing else."""
    security_log.warning("security event", extra={"event": "ehr_token_refused", "client": client,
                                                  "reason": reason})  # fmt: skip
    metrics: ServiceMetrics = request.app.state.metrics
    metrics.security_events.labels(reason).inc()


async def _verify(request: Request, path: str) -> VerifiedToken:
    verifier: EhrTokenVerifier | None = request.app.state.ehr_tokens
    settings: Settings = request.app.state.settings
    if verifier is None:
        raise AuthNotConfigured("no trusted EHR issuers are configured (set CIVICRISK_CDS_ISSUERS_FILE)")
    try:
        token = await verifier.verify(_bearer(request), f"{settings.cds_service_url}{path}")
    except TokenRejected as rejected:
        if rejected.reason == "wrong_audience":
            _security_event(request, rejected.client, rejected.reason)
        raise Unauthorized(str(rejected)) from None
    # Each token once (app/hospitals/replay.py).
    spent: SpentTokens = request.app.state.spent_tokens
    if not await spent.first_use(token.replay_key, token.forget_after):
        _security_event(request, token.issuer, "replayed")
        raise Unauthorized("token has been used before (its jti is spent)")
    return token


def _fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object", (Problem(("body",), "expected an object"),))
    problems = []
    if body.get("hook") != HOOK:
        problems.append(Problem(("body", "hook"), f"must be {HOOK!r}"))
    if not isinstance(body.get("hookInstance"), str):
        problems.append(Problem(("body", "hookInstance"), "required (a string)"))
    context = body.get("context")
    if (
        not isinstance(context, dict)
        or not isinstance(context.get("patientId"), str)
        or not context["patientId"]
    ):
        problems.append(Problem(("body", "context", "patientId"), "required (a string)"))
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        problems.append(Problem(("body", "prefetch"), "must be an object"))
    if problems:
        raise InvalidRequest("the request is not a patient-view CDS Hooks call", tuple(problems))
    return body


def _satisfied(value: Any) -> bool:
    """A prefetch value the EHR filled (an OperationOutcome says it could not)."""
    return not (isinstance(value, dict) and value.get("resourceType") == "OperationOutcome")


async def _resources(request: Request, body: dict[str, Any], patient_id: str) -> tuple[Any, Any]:
    """The Patient and the blood lead results (ABSENT when neither sent nor fetched)."""
    prefetch = body.get("prefetch") or {}
    patient = prefetch.get("patient")
    labs = prefetch.get("bloodLead", ABSENT)
    fetcher: FhirFetcher = request.app.state.fhir
    source = fetcher.usable(body)
    if source is not None:
        if patient is None or not _satisfied(patient):
            patient = await fetcher.patient(*source, patient_id)
        if labs is ABSENT or not _satisfied(labs):
            labs = await fetcher.blood_lead(*source, patient_id)
    if patient is None or not _satisfied(patient):
        raise PreconditionFailed(
            "prefetch.patient is required (the service reads the FHIR server only when it is allowlisted)"
        )
    return patient, labs if _satisfied(labs) else ABSENT


def _eligible(engine: LeadEngine, home: PatientHome, today: date) -> bool:
    """A child the model covers: a full birth date, younger than its horizon, a home in the city."""
    if home.birth is None or home.line is None or home.birth > today:
        return False
    if (today - home.birth).days >= engine.horizon_days:
        return False
    city, state = (home.city or "").strip().upper(), (home.state or "").strip().upper()
    return city == engine.config.display_name.upper() and state in STATES


def _context(
    settings: Settings, engine: LeadEngine, model: LoadedModel, patient_id: str, birth: date, labs: BloodLead
) -> CardContext:
    return CardContext(
        patient_id=patient_id,
        birth=birth,
        base_url=str(settings.cds_service_url),
        model_name=model.name,
        model_version=model.version,
        city=engine.config.display_name,
        threshold=engine.threshold,
        horizon_days=engine.horizon_days,
        programme=engine.config.programme,
        labs=labs,
    )


async def lead_risk_hook(request: Request) -> Response:
    """The lead-risk card for the patient in view (or no card when the child is not eligible)."""
    await _verify(request, HOOK_PATH)
    settings: Settings = request.app.state.settings
    body = _fields(await read_json(request, settings))
    patient_id: str = body["context"]["patientId"]
    patient, labs_value = await _resources(request, body, patient_id)
    home = patient_home(patient)
    if home.id != patient_id:
        raise wrong_patient(("body", "prefetch", "patient", "id"))
    service: LeadService = request.app.state.lead
    model = service.model()
    engine = await ready_engine(service, model)
    today = today_in(engine.config.timezone)  # the city's date, as a child's age is counted there
    labs = NOT_SENT if labs_value is ABSENT else blood_lead(labs_value, patient_id, engine.threshold, today)
    if not _eligible(engine, home, today):
        return JSONBytes(NO_CARDS)
    assert home.birth is not None and home.line is not None  # _eligible checked both
    try:
        result = service.score(engine, model, home.birth, today, Home(address=home.line))
    except OutsideArea:
        return JSONBytes(NO_CARDS)
    metrics: ServiceMetrics = request.app.state.metrics
    metrics.cds_cards.labels(model.name, result.tier).inc()
    return JSONBytes(answer(result, _context(settings, engine, model, patient_id, home.birth, labs)))


# Not in the router: like the partner scoring routes, app.main serves it through the fast lane
# (app/platform/fast_lane.py) and declares it on the app itself for OpenAPI.
hook_route = APIRoute(
    HOOK_PATH,
    refusals_as_outcomes(lead_risk_hook),
    methods=["POST"],
    tags=["hospitals"],
    responses=_HOOK_ERRORS,
    openapi_extra={"security": [{"Bearer": []}]},
)


@router.post(
    FEEDBACK_PATH,
    responses={
        200: {
            "description": "Stored: new outcomes, repeats of stored ones, and ids of other services' cards"
        },
        **{code: doc for code, doc in _HOOK_ERRORS.items() if code != 412},
        422: outcome_doc("Not CDS Hooks feedback (each field at fault named)"),
    },
    openapi_extra={"security": [{"Bearer": []}]},
)
async def lead_risk_feedback(request: Request) -> dict[str, int]:
    """CDS Hooks feedback: a card accepted or overridden. Kept without any patient data."""
    await _verify(request, FEEDBACK_PATH)
    body = await read_json(request, request.app.state.settings)
    tags: ModelTags = request.app.state.model_tags
    parsed = parse(body, tags.of(request.app.state.registry.snapshot))
    repository = request.app.state.repository
    stored = (
        await anyio.to_thread.run_sync(lambda: repository().record_feedback(parsed.entries))
        if parsed.entries
        else []
    )
    metrics: ServiceMetrics = request.app.state.metrics
    for entry in stored:
        metrics.cds_feedback.labels(entry.model_name or "unknown", entry.tier, entry.outcome).inc()
    return {
        "stored": len(stored),
        "repeated": len(parsed.entries) - len(stored),
        "unknown_cards": parsed.unknown_cards,
    }


class TierFeedback(BaseModel):
    accepted: int
    overridden: int
    accept_rate: float | None
    override_rate: float | None


class FeedbackSummary(BaseModel):
    """What clinicians did with a model's CDS Hooks cards, by tier (no patient data)."""

    model: str
    feedback: int
    tiers: dict[str, TierFeedback]
    override_reasons: dict[str, int]
    versions: dict[str, int]


@summary_router.get(
    "/v1/models/{name}/feedback",
    response_model=FeedbackSummary,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid admin key"},
        403: {"model": ErrorResponse, "description": "A partner key without the `admin` scope"},
        404: {"model": ErrorResponse, "description": "Unknown model"},
        503: {"model": ErrorResponse, "description": "No admin key configured, or the database is down"},
    },
    openapi_extra={"security": SECURITY},
)
async def feedback_summary(_: AdminDep, model: ModelDep, request: Request) -> dict[str, Any]:
    """Clinicians' accept and override rates of the model's CDS Hooks cards, by tier (admin key)."""
    repository = request.app.state.repository
    counts = await anyio.to_thread.run_sync(lambda: repository().feedback_counts(model.name))
    return summary(model.name, counts)
