"""The typed fast path for Lead Safe requests accepts only what parse_request accepts, and gives the
same request; the usual bodies take it."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lead_helpers import child_body

from app.hospitals.lead_safe import (
    FIELDS,
    LAB_FIELDS,
    VISIT_FIELDS,
    LeadSafeRequest,
    parse_request,
)
from app.hospitals.lead_safe_typed import check, decode

THRESHOLD = 5.0
TODAY = date.today()


def fast(raw: bytes) -> LeadSafeRequest | None:
    typed = decode(raw)
    return None if typed is None else check(typed, THRESHOLD, TODAY)


def slow(raw: bytes) -> Any:
    return parse_request(orjson.loads(raw), THRESHOLD, TODAY)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


# Values near every rule's edge: types the contract refuses, empty and over-long text, integers past
# 64 bits (orjson reads them as floats), codes of the wrong list; and per kind of field, its own
# edges (dates that are not dates or not in yyyy-mm-dd form, or after the visit; coordinates out of
# range; lab results that are not results).
COMMON_EDGES = [
    None, True, 0, 5, 2**64, -(2**63) - 1, 5.0, 4.99, 41.9, -87.67, 95.0, -190.0, "", "x" * 201, "x" * 41,
    "٦٠٦٢٢", [], {}, "M", "UNK", "2106-3", "2135-2", "BLL", "V",
]  # fmt: skip
DATE_EDGES = [
    "", day(0), day(-200), day(-2000), day(2), day(400), "2026-02-30", "2026-W01-1", "20260101", "2026-1-5",
]  # fmt: skip
TIMESTAMP_EDGES = [
    "2026-01-05 15:02:54.171-00:00", "2026-01-05T15:02:54Z", f"{day(0)} 23:59:59.999+14:00",
    f"{day(2)} 00:00:00.000+00:00", f"{day(1)} 12:00:00", "2099-01-01 00:00:00.000+00:00", "2026-01-05",
]  # fmt: skip
FIELD_EDGES: dict[str, list[Any]] = {
    "timestamp": TIMESTAMP_EDGES,
    "date_of_birth": DATE_EDGES,
    "expected_due_date": DATE_EDGES,
    "date": DATE_EDGES + TIMESTAMP_EDGES,
    "zip": ["60622", "60622-1234", "6062", "60622-12", "606221234"],
    "gender": ["M", "F", "U", "m", "X"],
    "race": ["UNK", "2106-3", "2135-2", "unk"],
    "ethnicity": ["UNK", "2135-2", "2106-3"],
    "result": ["4.1", "<3.3 ug/dL", "None Detected", "nd", "high", 5, 5.0, 4.99, 7.5, -1],
    "sample_type": ["V", "C", "X"],
    "type": ["BLL", "bll"],
    "latitude": [41.9, 41, 90, 90.5, -91],
    "longitude": [-87.67, -87, 180, -180.5],
}
ALL_EDGES = COMMON_EDGES + [value for values in FIELD_EDGES.values() for value in values]
EDGES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(COMMON_EDGES),
)


def edges(name: str) -> st.SearchStrategy[Any]:
    own = FIELD_EDGES.get(name)
    return st.one_of(st.sampled_from(own), EDGES) if own else EDGES


def mutated(base: dict[str, Any], names: frozenset[str]) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with up to two fields replaced by edge values or dropped, now and then an unknown one:
    one rule at its edge at a time, which is where the two paths could part."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        body = dict(base)
        for name in draw(st.lists(st.sampled_from(sorted(names)), max_size=2, unique=True)):
            if draw(st.booleans()):
                body[name] = draw(edges(name))
            else:
                body.pop(name, None)
        if draw(st.integers(0, 19)) == 0:
            body["unknown_field"] = 1
        return body

    return build()


VISIT = child_body()["visit"][0]
LAB = child_body()["lab"][0]
BODIES = st.builds(
    lambda body, visits, labs, place: body | visits | labs | place,
    mutated({k: v for k, v in child_body().items() if k not in ("visit", "lab")}, FIELDS - {"visit", "lab"}),
    st.one_of(
        st.just({}),
        st.builds(lambda items: {"visit": items}, st.lists(mutated(VISIT, VISIT_FIELDS), max_size=3)),
    ),
    st.one_of(
        st.just({}),
        st.builds(lambda items: {"lab": items}, st.lists(mutated(LAB, LAB_FIELDS), max_size=3)),
        st.builds(
            lambda when: {"lab": [LAB | {"result": 7.5, "date": when}]}, st.sampled_from(DATE_EDGES)
        ),  # a known case?
    ),
    st.one_of(
        st.just({}),
        st.builds(
            lambda lat, lon: {"latitude": lat, "longitude": lon},
            st.one_of(st.floats(41.6, 42.1), edges("latitude")),
            st.one_of(st.floats(-87.95, -87.5), edges("longitude")),
        ),
        st.builds(lambda lat: {"latitude": lat}, edges("latitude")),
    ),
)


def one_field_at_its_edges() -> list[dict[str, Any]]:
    """Every field of the request, of a visit and of a lab, set to every edge value or dropped, one at
    a time: each rule at each of its edges, deterministically."""
    base = child_body(lab=[LAB | {"result": 7.5}])
    located = base | {"latitude": 41.9, "longitude": -87.67}  # where the address is not needed
    bodies = []
    for name in sorted(FIELDS):
        for start in (base, located):
            bodies.append({k: v for k, v in start.items() if k != name})
            bodies += [start | {name: value} for value in ALL_EDGES]
    for name in sorted(VISIT_FIELDS):
        bodies.append(base | {"visit": [{k: v for k, v in VISIT.items() if k != name}]})
        bodies += [base | {"visit": [VISIT | {name: value}]} for value in ALL_EDGES]
    for name in sorted(LAB_FIELDS):
        bodies.append(base | {"lab": [{k: v for k, v in base["lab"][0].items() if k != name}]})
        bodies += [base | {"lab": [base["lab"][0] | {name: value}]} for value in ALL_EDGES]
    bodies += [child_body(expected_due_date=due) for due in DATE_EDGES]
    return bodies


def test_each_rule_at_each_edge_gives_the_same_answer() -> None:
    taken = 0
    for body in one_field_at_its_edges():
        raw = json.dumps(body).encode()
        got = fast(raw)
        if got is not None:
            assert slow(raw) == got, body
            taken += 1
    assert taken > 100  # and the fast path is taken on many of them


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_what_the_fast_path_accepts_parse_request_accepts_the_same(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    got = fast(raw)
    if got is not None:
        assert slow(raw) == got


def test_the_usual_bodies_take_the_fast_path() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from lead_bench import lead_bodies

    usual = [
        child_body(),
        child_body(visit=[], lab=[]),
        {k: v for k, v in child_body().items() if k not in ("visit", "lab", "address2")},
        child_body(latitude=41.9, longitude=-87.67, address1=None, city=None, state=None, zip=None),
        child_body(network_id=17, patient_id=9000, zip="60622-1234"),
        child_body(expected_due_date=day(60), date_of_birth="1990-04-01"),
        child_body(lab=[LAB | {"result": 7.5}, LAB | {"result": 2}, LAB | {"result": "<3.3 ug/dL"}]),
    ]
    for body in usual:
        raw = orjson.dumps(body)
        got = fast(raw)
        assert got is not None, body
        assert got == slow(raw)
    assert fast(orjson.dumps(child_body(lab=[LAB | {"result": 7.5}]))).elevated_lab  # type: ignore[union-attr]
    assert all(fast(raw) is not None for raw in lead_bodies(50))


def test_problems_are_left_to_parse_request() -> None:
    for body in (
        child_body(gender="Q"),
        child_body(zip="6062"),
        child_body(date_of_birth=day(5)),
        child_body(latitude=41.9),
        child_body(patient_id=""),
        child_body(lab=[LAB | {"type": "CBC"}]),
        {"timestamp": child_body()["timestamp"]},
    ):
        raw = orjson.dumps(body)
        assert fast(raw) is None
        assert isinstance(slow(raw), list)  # the problems, each named, come from parse_request
    assert decode(b"{not json") is None and decode(b"[1]") is None
