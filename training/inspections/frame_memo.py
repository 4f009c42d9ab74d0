"""Values derived from a city's data frame alone, made once per frame object.

A city's data is not changed in place once read (recorded outcomes make a new frame:
ingest.with_recorded_outcomes), and the daily lists of every date read the same frame, so what
depends on the frame alone need not be derived again for each date.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

_lock = threading.Lock()  # the lists of several dates may be ranked in threads
_Derived = TypeVar("_Derived")
# (frame, purpose) pairs kept at most; an entry also goes when its frame is freed. A city's data
# version has eight (history, index match, roster order, licence terms, areas, licences, sorted dates,
# places), a few versions of a city are alive at once, and a service holds a few cities: fewer would
# derive them again day after day.
_FRAMES_KEPT = 40
_per_frame: dict[tuple[int, Any], tuple[weakref.ref[pd.DataFrame], Any]] = {}


def remembered(frame: pd.DataFrame, purpose: Any, make: Callable[[], _Derived]) -> _Derived:
    """`make()`, made once per frame object and purpose (the caller treats it as read-only). The weak
    reference tells a frame from a later one that got the same id after it was freed, and drops the
    entry when the frame is."""
    key = (id(frame), purpose)
    with _lock:
        entry = _per_frame.get(key)
    if entry is not None and entry[0]() is frame:
        derived: _Derived = entry[1]
        return derived
    derived = make()

    def forget(gone: weakref.ref[pd.DataFrame]) -> None:
        # Runs when the frame is freed, maybe inside the lock's holder (the collector): no lock here.
        if _per_frame.get(key, (None, None))[0] is gone:
            _per_frame.pop(key, None)

    with _lock:
        _per_frame.pop(key, None)
        while len(_per_frame) >= _FRAMES_KEPT:
            _per_frame.pop(next(iter(_per_frame)))
        _per_frame[key] = (weakref.ref(frame, forget), derived)
    return derived
