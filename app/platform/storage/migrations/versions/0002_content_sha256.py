"""The content hash of issued lists (release 0.1.0's schema version 2).

Issued lists carry the sha256 of their content, unique, so a list is stored once however often it is
asked for.

Revision ID: 0002_content_sha256
Revises: 0001_lists_and_outcomes
Create Date: 2026-12-06

A database made by 0.1.0 at its version 1 lacks the column and index; one created by
0001_lists_and_outcomes has both already, so each is added only where missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_content_sha256"
down_revision: str | Sequence[str] | None = "0001_lists_and_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ux_issued_lists_content"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "content_sha256" not in {column["name"] for column in inspector.get_columns("issued_lists")}:
        op.add_column("issued_lists", sa.Column("content_sha256", sa.String(64), nullable=True))
    if INDEX not in {index["name"] for index in inspector.get_indexes("issued_lists")}:
        op.create_index(INDEX, "issued_lists", ["content_sha256"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="issued_lists")
    with op.batch_alter_table("issued_lists") as table:
        table.drop_column("content_sha256")
