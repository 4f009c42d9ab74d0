"""The CDS Hooks answer for one child: a card (summary, indicator, detail, source, links, override
reasons and, for a high risk, a suggestion to order a blood lead test as a FHIR R4 ServiceRequest),
and a FHIR R4 RiskAssessment in `systemActions` for EHRs that record the result in the chart.

A card's `uuid` says which model and tier it came from, and nothing else (`card_uuid`), so feedback
on it can be counted by tier without the service keeping any record of the cards it gave out.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.hospitals.fhir_labs import BLOOD_LEAD_CODES, LOINC, BloodLead
from app.hospitals.lead_answers import notes
from app.hospitals.lead_risk import LeadResult

TIERS = ("low", "medium", "high")
INDICATORS = {"high": "critical", "medium": "warning", "low": "info"}
# FHIR R4 risk-probability codes for the model's tiers.
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
QUALITATIVE = {"low": ("low", "Low likelihood"), "medium": ("moderate", "Moderate likelihood"),
               "high": ("high", "High likelihood")}  # fmt: skip
# Override reasons from the CDS Hooks non-adherence reason code system (HL7).
OVERRIDE_SYSTEM = "http://cds-hooks.hl7.org/CodeSystem/non-adherence-reason"
OVERRIDE_REASONS = {
    "action-completed": "Recommended action was already completed",
    "indication-order-exists": "Patient has indication/order for intended action",
    "patient-ineligible": "Patient does not meet eligibility for recommended action",
    "recipient-does-not-trust": "Recipient does not agree with or trust the recommended action",
    "limited-time": "Could not address recommended action due to limited time",
    "patient-refuses": "Patient refuses/declines (no context given)",
}
LABORATORY = {"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}
VENOUS = "77307-7"  # CDC: a venous sample is preferred, and confirms an elevated capillary one
NOT_SENT = "Earlier blood lead results were not available to this service: check the chart for them"


@dataclass(frozen=True)
class CardContext:
    """What a card says besides the result: who it is for and where its links point."""

    patient_id: str
    birth: date
    base_url: str  # this service's public URL
    model_name: str
    model_version: str
    city: str
    threshold: float
    horizon_days: int
    programme: tuple[str, str] | None  # (label, URL) of the city's lead programme page
    labs: BloodLead

    @property
    def label(self) -> str:
        return f"civicrisk {self.city} lead-risk model {self.model_version}"

    @property
    def model_card(self) -> str:
        return f"{self.base_url}/v1/models/{self.model_name}/card?version={self.model_version}"


@functools.lru_cache(maxsize=64)
def model_tag(name: str, version: str) -> bytes:
    """Five bytes naming a model version inside a card uuid."""
    return hashlib.sha256(f"{name}\0{version}".encode()).digest()[:5]


def card_uuid(name: str, version: str, tier: str) -> str:
    """A UUIDv8 (RFC 9562): the model tag, the tier's index, then 74 random bits."""
    code = TIERS.index(tier) if tier in TIERS else 255
    raw = bytearray(model_tag(name, version) + bytes([code]) + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


@dataclass(frozen=True)
class CardOrigin:
    uuid: str  # the card's uuid in its canonical form
    tag: bytes  # the model version's tag (model_tag)
    tier: str | None


def card_origin(value: str) -> CardOrigin | None:
    """Where a card uuid this service made came from; None for any other string."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
    if parsed.version != 8 or parsed.variant != uuid.RFC_4122:
        return None
    raw = parsed.bytes
    return CardOrigin(str(parsed), raw[:5], TIERS[raw[5]] if raw[5] < len(TIERS) else None)


def _detail(result: LeadResult, context: CardContext) -> str:
    lines = notes(result, elevated_lab=context.labs.elevated, expected=False)
    action, reasons = lines[0], lines[1:]
    block = [
        f"**{action}.**",
        "",
        f"Estimated chance of a blood lead test ≥ {context.threshold:g} µg/dL before age 3: "
        f"**{result.score:.1%}** (tier: {result.tier}).",
    ]
    if not context.labs.sent:
        block += ["", NOT_SENT + "."]
    return "\n".join([*block, "", "Why:", *[f"- {line}" for line in reasons]])


def service_request(result: LeadResult, context: CardContext) -> dict[str, Any]:
    """A draft order for a venous blood lead test for the patient (FHIR R4 ServiceRequest)."""
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [LABORATORY]}],
        "code": {
            "coding": [{"system": LOINC, "code": VENOUS, "display": BLOOD_LEAD_CODES[VENOUS]}],
            "text": "Blood lead test",
        },
        "subject": {"reference": f"Patient/{context.patient_id}"},
        "reasonCode": [{"text": f"{result.tier.capitalize()} risk of lead exposure ({context.label})"}],
    }


def risk_assessment(result: LeadResult, context: CardContext, now: datetime) -> dict[str, Any]:
    """The score as a FHIR R4 RiskAssessment: the chance of an elevated test before age 3."""
    code, display = QUALITATIVE.get(result.tier, ("moderate", "Moderate likelihood"))
    caveat = (
        " Validated on synthetic outcomes only: not for clinical decisions." if _synthetic(result) else ""
    )
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": f"Patient/{context.patient_id}"},
        "occurrenceDateTime": now.isoformat(timespec="seconds"),
        "method": {
            "coding": [
                {
                    "system": f"{context.base_url}/v1/models",
                    "code": context.model_name,
                    "display": context.label,
                }
            ],  # fmt: skip
            "text": context.label,
        },
        "basis": [{"reference": f"Patient/{context.patient_id}"}]
        + [{"reference": reference} for reference in context.labs.basis],
        "prediction": [
            {
                "outcome": {"text": f"Blood lead test at or above {context.threshold:g} µg/dL before age 3"},
                "probabilityDecimal": round(result.score, 4),
                "qualitativeRisk": {
                    "coding": [{"system": RISK_PROBABILITY, "code": code, "display": display}]
                },
                "whenPeriod": {"end": (context.birth + timedelta(days=context.horizon_days)).isoformat()},
            }
        ],
        "note": [{"text": f"Estimated by the {context.label} ({context.model_card}).{caveat}"}],
    }


def _synthetic(result: LeadResult) -> bool:
    return bool(result.model.manifest.get("synthetic"))


def answer(result: LeadResult, context: CardContext, now: datetime | None = None) -> dict[str, Any]:
    """`{"cards": [...], "systemActions": [...]}` for a scored child."""
    now = now or datetime.now(UTC)
    summary = f"Lead exposure risk: {result.tier} ({result.score:.1%} chance of an elevated test by age 3)"
    links = [
        {"label": "Model card: how this risk is estimated", "url": context.model_card, "type": "absolute"}
    ]
    if context.programme is not None:
        label, url = context.programme
        links.append({"label": label, "url": url, "type": "absolute"})
    card: dict[str, Any] = {
        "uuid": card_uuid(context.model_name, context.model_version, result.tier),
        "summary": summary[:139],
        "indicator": INDICATORS.get(result.tier, "info"),
        "detail": _detail(result, context),
        "source": {
            "label": context.label,
            "url": context.model_card,
            "topic": {
                "system": f"{context.base_url}/cds-services",
                "code": "lead-exposure-risk",
                "display": "Childhood lead exposure risk",
            },  # fmt: skip
        },
        "links": links,
        "overrideReasons": [
            {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
            for code, display in OVERRIDE_REASONS.items()
        ],
    }
    if result.tier == "high":
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [
            {
                "label": "Order a blood lead test",
                "uuid": str(uuid.uuid4()),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": "Order a venous blood lead test for this patient",
                        "resource": service_request(result, context),
                    }
                ],
            }
        ]
    record = {
        "type": "create",
        "description": "Record the lead exposure risk assessment in the chart",
        "resource": risk_assessment(result, context, now),
    }
    return {"cards": [card], "systemActions": [record]}
