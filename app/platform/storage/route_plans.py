"""Route plans as stored (table `route_plans`): the statements `Repository` runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from app.platform.storage.partner_keys import dialect_insert
from app.platform.storage.tables import route_plans


@dataclass(frozen=True)
class RoutePlan:
    """A daily list split into routes, as stored: `content` in the answer's shape (routes, lengths,
    the rows that could not be placed)."""

    id: int
    list_id: int
    city: str
    list_date: date
    inspectors: int
    per_inspector: int
    method: str
    content: dict[str, Any]
    created_at: datetime


def content_sha256(list_id: int, inspectors: int, per_inspector: int, method: str) -> str:
    """What a plan follows from: the same list, team and method give the same routes."""
    document = {"list": list_id, "inspectors": inspectors, "per_inspector": per_inspector, "method": method}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def store(
    connection: sa.Connection,
    list_id: int,
    city: str,
    list_date: date,
    inspectors: int,
    per_inspector: int,
    method: str,
    content: dict[str, Any],
) -> None:
    """Insert the plan unless the same one is stored (another worker may have stored it meanwhile)."""
    connection.execute(
        dialect_insert(connection, route_plans)
        .values(
            list_id=list_id,
            city=city,
            list_date=list_date,
            inspectors=inspectors,
            per_inspector=per_inspector,
            method=method,
            routes=content,
            created_at=datetime.now(UTC),
            content_sha256=content_sha256(list_id, inspectors, per_inspector, method),
        )
        .on_conflict_do_nothing()
    )


def find(
    connection: sa.Connection, plan_id: int | None = None, content: str | None = None
) -> RoutePlan | None:
    """The plan with this id, or with this content hash."""
    query = sa.select(route_plans)
    if plan_id is not None:
        query = query.where(route_plans.c.id == plan_id)
    else:
        query = query.where(route_plans.c.content_sha256 == content)
    row = connection.execute(query).first()
    if row is None:
        return None
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return RoutePlan(
        int(row.id),
        int(row.list_id),
        row.city,
        row.list_date,
        int(row.inspectors),
        int(row.per_inspector),
        row.method,
        dict(row.routes),
        created,
    )
