"""Tomorrow's lists computed ahead: asks coalesce, and runs start at least the interval apart."""

from __future__ import annotations

import time

from app.inspections.precompute import ListsAhead


def test_asks_during_the_interval_coalesce_into_one_run_after_it() -> None:
    starts: list[float] = []

    def precompute() -> None:
        starts.append(time.monotonic())

    ahead = ListsAhead(precompute, min_interval=0.6)
    ahead.soon()
    assert ahead.wait_for_runs(1, timeout=10)
    for _ in range(20):  # a burst of outcome posts
        ahead.soon()
        time.sleep(0.01)
    assert ahead.wait_for_runs(2, timeout=10)
    time.sleep(0.8)  # no further ask: no further run
    ahead.stop()
    assert ahead.runs == 2
    assert starts[1] - starts[0] >= 0.6


def test_stop_ends_a_wait_for_the_interval() -> None:
    ahead = ListsAhead(lambda: None, min_interval=600)
    ahead.soon()
    assert ahead.wait_for_runs(1, timeout=10)
    ahead.soon()  # would wait ten minutes
    began = time.monotonic()
    ahead.stop()
    assert ahead._thread is not None
    ahead._thread.join(timeout=10)
    assert not ahead._thread.is_alive() and time.monotonic() - began < 10
    assert ahead.runs == 1
