# Types of the compiled module app/services/_linear_rows.pyx (see there).
from collections.abc import Sequence

class RowTables:
    def __init__(
        self,
        weight: Sequence[float],
        offset: Sequence[float],
        present: Sequence[float],
        missing: Sequence[float],
        order: Sequence[int],
        lookups: tuple[dict[str, float], ...],
        defaults: Sequence[float],
    ) -> None: ...
    def contributions(
        self, values: Sequence[float | None], categorical: tuple[list[str], ...], row: int
    ) -> list[float]: ...

def largest(row: list[float], top: int) -> list[int] | None: ...
