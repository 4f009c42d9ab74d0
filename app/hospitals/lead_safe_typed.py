"""The common Lead Safe request, decoded against types and checked in one pass, for the hot path.

`parse_request` (lead_safe.py) states every rule of the contract and names every problem found. Most
requests have none, and for those its twenty-odd checks in Python cost more than scoring the child
(bench/README.md). Here the body is decoded by msgspec against types at least as strict as those
rules, then the few rules types cannot state are checked. A body that passes gives exactly the
`LeadSafeRequest` parse_request would (tests hold the two to that on generated bodies); anything
else, every body with a problem among it, goes to parse_request, so the errors and their wording
come from one place.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from app.hospitals.lead_safe import (
    ETHNICITY_CODES,
    GENDERS,
    MAX_DUE_AHEAD,
    MAX_ITEMS,
    MAX_TEXT,
    ONE_DAY,
    RACE_CODES,
    ZIP_CODE,
    LeadSafeRequest,
    lab_result,
    parse_date,
    parse_timestamp,
)

Text = Annotated[str, Meta(max_length=MAX_TEXT)]
# orjson, which parse_request reads, turns integers outside 64 bits into floats (then refused as ids).
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
Identifier = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)] | Int64


class _Visit(Struct, forbid_unknown_fields=True):
    # parse_request refuses an id, location or provider sent as null, so those have no null here.
    visit_id: Identifier | UnsetType = UNSET
    date: str | None = None
    location: str | Int64 | UnsetType = UNSET
    provider: str | Int64 | UnsetType = UNSET


class _Lab(Struct, forbid_unknown_fields=True):
    type: Literal["BLL"]
    date: str
    lab_id: Any = None  # the contract sets no rule for it, and nothing reads it
    sample_type: Literal["V", "C"] | None = None
    result: str | int | float | None = None


class _Body(Struct, forbid_unknown_fields=True):
    timestamp: Annotated[str, Meta(min_length=10, max_length=40)]
    network_id: Identifier
    clinic_id: Identifier
    location_id: Identifier
    patient_id: Identifier
    date_of_birth: str
    gender: str
    race: str
    ethnicity: str
    address1: Text | None = None
    address2: Text | None = None
    city: Text | None = None
    state: Text | None = None
    zip: Annotated[str, Meta(max_length=10)] | None = None
    expected_due_date: str | None = None
    visit: Annotated[list[_Visit], Meta(max_length=MAX_ITEMS)] | None = None
    lab: Annotated[list[_Lab], Meta(max_length=MAX_ITEMS)] | None = None
    # Absent and null differ for coordinates ("send both or neither" counts keys): UNSET is absent.
    latitude: float | None | UnsetType = UNSET
    longitude: float | None | UnsetType = UNSET


_DECODER = msgspec.json.Decoder(_Body)


def decode(raw: bytes) -> _Body | None:
    """The body against the types, or None (parse_request then reads it)."""
    try:
        return _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def check(body: _Body, threshold: float, today: date) -> LeadSafeRequest | None:
    """The request, when every rule holds; None when any might not (parse_request decides)."""
    moment = parse_timestamp(body.timestamp)
    birth = parse_date(body.date_of_birth)
    if moment is None or birth is None:
        return None
    as_of = moment.date()
    if as_of > today + ONE_DAY:
        return None
    latitude, longitude = body.latitude, body.longitude
    if latitude is UNSET and longitude is UNSET:
        latitude = longitude = None
    elif not (
        isinstance(latitude, float)
        and isinstance(longitude, float)
        and abs(latitude) <= 90.0
        and abs(longitude) <= 180.0
    ):
        return None  # one without the other, a null, or out of range
    located = latitude is not None
    if not located and not (body.address1 and body.city and body.state and body.zip):
        return None  # each is required without coordinates
    if body.zip and not ZIP_CODE.fullmatch(body.zip):
        return None
    if body.gender not in GENDERS or body.race not in RACE_CODES or body.ethnicity not in ETHNICITY_CODES:
        return None
    due = None
    if body.expected_due_date:
        due = parse_date(body.expected_due_date)
        if due is None or due > as_of + MAX_DUE_AHEAD:
            return None
    elif birth > as_of:
        return None
    for visit in body.visit or ():
        if visit.date is not None and parse_timestamp(visit.date) is None and parse_date(visit.date) is None:
            return None
    elevated = False
    for lab in body.lab or ():
        tested = parse_date(lab.date)
        result = lab_result(lab.result)
        if tested is None or (result is None and lab.result is not None):
            return None
        if result is not None and tested <= as_of:
            elevated |= result >= threshold
    return LeadSafeRequest(
        echo={
            "network_id": body.network_id,
            "clinic_id": body.clinic_id,
            "location_id": body.location_id,
            "patient_id": body.patient_id,
        },
        as_of=as_of,
        birth=due if due is not None else birth,
        expected=due is not None and due > as_of,
        address=body.address1 or None,
        latitude=latitude,
        longitude=longitude,
        city=body.city or None,
        state=body.state or None,
        elevated_lab=elevated,
    )
