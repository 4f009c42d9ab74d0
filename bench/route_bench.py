"""Benchmark: routes for a team (issue #23) against splitting the ranked list in rank order.

    .venv/bin/python bench/route_bench.py [--city chicago] [--dates 2014-08-30,2014-06-02,2013-11-15]

For each date and team size (inspectors N × stops per inspector K), the top N·K rows of the city's
daily list are split three ways and measured with the same straight-line (great-circle) distance:

- rank order: the ranked list dealt out in turn (rank 1 to inspector 1, rank 2 to inspector 2, ...),
  each inspector visiting their stops in rank order: the riskiest first, geography ignored;
- routes, 1 wave: compact groups, each a short path from its riskiest stop (NN + 2-opt);
- routes, 2 waves (the service's default): the same groups, the riskier half of each visited first.

Reported: the total length of all routes (km), and the mean list rank of each route's first five
stops (averaged over routes): the cost of geography in risk. Lengths are straight lines between
stops: no road network offline. Rows without coordinates are left out of every split alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.inspections.cities import CityStore  # noqa: E402
from app.inspections.daily import DailyLists, DailyQuery  # noqa: E402
from app.inspections.team_routes import Place, compact_groups, order_route, path_km  # noqa: E402
from app.platform.registry import ModelRegistry  # noqa: E402
from app.platform.settings import Settings  # noqa: E402
from app.platform.storage.repository import Repository  # noqa: E402

TEAMS = ((4, 10), (8, 10), (5, 20), (10, 15))
FIRST = 5


def first_ranks(places: list[Place], routes: list[list[int]]) -> float:
    return statistics.fmean(statistics.fmean(places[i].rank for i in route[:FIRST]) for route in routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", default="chicago")
    parser.add_argument("--dates", default="2014-08-30,2014-06-02,2013-11-15")
    args = parser.parse_args()
    settings = Settings()
    registry = ModelRegistry(settings.models_dir, None)
    registry.reload()
    with tempfile.TemporaryDirectory() as folder:
        repository = Repository.open(f"sqlite:///{folder}/bench.sqlite3")
        lists = DailyLists(CityStore(settings.data_dir), registry, lambda: repository)
        print("| date | N × K | stops | rank order km | routes (1 wave) km | routes (2 waves) km "
              "| first-5 mean rank: rank order / 1 wave / 2 waves | plan time |")  # fmt: skip
        print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |")
        for day in args.dates.split(","):
            for inspectors, per_inspector in TEAMS:
                query = DailyQuery(args.city, date.fromisoformat(day), inspectors * per_inspector)
                rows = lists.issue(query).rows
                places = [
                    Place(row["rank"], row["latitude"], row["longitude"])
                    for row in rows
                    if row["latitude"] is not None and row["longitude"] is not None
                ]
                by_rank = sorted(range(len(places)), key=lambda i: places[i].rank)
                dealt = [by_rank[k::inspectors] for k in range(inspectors)]
                started = time.perf_counter()
                groups = compact_groups(places, inspectors)
                two = [order_route(places, group, waves=2) for group in groups if group]
                seconds = time.perf_counter() - started
                one = [order_route(places, group, waves=1) for group in groups if group]
                lengths = [sum(path_km(places, r) for r in split) for split in (dealt, one, two)]
                firsts = [first_ranks(places, split) for split in (dealt, one, two)]
                print(
                    f"| {day} | {inspectors} × {per_inspector} | {len(places)} | {lengths[0]:.0f} "
                    f"| {lengths[1]:.0f} ({lengths[1] / lengths[0]:.0%}) | {lengths[2]:.0f} "
                    f"({lengths[2] / lengths[0]:.0%}) | {firsts[0]:.1f} / {firsts[1]:.1f} / {firsts[2]:.1f} "
                    f"| {seconds * 1000:.0f} ms |"
                )


if __name__ == "__main__":
    main()
