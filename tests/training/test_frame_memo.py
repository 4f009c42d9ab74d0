"""`remembered`: derived once per frame object, never handed to another frame (even one that got a
freed frame's id), and forgotten with the frame."""

from __future__ import annotations

import gc
import weakref

import pandas as pd

from training.inspections import frame_memo
from training.inspections.frame_memo import remembered


def _counting() -> tuple[list[int], object]:
    calls: list[int] = []

    def make() -> object:
        calls.append(1)
        return object()

    return calls, make


def test_made_once_per_frame_and_purpose() -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    calls, make = _counting()
    first = remembered(frame, "test purpose", make)  # type: ignore[arg-type]
    assert remembered(frame, "test purpose", make) is first  # type: ignore[arg-type]
    assert len(calls) == 1
    remembered(frame, "another purpose", make)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_an_equal_frame_is_another_frame() -> None:
    calls, make = _counting()
    one, two = pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [1]})
    assert remembered(one, "equal", make) is not remembered(two, "equal", make)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_a_freed_frame_is_forgotten() -> None:
    _, make = _counting()
    frame = pd.DataFrame({"a": [1]})
    old_id = id(frame)
    remembered(frame, "freed", make)  # type: ignore[arg-type]
    assert (old_id, "freed") in frame_memo._per_frame
    del frame
    gc.collect()
    assert (old_id, "freed") not in frame_memo._per_frame


def test_an_entry_left_under_a_reused_id_is_not_handed_to_the_new_frame() -> None:
    frame = pd.DataFrame({"a": [1]})
    gone = weakref.ref(pd.DataFrame({"a": [1]}))  # its frame is freed at once
    assert gone() is None
    frame_memo._per_frame[(id(frame), "reused")] = (gone, "derived from the freed frame")
    assert remembered(frame, "reused", lambda: "derived from this frame") == "derived from this frame"


def test_bounded() -> None:
    frames = [pd.DataFrame({"a": [i]}) for i in range(frame_memo._FRAMES_KEPT + 5)]
    for frame in frames:
        remembered(frame, "bounded", object)
    assert len(frame_memo._per_frame) <= frame_memo._FRAMES_KEPT
