"""Offline address resolver: a free-text street address to coordinates, from a table of known addresses.

Addresses are normalised (case, punctuation, street-type and direction words, unit numbers, a trailing
city/state/ZIP) to (house number, direction, street name, street type). Matching is exact first, then
within the same street: a number between two known numbers on the same side is interpolated, a number
near one known number takes its point, and a misspelt street name may match one close spelling.
Nothing here knows about any particular model.
"""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

DIRECTIONS = {"N": "N", "NORTH": "N", "S": "S", "SOUTH": "S", "E": "E", "EAST": "E", "W": "W", "WEST": "W"}
STREET_TYPES = {
    "AVE": "AVE", "AVENUE": "AVE", "AV": "AVE",
    "ST": "ST", "STREET": "ST",
    "BLVD": "BLVD", "BOULEVARD": "BLVD",
    "DR": "DR", "DRIVE": "DR",
    "PL": "PL", "PLACE": "PL",
    "RD": "RD", "ROAD": "RD",
    "PKWY": "PKWY", "PARKWAY": "PKWY",
    "CT": "CT", "COURT": "CT",
    "TER": "TER", "TERRACE": "TER",
    "LN": "LN", "LANE": "LN",
    "HWY": "HWY", "HIGHWAY": "HWY",
    "EXPY": "EXPY", "EXPRESSWAY": "EXPY",
    "PLZ": "PLZ", "PLAZA": "PLZ",
    "SQ": "SQ", "SQUARE": "SQ",
    "CIR": "CIR", "CIRCLE": "CIR",
}  # fmt: skip
UNIT_WORDS = r"APT|APARTMENT|UNIT|STE|SUITE|FL|FLOOR|RM|ROOM|BSMT|BASEMENT|REAR|FRNT|FRONT|BLDG|#"
# Chicago's grid puts 800 house numbers in a mile, so 200 numbers is about a quarter mile.
MAX_INTERPOLATION_GAP = 200
MAX_NEAREST_GAP = 50
FUZZY_CUTOFF = 0.85

# Compiled once: every hospital request's address meets them.
_PUNCTUATION = re.compile(r"[.']")
_UNIT = re.compile(rf"(?:^|\s)(?:{UNIT_WORDS})(?:\s|$|\d).*$")
_ZIP = re.compile(r"\s+\d{5}(?:-\d{4})?$")
_STATE = re.compile(r"\s+(?:IL|ILLINOIS)$")
_NUMBER = re.compile(r"^(\d+)[A-Z]?(?:\s*-\s*-?\d+[A-Z]?)?(?:\s+1/2)?\s+")


class AddressNotFound(Exception):
    """An address that cannot be parsed or matched to a known address."""

    def __init__(self, address: object, reason: str = "address not found") -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{reason}: {address!r}")


@dataclass(frozen=True)
class ParsedAddress:
    number: int
    direction: str  # "" when the address gives none
    name: str
    street_type: str  # "" when the address gives none

    @property
    def street(self) -> tuple[str, str]:
        return self.direction, self.name

    def __str__(self) -> str:
        return " ".join(
            part for part in (str(self.number), self.direction, self.name, self.street_type) if part
        )


@dataclass(frozen=True)
class Match:
    latitude: float
    longitude: float
    matched: str  # the known address (or street and number range) the point comes from
    method: str  # exact | interpolated | nearest, prefixed "fuzzy street, " when the name was corrected


def normalised_line(text: str) -> str:
    """The address line in capitals, without punctuation, unit, ZIP code or state, single-spaced."""
    line = text.upper().split(",")[0] if "," in text else text.upper()
    # Each pattern runs only where it could match (an address is resolved on every hospital request):
    # the results are those of running them all (tests/training/lead_risk/test_address.py).
    if "." in line or "'" in line:
        line = _PUNCTUATION.sub("", line)
    line = " ".join(line.replace("#", " # ").split())  # runs of whitespace to one space, trimmed
    line = _UNIT.sub("", line).strip()
    if line[-1:].isdigit():
        line = _ZIP.sub("", line)
    if line.endswith(("IL", "ILLINOIS")):
        line = _STATE.sub("", line)
    return line


