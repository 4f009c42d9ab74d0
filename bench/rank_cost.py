"""Benchmark: the CPU one new date's daily list costs to rank (Chicago, every establishment in scope),
for this checkout or another one, so that two versions of the code can be compared in turns.

    .venv/bin/python bench/rank_cost.py [CHECKOUT] [--dates 8]

CHECKOUT (default: this repository) is a directory holding the `app` and `training` packages to
measure, e.g. a `git worktree add /tmp/old <commit>`; it is put first on the import path. Measured:
process CPU time of `DailyLists._rank` plus reading the first 100 rows (the default list: rows are
built when read, so a ranked day alone would flatter) for each of --dates consecutive new dates
after one warm-up date (the city's data loaded, the collector's view frozen as the server's is,
start-up's background work done), median and minimum. RANK_COST_EACH=1 prints each date's figure on stderr.
Also the CPU to encode a ranked day as a list process sends it and to decode it as the server reads it
(outside the figure above).
--parts also times two parts of it (process CPU, totals over the measured dates divided by their
number): the k-nearest queries (every `cKDTree` the neighbourhood features build, and its k-nearest
queries; a tree built for the radius counts of places the index lacks is counted with them) and the
radius index's counts (`RadiusIndex.count`); the wrappers add a few microseconds a call.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

FIRST_DATE = date(2014, 8, 1)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--dates", type=int, default=8)
    parser.add_argument("--parts", action="store_true", help="also time the k-nearest queries and counts")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.checkout).resolve()))
    os.environ["CIVICRISK_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/rank.sqlite3"
    os.environ["CIVICRISK_DAILY_PRECOMPUTE"] = "false"
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app()
    with TestClient(app):
        # Process CPU counts every thread: start-up's background work (the lead engine) first ends.
        for thread in threading.enumerate():
            if thread.name == "lead-warm-up":
                thread.join()
        lists = app.state.daily_lists
        data, model = lists.city_data("chicago"), lists.model_for("chicago")
        lists._rank(data, model, FIRST_DATE)  # warm-up: anything built once per city's data
        gc.freeze()
        parts = _timed_parts() if args.parts else None
        seconds, encoding = [], []
        for offset in range(1, args.dates + 1):
            started = time.process_time()
            rows = lists._rank(data, model, FIRST_DATE + timedelta(days=offset))
            rows[:100]
            seconds.append(time.process_time() - started)
            if os.environ.get("RANK_COST_EACH"):
                print(f"{offset}: {seconds[-1] * 1000:.0f} ms", file=sys.stderr)
            started = time.process_time()
            sent = rows.encode()  # the columns, not the rows built above
            encoded = time.process_time()
            type(rows).decode(sent)
            encoding.append((encoded - started, time.process_time() - encoded))
    load = os.getloadavg()[0]
    print(
        f"{args.checkout}: ranking a new date: median {statistics.median(seconds) * 1000:.0f} ms CPU, "
        f"min {min(seconds) * 1000:.0f} ms ({args.dates} dates; load average {load:.2f})"
    )
    # A list process also encodes the ranked day (its time) and the server decodes it (the server's GIL).
    encode_ms = statistics.median(each[0] for each in encoding) * 1000
    decode_ms = statistics.median(each[1] for each in encoding) * 1000
    print(f"sending a ranked day: encoding {encode_ms:.1f} ms CPU, decoding {decode_ms:.1f} ms (medians)")
    if parts is not None:
        each = {name: f"{total / args.dates * 1000:.1f} ms" for name, total in parts.items()}
        print(f"of which, a date: k-nearest queries {each['nearest']}, radius index counts {each['counts']}")


def _timed_parts() -> dict[str, float]:
    """Wrap the two parts in the modules that call them; their CPU seconds accumulate in the dict."""
    from scipy.spatial import cKDTree

    import training.inspections.features.neighbourhood as neighbourhood
    from training.inspections.features.radius_index import RadiusIndex

    totals = {"nearest": 0.0, "counts": 0.0}

    class TimedTree:
        def __init__(self, points: object) -> None:
            started = time.process_time()
            self.tree = cKDTree(points)
            totals["nearest"] += time.process_time() - started

        def query(self, places: object, k: int) -> object:
            started = time.process_time()
            found = self.tree.query(places, k=k)
            totals["nearest"] += time.process_time() - started
            return found

        def __getattr__(self, name: str) -> object:  # radius queries on trees: not the k-nearest part
            return getattr(self.tree, name)

    counted = RadiusIndex.count

    def timed_count(self: RadiusIndex, *args: object) -> object:
        started = time.process_time()
        result = counted(self, *args)
        totals["counts"] += time.process_time() - started
        return result

    neighbourhood.cKDTree = TimedTree  # type: ignore[misc]
    RadiusIndex.count = timed_count  # type: ignore[method-assign,assignment]
    return totals


if __name__ == "__main__":
    main()
