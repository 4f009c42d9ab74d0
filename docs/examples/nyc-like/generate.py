"""Write a MADE-UP restaurant-inspection file in the row-per-violation layout that New York City's
DOHMH open data (and many other portals) publish: one row per violation, no inspection id, a per-row
CRITICAL FLAG, violation codes like `04L`, a numeric SCORE (lower is better) with grades A/B/C,
re-inspections, `01/01/1900` placeholder dates for places not yet inspected, and the establishment id
(CAMIS) repeated on every row. Every name, place and number here is invented by a seeded generator;
nothing is real data.

    python docs/examples/nyc-like/generate.py docs/examples/nyc-like/inspections.csv

The file goes beside `city.toml`, which then trains, evaluates and serves with no code:
    civicrisk train --city docs/examples/nyc-like/city.toml
"""

from __future__ import annotations

import argparse
import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

COLUMNS = (
    "CAMIS", "DBA", "BORO", "BUILDING", "STREET", "ZIPCODE", "PHONE", "CUISINE DESCRIPTION",
    "INSPECTION DATE", "ACTION", "VIOLATION CODE", "VIOLATION DESCRIPTION", "CRITICAL FLAG", "SCORE",
    "GRADE", "GRADE DATE", "RECORD DATE", "INSPECTION TYPE", "Latitude", "Longitude",
)  # fmt: skip
BOROUGHS = {  # name: (latitude, longitude, first ZIP code)
    "Manhattan": (40.7831, -73.9712, 10001),
    "Brooklyn": (40.6782, -73.9442, 11201),
    "Queens": (40.7282, -73.7949, 11354),
    "Bronx": (40.8448, -73.8648, 10451),
    "Staten Island": (40.5795, -74.1502, 10301),
}
CUISINES = ("American", "Chinese", "Pizza", "Italian", "Mexican", "Coffee/Tea", "Bakery", "Caribbean")
CRITICAL = {
    "02B": "Hot food not held at 140F",
    "04L": "Evidence of mice",
    "04M": "Live roaches",
    "04N": "Filth flies",
    "06C": "Food not protected",
    "06D": "Food contact surface not sanitized",
}
NOT_CRITICAL = {
    "08A": "Not vermin proof",
    "10B": "Plumbing not maintained",
    "10F": "Surface not cleanable",
    "09C": "Thermometer missing",
    "20-06": "Calorie labelling missing",
}
INITIAL = "Cycle Inspection / Initial Inspection"
REINSPECTION = "Cycle Inspection / Re-inspection"
ADMINISTRATIVE = "Administrative Miscellaneous / Initial Inspection"
CITED = "Violations were cited in the following area(s)."
CLEAN = "No violations were recorded at the time of this inspection."
CLOSED = "Establishment Closed by DOHMH. Violations were cited in the following area(s)."
PLACEHOLDER = "01/01/1900"
START, END = date(2021, 1, 4), date(2024, 6, 28)


def _grade(score: int, kind: str) -> str:
    if score <= 13:
        return "A"
    if kind == INITIAL:
        return ""  # NYC grades a B or C only after the re-inspection
    return "B" if score <= 27 else "C"


def _us(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def generate(path: Path, establishments: int = 320, seed: int = 2024) -> int:
    """Write the file; returns its number of rows."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for number in range(establishments):
        camis = str(40_000_000 + number * 37)
        borough = list(BOROUGHS)[number % len(BOROUGHS)]
        latitude, longitude, first_zip = BOROUGHS[borough]
        place = {
            "CAMIS": camis,
            "DBA": f"MADE-UP EATERY {number:03d}",
            "BORO": borough,
            "BUILDING": str(int(rng.integers(1, 999))),
            "STREET": f"{int(rng.integers(1, 120))} STREET",
            "ZIPCODE": str(first_zip + int(rng.integers(0, 20))),
            "PHONE": f"555{number:07d}",
            "CUISINE DESCRIPTION": CUISINES[int(rng.integers(0, len(CUISINES)))],
            "Latitude": f"{latitude + rng.normal(0, 0.02):.6f}",
            "Longitude": f"{longitude + rng.normal(0, 0.02):.6f}",
        }
        if number % 40 == 39:  # a new place not yet inspected: the portal's placeholder row
            rows.append(place | {"INSPECTION DATE": PLACEHOLDER, "RECORD DATE": _us(END)})
            continue
        propensity = float(rng.beta(1.2, 3.0))  # a place's own standards persist between visits
        day = START + timedelta(days=int(rng.integers(0, 200)))
        while day < END:
            score = _inspect(rows, place, day, INITIAL, propensity, rng)
            if score >= 14 and day + timedelta(days=30) < END:
                _inspect(rows, place, day + timedelta(days=int(rng.integers(7, 30))), REINSPECTION,
                         propensity * 0.6, rng)  # fmt: skip
            if rng.random() < 0.05:  # a same-day administrative visit: no score, its own inspection
                rows.append(place | {"INSPECTION DATE": _us(day), "INSPECTION TYPE": ADMINISTRATIVE,
                                     "ACTION": CLEAN, "CRITICAL FLAG": "Not Applicable"})  # fmt: skip
            day += timedelta(days=int(rng.integers(150, 330) if score <= 13 else rng.integers(70, 160)))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in COLUMNS})
    return len(rows)


def _inspect(
    rows: list[dict[str, object]],
    place: dict[str, str],
    day: date,
    kind: str,
    propensity: float,
    rng: np.random.Generator,
) -> int:
    """Append one inspection's rows (one per violation, or one blank row); returns its score."""
    critical = int(rng.poisson(4.5 * propensity))
    minor = int(rng.poisson(1.0 + 1.5 * propensity))
    cited = [(code, CRITICAL[code], "Critical") for code in rng.choice(list(CRITICAL), critical)]
    cited += [(code, NOT_CRITICAL[code], "Not Critical") for code in rng.choice(list(NOT_CRITICAL), minor)]
    score = sum(
        int(rng.integers(5, 10)) if flag == "Critical" else int(rng.integers(2, 4)) for *_, flag in cited
    )
    grade = _grade(score, kind)
    action = CLEAN if not cited else (CLOSED if score >= 45 else CITED)
    common = place | {
        "INSPECTION DATE": _us(day),
        "INSPECTION TYPE": kind,
        "ACTION": action,
        "SCORE": str(score),
        "GRADE": grade,
        "GRADE DATE": _us(day) if grade else "",
        "RECORD DATE": _us(END),
    }
    if not cited:
        rows.append(common | {"CRITICAL FLAG": "Not Applicable"})
    for code, description, flag in cited:
        rows.append(
            common | {"VIOLATION CODE": code, "VIOLATION DESCRIPTION": description, "CRITICAL FLAG": flag}
        )
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="CSV to write (put it beside city.toml as inspections.csv)")
    parser.add_argument("--establishments", type=int, default=320)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    print(f"wrote {generate(args.out, args.establishments, args.seed)} made-up rows to {args.out}")


if __name__ == "__main__":
    main()
