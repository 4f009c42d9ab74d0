# Types of the compiled module app/services/_linear_rows.pyx (see there).
from collections.abc import Callable, Sequence
from typing import Any

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
def split_rows(
    rows: list[tuple[Any, ...]], numeric: Any, category_count: int, missing_category: str
) -> tuple[list[str], ...]: ...
def answers(
    scores: list[float],
    labels: list[str],
    top: int,
    features: list[int],
    contributions: list[float],
    numbers: list[Any],
    categorical: Sequence[Sequence[str]],
    category_of: dict[int, int],
    names: Sequence[str],
    reason: Callable[[str, int, float, Any], dict[str, Any]],
) -> list[dict[str, Any]]: ...
