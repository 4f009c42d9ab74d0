"""The offline address resolver: normalisation, exact and within-street matches, clear failures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.address import AddressIndex, AddressNotFound, ParsedAddress, normalised_line, parse_address
from training.lead.reference import Reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4853 S WOOD", ParsedAddress(4853, "S", "WOOD", "")),
        ("4853 South Wood Street, Apt 2, Chicago, IL 60609", ParsedAddress(4853, "S", "WOOD", "ST")),
        ("4853 s. wood st #3", ParsedAddress(4853, "S", "WOOD", "ST")),
        ("4853 S Wood St Unit 2R", ParsedAddress(4853, "S", "WOOD", "ST")),
        ("10 - 16 S WABASH AVE", ParsedAddress(10, "S", "WABASH", "AVE")),
        ("1008 1/2 W IRVING PARK RD", ParsedAddress(1008, "W", "IRVING PARK", "RD")),
        ("1600 W North Avenue Chicago IL", ParsedAddress(1600, "W", "NORTH", "AVE")),
        ("1600 NORTH AVE", ParsedAddress(1600, "", "NORTH", "AVE")),
    ],
)
def test_parse_normalises_case_types_directions_and_units(text: str, expected: ParsedAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "S WOOD ST", None, 42])
def test_parse_rejects_text_without_number_and_street(text: object) -> None:
    assert parse_address(text) is None


@pytest.fixture(scope="module")
def small_index() -> AddressIndex:
    table = pd.DataFrame(
        [
            ("4800 S WOOD", 41.8000, -87.6700),
            ("4900 S WOOD ST", 41.7980, -87.6700),
            ("4801 S WOOD ST", 41.8000, -87.6702),
            ("100 N MAIN ST", 41.9000, -87.6000),
            ("100 S MAIN ST", 41.8900, -87.6000),
        ],
        columns=["address", "latitude", "longitude"],
    )
    return AddressIndex(table["address"], table["latitude"], table["longitude"])


def test_exact_match_ignores_a_missing_street_type(small_index: AddressIndex) -> None:
    match = small_index.resolve("4800 south wood street, apt 3")
    assert (match.latitude, match.longitude, match.method) == (41.8, -87.67, "exact")
    assert match.matched == "4800 S WOOD"


def test_number_between_known_numbers_on_the_same_side_is_interpolated(small_index: AddressIndex) -> None:
    match = small_index.resolve("4850 S WOOD ST")
    assert match.method == "interpolated"
    assert match.latitude == pytest.approx(41.7990)


def test_number_near_one_known_number_takes_its_point(small_index: AddressIndex) -> None:
    match = small_index.resolve("4821 S WOOD ST")  # odd side: only 4801 is known
    assert (match.method, match.matched) == ("nearest", "4801 S WOOD ST")


def test_misspelt_street_matches_one_close_spelling(small_index: AddressIndex) -> None:
    match = small_index.resolve("4800 S WOODD ST")
    assert match.method == "fuzzy street, exact"


def test_unknown_far_or_ambiguous_addresses_are_not_found(small_index: AddressIndex) -> None:
    for text in ("1 NOWHERE LN", "9999 S WOOD ST", "hello"):
        with pytest.raises(AddressNotFound):
            small_index.resolve(text)
    with pytest.raises(AddressNotFound, match="ambiguous"):
        small_index.resolve("100 MAIN ST")  # N or S?


def test_resolve_many_reports_not_found_rows(small_index: AddressIndex) -> None:
    frame = small_index.resolve_many(pd.Series(["4800 S WOOD", "1 NOWHERE LN"]))
    assert frame["latitude"].notna().tolist() == [True, False]
    assert frame["method"].iloc[1] == "address not found"


def test_real_table_resolves_city_style_addresses(reference: Reference) -> None:
    index = reference.addresses()
    assert len(index) > 50_000
    match = index.resolve("4853 South Wood Street, Apt 2, Chicago, IL 60609")
    assert match.matched == "4853 S WOOD" and match.method == "exact"
    assert reference.geo.locate(match.latitude, match.longitude).community_area == 61  # New City


def _every_pattern(text: str) -> str:
    """The line as normalised before each pattern ran only where it could match: every substitution,
    every time (the oracle for the guarded version)."""
    import re

    from training.address import _STATE, _UNIT, _ZIP

    line = text.upper().split(",")[0] if "," in text else text.upper()
    line = re.sub(r"[.']", "", line)
    line = re.sub(r"\s+", " ", line.replace("#", " # ")).strip()
    line = _UNIT.sub("", line).strip()
    line = _ZIP.sub("", line)
    return _STATE.sub("", line)


def test_guarded_patterns_normalise_as_every_pattern_does() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    points = Path(__file__).resolve().parents[3] / "data" / "sample" / "chicago" / "address_points.csv.gz"
    table = pd.read_csv(points, usecols=["address"])["address"]
    texts = [str(t) for t in table.dropna()]
    texts += [
        "4853 s. wood st #3", "12 O'Brien St., Chicago, IL 60609", "10 W Elm\u2003St\t IL",
        "5 N State IL", "5 N STATE ILLINOIS", "60609", "1 Main St 60609-1234", "1 Main St ٦٠٦٠٩",
        "1 Main St ²", "  7  A  B  ", "1 Main St\n", "1 IL", "3 Apt", "#", "",
    ]  # fmt: skip
    for text in texts:
        assert normalised_line(text) == _every_pattern(text), text

    pieces = st.sampled_from(
        [" ", "  ", "\t", "\u2003", ".", "'", "#", ",", "1", "60609", "-1234", "IL", "ILLINOIS", "APT",
         "UNIT", "2R", "N", "WOOD", "ST", "٦", "²", "\n"]
    )  # fmt: skip

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(st.one_of(pieces, st.text(max_size=3)), max_size=10).map("".join))
    def same(text: str) -> None:
        assert normalised_line(text) == _every_pattern(text)

    same()
