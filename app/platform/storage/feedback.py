"""CDS Hooks feedback as stored (table `cds_feedback`): the statements `Repository` runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from app.platform.storage.partner_keys import dialect_insert
from app.platform.storage.tables import cds_feedback


@dataclass(frozen=True)
class CardFeedback:
    """One clinician's outcome on one card, as kept: no patient data, no time."""

    card_uuid: str
    model_name: str | None
    model_version: str | None
    tier: str
    outcome: str  # accepted | overridden
    override_reason: str | None


@dataclass(frozen=True)
class FeedbackCount:
    model_version: str | None
    tier: str
    outcome: str
    override_reason: str | None
    count: int


def insert(connection: sa.Connection, entries: Sequence[CardFeedback]) -> list[CardFeedback]:
    """Store each entry unless that card's outcome is stored already; the entries that were new."""
    added = []
    for entry in entries:
        inserted = connection.execute(
            dialect_insert(connection, cds_feedback)
            .values(
                card_uuid=entry.card_uuid,
                model_name=entry.model_name,
                model_version=entry.model_version,
                tier=entry.tier,
                outcome=entry.outcome,
                override_reason=entry.override_reason,
            )
            .on_conflict_do_nothing()
            .returning(cds_feedback.c.id)
        ).first()
        if inserted is not None:
            added.append(entry)
    return added


def counts(connection: sa.Connection, model_name: str) -> list[FeedbackCount]:
    columns = (cds_feedback.c.model_version, cds_feedback.c.tier, cds_feedback.c.outcome,
               cds_feedback.c.override_reason)  # fmt: skip
    rows = connection.execute(
        sa.select(*columns, sa.func.count()).where(cds_feedback.c.model_name == model_name).group_by(*columns)
    )
    return [FeedbackCount(*row) for row in rows]
