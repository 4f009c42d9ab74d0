"""Benchmark: what grouped reasons cost a daily list (issue #23), for the code in REPO.

    .venv/bin/python bench/reasons_cost.py [REPO]

REPO defaults to this checkout; to compare with the code before issue #23:
`git archive 1bef845 | tar -x -C /tmp/before && .venv/bin/python bench/reasons_cost.py /tmp/before`.
Chicago in-process (SQLite in a temporary folder): a cold date first, the heap then frozen as the
server does after start-up (app.platform.heap.settle_heap), then six new dates ranked
(`DailyLists.ranked_day`), then `DailyLists.issue` five times per limit on one ranked day (the first
issue of a day words its rows; the next ones reuse them).
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.inspections.cities import CityStore  # noqa: E402
from app.inspections.daily import DailyLists, DailyQuery  # noqa: E402
from app.platform.registry import ModelRegistry  # noqa: E402
from app.platform.storage.repository import Repository  # noqa: E402


def main() -> None:
    registry = ModelRegistry(REPO / "models", None)
    registry.reload()
    with tempfile.TemporaryDirectory() as folder:
        repository = Repository.open(f"sqlite:///{folder}/bench.sqlite3")
        lists = DailyLists(CityStore(REPO / "data" / "sample"), registry, lambda: repository)
        lists.ranked_day("chicago", date(2014, 8, 1))  # cold: loads the city
        gc.collect()
        gc.freeze()
        times = []
        for k in range(6):
            started = time.perf_counter()
            lists.ranked_day("chicago", date(2014, 8, 2) + timedelta(days=k))
            times.append(time.perf_counter() - started)
        print(f"{REPO}: new date ranked, median of 6: {statistics.median(times):.2f} s")
        day = date(2014, 8, 30)
        lists.ranked_day("chicago", day)
        for limit in (100, 10_000):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                lists.issue(DailyQuery("chicago", day, limit))
                times.append(time.perf_counter() - started)
            print(f"issue limit={limit}: first {times[0] * 1000:.0f} ms, median of 5 "
                  f"{statistics.median(times) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
