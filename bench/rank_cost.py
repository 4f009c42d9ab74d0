"""Benchmark: the CPU one new date's daily list costs to rank (Chicago, every establishment in scope),
for this checkout or another one, so that two versions of the code can be compared in turns.

    .venv/bin/python bench/rank_cost.py [CHECKOUT] [--dates 8]

CHECKOUT (default: this repository) is a directory holding the `app` and `training` packages to
measure, e.g. a `git worktree add /tmp/old <commit>`; it is put first on the import path. Measured:
process CPU time of `DailyLists._rank` plus reading the first 100 rows (the default list: rows are
built when read, so a ranked day alone would flatter) for each of --dates consecutive new dates
after one warm-up date (the city's data loaded, the collector's view frozen as the server's is,
start-up's background work done), median and minimum. RANK_COST_EACH=1 prints each date's figure on stderr.
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
        seconds = []
        for offset in range(1, args.dates + 1):
            started = time.process_time()
            rows = lists._rank(data, model, FIRST_DATE + timedelta(days=offset))
            rows[:100]
            seconds.append(time.process_time() - started)
            if os.environ.get("RANK_COST_EACH"):
                print(f"{offset}: {seconds[-1] * 1000:.0f} ms", file=sys.stderr)
    load = os.getloadavg()[0]
    print(
        f"{args.checkout}: ranking a new date: median {statistics.median(seconds) * 1000:.0f} ms CPU, "
        f"min {min(seconds) * 1000:.0f} ms ({args.dates} dates; load average {load:.2f})"
    )


if __name__ == "__main__":
    main()
