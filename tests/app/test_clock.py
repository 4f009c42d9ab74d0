"""The millisecond clock writes what datetime.isoformat writes, at every moment."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np

from app.platform.clock import MillisecondClock


def test_the_clock_writes_what_isoformat_writes() -> None:
    rng = np.random.default_rng(3)
    # Random moments over decades, moments a hair either side of a millisecond and of a second
    # (where rounding to the microsecond carries into the next one), in random order so the kept
    # second's text is often stale.
    moments = [*rng.uniform(0, 2**31, 20_000)]
    for whole in rng.integers(1_600_000_000, 1_900_000_000, 2_000).tolist():
        for offset in (0.0, 0.0009994, 0.0009996, 0.9999994, 0.9999996, 0.4995, 0.123):
            moments.append(whole + offset)
    rng.shuffle(moments)
    for sep in ("T", " "):
        clock = MillisecondClock(sep)
        for moment in moments:
            expected = datetime.fromtimestamp(moment, UTC).isoformat(sep=sep, timespec="milliseconds")
            assert clock.format(moment) == expected, moment


def test_now_is_the_time() -> None:
    clock = MillisecondClock()
    before = datetime.now(UTC)
    now = datetime.fromisoformat(clock.now())
    after = datetime.now(UTC)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= now <= after
    assert abs(time.time() - now.timestamp()) < 1
