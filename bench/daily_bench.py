"""Benchmark: the full Chicago daily list (every in-scope establishment), in-process over ASGI.

    .venv/bin/python bench/daily_bench.py [--repeat 5]

Floor: GET /health/live through the same client in the same run. Measured: the first list (loads the
city's files: cold), a list for a new date each time (roster, features, scores and reasons computed:
warm), and the same date again (ranked roster cached; filter and store only). Each list stores all
rows in a fresh SQLite file, as the service does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.main import create_app  # noqa: E402
from app.platform.settings import Settings  # noqa: E402

URL = "/v1/inspections/chicago/daily"


def timed(client: TestClient, url: str, params: dict[str, str] | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    rows = len(response.json().get("rows", [])) if url == URL else 0
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(database_url=f"sqlite:///{scratch}/bench.sqlite3", access_log=False)
        with TestClient(create_app(settings)) as client:
            floor = statistics.median(timed(client, "/health/live")[0] for _ in range(50))
            cold, rows = timed(client, URL, {"date": "2014-08-30", "limit": "10000"})
            dates = [f"2014-08-{day:02d}" for day in range(1, 1 + args.repeat)]
            warm = [timed(client, URL, {"date": day, "limit": "10000"})[0] for day in dates]
            cached = [
                timed(client, URL, {"date": "2014-08-30", "limit": "10000"})[0] for _ in range(args.repeat)
            ]
    print(f"rows per list: {rows}")
    print("| run | median | ratio to floor |")
    print("|---|---|---|")
    print(f"| floor: GET /health/live | {floor * 1000:.2f} ms | 1 |")
    print(f"| cold: first list (loads the city's files) | {cold:.2f} s | {cold / floor:,.0f} |")
    median_warm = statistics.median(warm)
    print(
        f"| warm, new date each time (roster computed) | {median_warm:.2f} s | {median_warm / floor:,.0f} |"
    )
    median_cached = statistics.median(cached)
    ratio = median_cached / floor
    print(f"| warm, same date again (ranked roster cached) | {median_cached:.2f} s | {ratio:,.0f} |")


if __name__ == "__main__":
    main()
