"""Reads for a model's performance (app/inspections/performance.py): the scores lists gave each
establishment, and the outcomes posted for a city, within dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from app.platform.storage.tables import issued_lists, outcomes


@dataclass(frozen=True)
class ListedScore:
    """One establishment's score and tier on a list issued for `list_date`."""

    list_date: date
    model_version: str
    establishment_id: str
    score: float
    tier: str


def listed_scores(connection: sa.Connection, model_name: str, first: date, last: date) -> list[ListedScore]:
    """Every row of the lists the model issued for dates in [first, last], oldest list first."""
    query = (
        sa.select(issued_lists.c.list_date, issued_lists.c.model_version, issued_lists.c.rows)
        .where(issued_lists.c.model_name == model_name)
        .where(issued_lists.c.list_date.between(first, last))
        .order_by(issued_lists.c.list_date, issued_lists.c.id)
    )
    found = []
    for list_date, version, rows in connection.execute(query):
        found += [
            ListedScore(
                list_date, version, str(row["establishment_id"]), float(row["score"]), str(row["tier"])
            )
            for row in rows
        ]
    return found


def posted_outcomes(connection: sa.Connection, city: str, first: date, last: date) -> list[dict[str, Any]]:
    """Outcomes posted for the city's inspections dated in [first, last]."""
    query = (
        sa.select(outcomes.c.inspection_id, outcomes.c.establishment_id, outcomes.c.inspection_date)
        .where(outcomes.c.city == city)
        .where(outcomes.c.inspection_date.between(first, last))
        .order_by(outcomes.c.inspection_date, outcomes.c.inspection_id)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def newest_posted(connection: sa.Connection, city: str, excluding: tuple[str, ...] = ()) -> date | None:
    """The latest inspection date posted for `city`, leaving out outcomes with the `excluding` results."""
    condition = outcomes.c.city == city
    if excluding:
        condition = condition & outcomes.c.result.notin_(excluding)
    found = connection.execute(sa.select(sa.func.max(outcomes.c.inspection_date)).where(condition))
    newest = found.scalar()
    return None if newest is None else date.fromisoformat(str(newest)[:10])
