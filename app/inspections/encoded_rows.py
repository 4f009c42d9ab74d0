"""A ranked day's rows as a list process sends them: one JSON document per row, decoded when read.

Decoding all of Chicago's ~7,600 rows (7.4 MB) took 55–66 ms of the server's GIL per new date
(orjson, pickle and msgpack alike: the cost is building the dicts), during which no scoring request
ran. A list reads its first `limit` matching rows; splitting the payload into rows costs ~1 ms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson

Row = dict[str, Any]


class EncodedRows(Sequence[Row]):
    """Rows decoded on first read and kept. Rows are JSON objects, and orjson never writes a raw
    newline inside one, so newline-separated documents split exactly."""

    def __init__(self, encoded: list[bytes]) -> None:
        self._encoded = encoded
        self._decoded: list[Row | None] = [None] * len(encoded)

    @staticmethod
    def encode(rows: Sequence[Row]) -> bytes:
        return b"\n".join(orjson.dumps(row) for row in rows)

    @classmethod
    def decode(cls, payload: bytes) -> EncodedRows:
        return cls(payload.split(b"\n") if payload else [])

    def __len__(self) -> int:
        return len(self._encoded)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        row = self._decoded[index]
        if row is None:  # two threads may both decode a row: equal values, either kept
            row = self._decoded[index] = orjson.loads(self._encoded[index])
        return row

    def __iter__(self) -> Iterator[Row]:
        for position in range(len(self)):
            yield self[position]
