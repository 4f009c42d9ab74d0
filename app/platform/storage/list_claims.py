"""Daily list claims as stored (table `daily_list_claims`): the statements `Repository` runs so that
one process of all the workers and replicas sharing the database computes each daily list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.platform.storage.partner_keys import dialect_insert, utc
from app.platform.storage.tables import list_claims


@dataclass(frozen=True)
class ListKey:
    """What a list is computed from: `sha256` identifies it; the rest is for people reading the table."""

    sha256: str
    city: str
    list_date: date
    model_version: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """The state of a key's claim as one process found it: its own (`mine`: compute the list), stored
    (`list_id`: read that list), or another live process's (`holder`: wait for it)."""

    mine: bool
    list_id: int | None
    holder: str
    claimed_at: datetime
    taken_over: bool = False


def take(connection: sa.Connection, key: ListKey, holder: str, stale_after: float) -> Claim | None:
    """Claim `key` for `holder`, or report who has it. None: the row vanished meanwhile (its holder
    released it after a failure); ask again."""
    now = datetime.now(UTC)
    # Read first: most keys asked for are stored lists, and a read takes no write lock.
    found = _claim_of(connection, key.sha256)
    if found is None:
        inserted = connection.execute(
            dialect_insert(connection, list_claims)
            .values(
                key_sha256=key.sha256,
                city=key.city,
                list_date=key.list_date,
                model_version=key.model_version,
                parameters=key.parameters,
                holder=holder,
                claimed_at=now,
            )
            .on_conflict_do_nothing()
            .returning(list_claims.c.key_sha256)
        ).first()
        if inserted is not None:
            return Claim(mine=True, list_id=None, holder=holder, claimed_at=now)
        found = _claim_of(connection, key.sha256)
        if found is None:
            return None
    claimed_at = utc(found.claimed_at)
    if found.list_id is not None:
        return Claim(mine=False, list_id=int(found.list_id), holder=found.holder, claimed_at=claimed_at)
    if claimed_at > now - timedelta(seconds=stale_after):
        return Claim(mine=False, list_id=None, holder=found.holder, claimed_at=claimed_at)
    # Stale: its holder died (or hangs) without storing the list. Take it over, unless another
    # process did so first (the row is no longer the one read).
    taken = connection.execute(
        list_claims.update()
        .where(
            list_claims.c.key_sha256 == key.sha256,
            list_claims.c.holder == found.holder,
            list_claims.c.claimed_at == found.claimed_at,
            list_claims.c.list_id.is_(None),
        )
        .values(holder=holder, claimed_at=now)
    )
    if taken.rowcount == 1:
        return Claim(mine=True, list_id=None, holder=holder, claimed_at=now, taken_over=True)
    return None


def _claim_of(connection: sa.Connection, key_sha256: str) -> Any:
    return connection.execute(sa.select(list_claims).where(list_claims.c.key_sha256 == key_sha256)).first()


def complete(connection: sa.Connection, key_sha256: str, list_id: int) -> None:
    """Name the stored list: every later request with this key reads it instead of computing."""
    connection.execute(
        list_claims.update()
        .where(list_claims.c.key_sha256 == key_sha256, list_claims.c.list_id.is_(None))
        .values(list_id=list_id)
    )


def release(connection: sa.Connection, key_sha256: str, holder: str) -> None:
    """Give a claim up after a failed computation, so that the next request computes at once."""
    connection.execute(
        list_claims.delete().where(
            list_claims.c.key_sha256 == key_sha256,
            list_claims.c.holder == holder,
            list_claims.c.list_id.is_(None),
        )
    )
