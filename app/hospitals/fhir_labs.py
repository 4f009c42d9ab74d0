"""A child's earlier blood lead results from FHIR R4 Observations, read as the Lead Safe `lab[]` is:
a result at or above the model's threshold on or before the visit makes the child a known case (the
answer's notes say to follow up on that result first); the score itself does not change.

Blood lead is LOINC 77307-7 (Lead [Mass/volume] in Venous blood), 10368-9 (... in Capillary blood)
and 5671-3 (... in Blood, specimen not stated). An Observation of another code, cancelled, entered in
error or without a result or date is passed over, as the contract's checks would pass over nothing
less: no such result can say the child had an elevated test. An Observation about another patient
refuses the whole call (WrongPatient): a bundle mixing patients is not something to score on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.hospitals.lead_safe import lab_result, parse_date, parse_timestamp
from app.platform.errors import InvalidRequest, Problem

LOINC = "http://loinc.org"
BLOOD_LEAD_CODES = {
    "77307-7": "Lead [Mass/volume] in Venous blood",
    "10368-9": "Lead [Mass/volume] in Capillary blood",
    "5671-3": "Lead [Mass/volume] in Blood",
}
# The prefetch template: the patient's blood lead Observations, newest first.
SEARCH = "Observation?patient={patient}&code=" + ",".join(f"{LOINC}|{code}" for code in BLOOD_LEAD_CODES)
RESULT_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})
# UCUM units a result may come in, as the factor to µg/dL (lead: 1 µmol/L = 20.72 µg/dL).
UNITS = {
    "ug/dL": 1.0,
    "µg/dL": 1.0,
    "mcg/dL": 1.0,
    "ug/L": 0.1,
    "µg/L": 0.1,
    "umol/L": 20.72,
    "µmol/L": 20.72,
}


class WrongPatient(InvalidRequest):
    """A prefetched resource belongs to another patient than the hook's context.patientId."""


@dataclass(frozen=True)
class BloodLead:
    elevated: bool  # a result at or above the threshold, on or before the visit
    basis: tuple[str, ...]  # "Observation/<id>" of every blood lead result read
    sent: bool  # False: no results were sent or fetched (the prefetch key was absent)


NOT_SENT = BloodLead(False, (), False)


def wrong_patient(where: tuple[str | int, ...]) -> WrongPatient:
    return WrongPatient(
        "a prefetched resource is about another patient than context.patientId; nothing was scored",
        (Problem(where, "does not match context.patientId"),),
    )


def _subject_is(observation: dict[str, Any], patient_id: str) -> bool:
    subject = observation.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return False
    # Relative ("Patient/123") or absolute ("https://ehr/fhir/Patient/123"), maybe with a version.
    path = reference.split("/_history/")[0]
    return path == f"Patient/{patient_id}" or path.endswith(f"/Patient/{patient_id}")


def _is_blood_lead(observation: dict[str, Any]) -> bool:
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("system") == LOINC and c.get("code") in BLOOD_LEAD_CODES
        for c in codings
    )


def _tested_on(observation: dict[str, Any]) -> date | None:
    period = observation.get("effectivePeriod")
    for value in (
        observation.get("effectiveDateTime"),
        period.get("start") if isinstance(period, dict) else None,
        observation.get("issued"),
    ):
        moment = parse_timestamp(value)
        if moment is not None:
            return moment.date()
        day = parse_date(value)
        if day is not None:
            return day
    return None


def _result_ug_dl(observation: dict[str, Any]) -> float | None:
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict):
        value = quantity.get("value")
        unit = quantity.get("code") or quantity.get("unit")
        factor = UNITS.get(unit) if isinstance(unit, str) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and factor and math.isfinite(value):
            return float(value) * factor
        return None
    return lab_result(observation.get("valueString"))  # "None Detected", "<3.3 ug/dL", ...


def _observations(value: Any) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    where: tuple[str | int, ...] = ("body", "prefetch", "bloodLead")
    if isinstance(value, dict) and value.get("resourceType") == "Observation":
        return [(where, value)]
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        return []  # null (no data), an OperationOutcome (the client could not fetch), or junk
    entries = value.get("entry")
    found = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Observation":
            found.append(((*where, "entry", index, "resource"), resource))
    return found


def blood_lead(value: Any, patient_id: str, threshold: float, as_of: date) -> BloodLead:
    """The earlier results in a prefetched (or fetched) searchset Bundle or Observation."""
    elevated = False
    basis = []
    for where, observation in _observations(value):
        if not _subject_is(observation, patient_id):
            raise wrong_patient((*where, "subject"))
        if not _is_blood_lead(observation) or observation.get("status") not in RESULT_STATUSES:
            continue
        tested, result = _tested_on(observation), _result_ug_dl(observation)
        if tested is None or result is None or tested > as_of:
            continue
        elevated |= result >= threshold
        if isinstance(observation.get("id"), str):
            basis.append(f"Observation/{observation['id']}")
    return BloodLead(elevated, tuple(basis), True)
