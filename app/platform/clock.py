"""UTC timestamps to the millisecond, as `datetime.isoformat` writes them, for lines written on every
request (the access log's `ts`, the Lead Safe answer's `timestamp`).

`datetime.now(UTC).isoformat(timespec="milliseconds")` costs ~1.8 µs; almost all of it is the date
and time of day, which change once a second. So the second's text is kept and only the
milliseconds are formatted: ~0.4 µs.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


class MillisecondClock:
    """`now()` gives e.g. "2026-12-02T01:02:03.456+00:00" (with `sep` between date and time)."""

    def __init__(self, sep: str = "T") -> None:
        self._layout = f"%Y-%m-%d{sep}%H:%M:%S"
        # (second, its text) in one tuple, so a thread never pairs one second with another's text.
        self._second: tuple[int, str] = (-1, "")

    def format(self, moment: float) -> str:
        """`moment` (seconds since the epoch, as time.time() gives), to the millisecond as datetime
        writes it: rounded to the microsecond half to even (datetime.fromtimestamp), then cut."""
        fraction, whole = math.modf(moment)
        micro = round(fraction * 1_000_000)
        second = int(whole) + (micro >= 1_000_000)
        milliseconds = (micro % 1_000_000) // 1000
        cached_second, text = self._second
        if second != cached_second:
            text = datetime.fromtimestamp(second, UTC).strftime(self._layout)
            self._second = (second, text)
        return f"{text}.{milliseconds:03d}+00:00"

    def now(self) -> str:
        return self.format(time.time())
