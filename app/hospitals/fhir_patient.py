"""The little a lead score needs from a FHIR R4 Patient: the birth date and the home address line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.platform.errors import InvalidRequest, Problem


@dataclass(frozen=True)
class PatientHome:
    id: str | None  # the resource's logical id, compared with the hook's context.patientId
    birth: date | None  # None when absent or only a year / year-month (FHIR allows both)
    line: str | None
    city: str | None
    state: str | None


def _home_address(addresses: Any) -> dict[str, Any] | None:
    """The `use: home` address (else the first without `use` old/billing/temp), skipping ended ones."""
    if not isinstance(addresses, list):
        return None
    usable = [
        a
        for a in addresses
        if isinstance(a, dict)
        and a.get("use") not in ("old", "billing", "temp")
        and not (isinstance(a.get("period"), dict) and a["period"].get("end"))
    ]
    homes = [a for a in usable if a.get("use") == "home"]
    chosen = homes or usable
    return chosen[0] if chosen else None


def patient_home(patient: Any) -> PatientHome:
    """Read a Patient resource; InvalidRequest (422) if it is not one. Values are never echoed."""
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise InvalidRequest(
            "prefetch.patient is not a FHIR Patient",
            (Problem(("body", "prefetch", "patient"), "expected a resource with resourceType Patient"),),
        )
    birth: date | None = None
    text = patient.get("birthDate")
    if isinstance(text, str) and len(text) == 10:
        try:
            birth = date.fromisoformat(text)
        except ValueError:
            birth = None
    found = patient.get("id")
    resource_id = found if isinstance(found, str) and found else None
    address = _home_address(patient.get("address"))
    if address is None:
        return PatientHome(resource_id, birth, None, None, None)
    lines = address.get("line")
    line = lines[0] if isinstance(lines, list) and lines and isinstance(lines[0], str) else None
    city, state = address.get("city"), address.get("state")
    return PatientHome(
        resource_id,
        birth,
        line,
        city if isinstance(city, str) else None,
        state if isinstance(state, str) else None,
    )