def parse_address(text: object) -> ParsedAddress | None:
    """Normalise a one-line street address; None if it has no house number and street name."""
    if not isinstance(text, str):
        return None
    line = normalised_line(text)
    number_match = _NUMBER.match(line)
    if not number_match:
        return None
    tokens = line[number_match.end() :].split()
    if tokens and tokens[-1] == "CHICAGO" and len(tokens) > 2 and tokens[-2] in STREET_TYPES:
        tokens = tokens[:-1]
    street_type = ""
    if len(tokens) > 1 and tokens[-1] in STREET_TYPES:
        street_type = STREET_TYPES[tokens.pop()]
    direction = ""
    # "1600 NORTH AVE" names a street; the word is a direction only if a name follows it.
    if len(tokens) > 1 and tokens[0] in DIRECTIONS:
        direction = DIRECTIONS[tokens.pop(0)]
    if not tokens:
        return None
    return ParsedAddress(int(number_match.group(1)), direction, " ".join(tokens), street_type)


class _Street:
    """Known house numbers on one street (direction + name), sorted, with their coordinates."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, str], tuple[float, float, str]] = {}
        self.numbers: list[int] = []
        self.points: list[tuple[float, float, str]] = []
        self.index: dict[int, int] = {}
        # Per parity (even, odd): positions in `numbers` and their house numbers, built once so a
        # lookup per request is a bisection, not a scan of the street.
        self.sides: tuple[tuple[list[int], list[int]], tuple[list[int], list[int]]] = (([], []), ([], []))

    def freeze(self) -> None:
        best: dict[int, tuple[float, float, str]] = {}
        for (number, _), point in sorted(self.entries.items()):
            best.setdefault(number, point)
        self.numbers = sorted(best)
        self.points = [best[number] for number in self.numbers]
        self.index = {number: i for i, number in enumerate(self.numbers)}
        even, odd = ([i for i, n in enumerate(self.numbers) if n % 2 == parity] for parity in (0, 1))
        self.sides = ((even, [self.numbers[i] for i in even]), (odd, [self.numbers[i] for i in odd]))

    def exact(self, parsed: ParsedAddress) -> tuple[float, float, str] | None:
        point = self.entries.get((parsed.number, parsed.street_type))
        if point is None and parsed.number in self.index:
            # The table often omits the street type ("4853 S WOOD"); the number alone then matches.
            point = self.points[self.index[parsed.number]]
        return point

    def near(self, number: int) -> Match | None:
        same_side, sides = self.sides[number % 2]
        position = bisect.bisect_left(sides, number)
        below = same_side[position - 1] if position > 0 else None
        above = same_side[position] if position < len(same_side) else None
        if below is not None and above is not None:
            low, high = self.numbers[below], self.numbers[above]
            if high - low <= MAX_INTERPOLATION_GAP:
                share = (number - low) / (high - low)
                (lat_a, lon_a, name_a), (lat_b, lon_b, name_b) = self.points[below], self.points[above]
                return Match(
                    lat_a + share * (lat_b - lat_a),
                    lon_a + share * (lon_b - lon_a),
                    f"between {name_a} and {name_b}",
                    "interpolated",
                )
        candidates = [i for i in (below, above) if i is not None]
        if not candidates:
            return None
        closest = min(candidates, key=lambda i: abs(self.numbers[i] - number))
        if abs(self.numbers[closest] - number) > MAX_NEAREST_GAP:
            return None
        latitude, longitude, name = self.points[closest]
        return Match(latitude, longitude, name, "nearest")


class AddressIndex:
    """Known addresses indexed by street; built once, then each lookup is a few dictionary probes."""

    def __init__(self, addresses: pd.Series, latitude: pd.Series, longitude: pd.Series) -> None:
        self._streets: dict[tuple[str, str], _Street] = {}
        for text, lat, lon in zip(addresses, latitude, longitude, strict=True):
            parsed = parse_address(text)
            if parsed is None or not (np.isfinite(lat) and np.isfinite(lon)):
                continue
            street = self._streets.setdefault(parsed.street, _Street())
            street.entries.setdefault(
                (parsed.number, parsed.street_type), (float(lat), float(lon), str(text))
            )
        for street in self._streets.values():
            street.freeze()
        self._names_by_direction: dict[str, list[str]] = {}
        for direction, name in self._streets:
            self._names_by_direction.setdefault(direction, []).append(name)

    def __len__(self) -> int:
        return sum(len(street.entries) for street in self._streets.values())

    def points(self) -> list[tuple[float, float]]:
        """Every (latitude, longitude) an exact or nearest-number match answers with, sorted."""
        return sorted(
            {(lat, lon) for street in self._streets.values() for lat, lon, _ in street.entries.values()}
        )

    def _streets_for(self, parsed: ParsedAddress) -> list[tuple[ParsedAddress, _Street, bool]]:
        """Candidate streets: the named one, else every direction of the name, else one close spelling."""
        named = self._streets.get(parsed.street) if parsed.direction else None
        if named is not None:  # the common case, answered without building the candidate lists
            return [(parsed, named, False)]
        directions = [parsed.direction] if parsed.direction else list(self._names_by_direction)
        found = [(d, parsed.name) for d in directions if (d, parsed.name) in self._streets]
        fuzzy = False
        if not found:
            for direction in directions:
                close = difflib.get_close_matches(
                    parsed.name, self._names_by_direction.get(direction, []), n=1, cutoff=FUZZY_CUTOFF
                )
                found += [(direction, name) for name in close]
            fuzzy = True
        return [
            (ParsedAddress(parsed.number, d, n, parsed.street_type), self._streets[(d, n)], fuzzy)
            for d, n in found
        ]

    def resolve(self, text: object) -> Match:
        """Coordinates of an address; raises AddressNotFound (unparseable, unknown or ambiguous)."""
        parsed = parse_address(text)
        if parsed is None:
            raise AddressNotFound(text, "address not understood (expected house number and street)")
        candidates = self._streets_for(parsed)
        for step in ("exact", "near"):
            matches = []
            for candidate, street, fuzzy in candidates:
                prefix = "fuzzy street, " if fuzzy else ""
                if step == "exact":
                    point = street.exact(candidate)
                    if point is not None:
                        matches.append(Match(point[0], point[1], point[2], prefix + "exact"))
                else:
                    near = street.near(candidate.number)
                    if near is not None:
                        matches.append(
                            Match(near.latitude, near.longitude, near.matched, prefix + near.method)
                            if fuzzy
                            else near
                        )
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise AddressNotFound(text, "address not found (ambiguous: give the street direction)")
        raise AddressNotFound(text)

    def resolve_many(self, texts: pd.Series) -> pd.DataFrame:
        """latitude, longitude, matched, method per input (NaN / "address not found: ..." when unmatched)."""
        rows = []
        for text in texts:
            try:
                match = self.resolve(text)
                rows.append((match.latitude, match.longitude, match.matched, match.method))
            except AddressNotFound as error:
                rows.append((np.nan, np.nan, "", error.reason))
        return pd.DataFrame(rows, columns=["latitude", "longitude", "matched", "method"], index=texts.index)


@lru_cache(maxsize=4)
def load_address_index(
    path: Path, address: str = "address", latitude: str = "latitude", longitude: str = "longitude"
) -> AddressIndex:
    """Build (once per argument set) the resolver over a CSV of known addresses and coordinates."""
    table = pd.read_csv(path, usecols=[address, latitude, longitude], dtype={address: "string"})
    return AddressIndex(table[address], table[latitude], table[longitude])
