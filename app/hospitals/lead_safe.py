"""The Chicago "Lead Safe API" request contract: field rules, and the answer in the contract's shape.

Every problem names the field and the rule, never the value sent: values here are patient data.
Race and ethnicity are checked against the ONC codes for compatibility and then dropped; they are
never a model input. Visits are checked and dropped. Labs are read only to flag a child who already
had a blood lead test at or above the model's threshold (a known case needs follow-up, not a score).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

RACE_CODES = frozenset({"1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "UNK"})
ETHNICITY_CODES = frozenset({"2135-2", "2186-5", "UNK"})
GENDERS = frozenset({"M", "F", "U"})
IDENTIFIERS = ("network_id", "clinic_id", "location_id", "patient_id")
ADDRESS_FIELDS = ("address1", "city", "state", "zip")
FIELDS = frozenset(
    {
        "timestamp",
        *IDENTIFIERS,
        "address1",
        "address2",
        "city",
        "state",
        "zip",
        "date_of_birth",
        "expected_due_date",
        "gender",
        "race",
        "ethnicity",
        "visit",
        "lab",
        "latitude",
        "longitude",
    }
)
VISIT_FIELDS = frozenset({"visit_id", "date", "location", "provider"})
LAB_FIELDS = frozenset({"lab_id", "type", "date", "sample_type", "result"})
MAX_TEXT = 200
MAX_ITEMS = 500
ONE_DAY = timedelta(days=1)  # a clinic's local date may be a day ahead of the server's (UTC)
MAX_DUE_AHEAD = timedelta(days=300)
ZIP_CODE = re.compile(r"\d{5}(-\d{4})?")
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,40}")
_NUMBER = re.compile(r"\s*<?\s*(\d+(?:\.\d+)?)")
_NOT_DETECTED = re.compile(r"\s*(none detected|not detected|nd\b)", re.IGNORECASE)


@dataclass(frozen=True)
class FieldError:
    message: str
    status: int = 400


@dataclass(frozen=True)
class LeadSafeRequest:
    """The fields the answer echoes and the few the model reads; nothing else is kept."""

    echo: dict[str, Any]  # network_id, clinic_id, location_id, patient_id as sent
    as_of: date
    birth: date
    expected: bool  # the child is expected (born on expected_due_date), not born yet
    address: str | None
    latitude: float | None
    longitude: float | None
    city: str | None
    state: str | None
    elevated_lab: bool


def _field_name(name: object) -> str:
    # A client-chosen key may itself carry patient data; only plain identifiers are named back.
    return name if isinstance(name, str) and _SAFE_NAME.fullmatch(name) else "(a field)"


def parse_timestamp(value: object) -> datetime | None:
    """RFC 3339 / ISO 8601, with a space or a T ("2018-03-23 09:59:14.237-00:00"); None if not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def lab_result(value: object) -> float | None:
    """A lab result as µg/dL: numbers, numeric text ("4.1", "<3.3 ug/dL"), "None Detected" → 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    if _NOT_DETECTED.match(value):
        return 0.0
    match = _NUMBER.match(value)
    return float(match.group(1)) if match else None


class _Checker:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[FieldError] = []

    def fail(self, message: str) -> None:
        self.errors.append(FieldError(message))

    def text(self, name: str, required: bool = True, max_length: int = MAX_TEXT) -> str | None:
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                self.fail(f"{name}: missing required field")
            return None
        if not isinstance(value, str):
            self.fail(f"{name}: must be text")
            return None
        if len(value) > max_length:
            self.fail(f"{name}: longer than {max_length} characters")
            return None
        return value

    def identifier(self, name: str) -> None:
        value = self.body.get(name)
        if value is None or value == "":
            self.fail(f"{name}: missing required field")
        elif isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(f"{name}: must be text (or an integer id)")
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            self.fail(f"{name}: longer than {MAX_TEXT} characters")

    def code(self, name: str, allowed: frozenset[str]) -> None:
        value = self.text(name)
        if value is not None and value not in allowed:
            self.fail(f"{name}: not one of {', '.join(sorted(allowed))}")

    def day(self, name: str, required: bool) -> date | None:
        value = self.body.get(name)
        if value is None or value == "":
            if required:
                self.fail(f"{name}: missing required field")
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.fail(f"{name}: not a date in yyyy-mm-dd form")
        return parsed

    def coordinate(self, name: str, limit: float) -> float | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(f"{name}: must be a number")
            return None
        if abs(value) > limit:
            self.fail(f"{name}: must be between -{limit:g} and {limit:g}")
            return None
        return float(value)

    def items(self, name: str, fields: frozenset[str]) -> list[dict[str, Any]]:
        value = self.body.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            self.fail(f"{name}: must be a list of at most {MAX_ITEMS} objects")
            return []
        good = []
        for index, item in enumerate(value):
            where = f"{name}[{index}]"
            if not isinstance(item, dict):
                self.fail(f"{where}: must be an object")
                continue
            if not fields.issuperset(item):
                for key in sorted(set(item) - fields, key=str):
                    self.fail(f"{where}.{_field_name(key)}: unknown field")
            good.append(item)
        return good

    def visits(self) -> None:
        for index, visit in enumerate(self.items("visit", VISIT_FIELDS)):
            where = f"visit[{index}]"
            when = visit.get("date")
            if when is not None and parse_timestamp(when) is None and parse_date(when) is None:
                self.fail(f"{where}.date: not a date or RFC 3339 timestamp")
            for key in ("visit_id", "location", "provider"):
                if key in visit and (isinstance(visit[key], bool) or not isinstance(visit[key], str | int)):
                    self.fail(f"{where}.{key}: must be text (or an integer id)")

    def labs(self, threshold: float, as_of: date | None) -> bool:
        """Check every lab; True if one before `as_of` is a blood lead result at or above threshold."""
        elevated = False
        for index, lab in enumerate(self.items("lab", LAB_FIELDS)):
            where = f"lab[{index}]"
            if lab.get("type") != "BLL":
                self.fail(f"{where}.type: must be BLL")
            if lab.get("sample_type") not in (None, "V", "C"):
                self.fail(f"{where}.sample_type: must be V or C")
            tested = parse_date(lab.get("date"))
            if tested is None:
                self.fail(f"{where}.date: missing, or not a date in yyyy-mm-dd form")
            result = lab_result(lab.get("result"))
            if result is None and lab.get("result") is not None:
                self.fail(f"{where}.result: not a number or a recognised result text")
            if result is not None and tested is not None and (as_of is None or tested <= as_of):
                elevated |= result >= threshold
        return elevated


def parse_request(body: Any, threshold: float, today: date) -> LeadSafeRequest | list[FieldError]:
    """The validated request, or every problem found (400s), each naming its field."""
    if not isinstance(body, dict):
        return [FieldError("body: must be a JSON object")]
    check = _Checker(body)
    if not FIELDS.issuperset(body):
        for key in sorted(set(body) - FIELDS, key=str):
            check.fail(f"{_field_name(key)}: unknown field")
    stamp = body.get("timestamp")
    moment = parse_timestamp(stamp)
    if stamp is None or stamp == "":
        check.fail("timestamp: missing required field")
    elif moment is None:
        check.fail("timestamp: not an RFC 3339 timestamp (yyyy-mm-dd hh:mm:ss.sss-hh:mm)")
    as_of = moment.date() if moment is not None else None
    if as_of is not None and as_of > today + ONE_DAY:
        check.fail("timestamp: in the future")
    for name in IDENTIFIERS:
        check.identifier(name)
    latitude = check.coordinate("latitude", 90.0)
    longitude = check.coordinate("longitude", 180.0)
    if ("latitude" in body) != ("longitude" in body):
        check.fail("latitude, longitude: send both or neither")
    located = latitude is not None and longitude is not None
    # With coordinates the address is not needed; without them it is required, as in the contract.
    address1 = check.text("address1", required=not located)
    check.text("address2", required=False)
    city = check.text("city", required=not located)
    state = check.text("state", required=not located)
    zip_code = check.text("zip", required=not located, max_length=10)
    if zip_code is not None and not ZIP_CODE.fullmatch(zip_code):
        check.fail("zip: must be 5 digits (or ZIP+4)")
    birth = check.day("date_of_birth", required=True)
    due = check.day("expected_due_date", required=False)
    check.code("gender", GENDERS)
    check.code("race", RACE_CODES)
    check.code("ethnicity", ETHNICITY_CODES)
    check.visits()
    elevated = check.labs(threshold, as_of)
    if birth is not None and as_of is not None and birth > as_of and due is None:
        check.fail("date_of_birth: after the timestamp's date")
    if due is not None and as_of is not None and due > as_of + MAX_DUE_AHEAD:
        check.fail("expected_due_date: more than 300 days after the timestamp's date")
    if check.errors:
        return check.errors
    assert as_of is not None and birth is not None  # no errors means both parsed
    return LeadSafeRequest(
        echo={name: body[name] for name in IDENTIFIERS},
        as_of=as_of,
        # A prenatal visit sends the parent's date of birth and the due date: the child is scored
        # as a newborn at the home (age 0), which is what the model knows before birth.
        birth=due if due is not None else birth,
        expected=due is not None and due > as_of,
        address=address1,
        latitude=latitude,
        longitude=longitude,
        city=city,
        state=state,
        elevated_lab=elevated,
    )
