"""A checked schema version: the database records which migrations it has, the code refuses a mismatch.

Migrations run in one transaction under a lock, so several workers starting together apply them once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from app.platform.storage.tables import (
    CONTENT_INDEX,
    issued_lists,
    metadata,
    model_set,
    outcomes,
    schema_version,
)


class SchemaError(Exception):
    """The database's schema is newer than this code understands."""


def _create_v1(connection: sa.Connection) -> None:
    for table in (issued_lists, outcomes):
        table.create(connection, checkfirst=True)


def _content_hash_v2(connection: sa.Connection) -> None:
    """Issued lists carry the sha256 of their content, unique, so a list is stored once however often
    it is asked for. (A database created at version 2 or later has both already: version 1 creates
    the tables as they are defined now.)"""
    table = issued_lists.name
    if "content_sha256" not in {column["name"] for column in sa.inspect(connection).get_columns(table)}:
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN content_sha256 VARCHAR(64)"))
    if CONTENT_INDEX not in {index["name"] for index in sa.inspect(connection).get_indexes(table)}:
        (index,) = (index for index in issued_lists.indexes if index.name == CONTENT_INDEX)
        index.create(connection)


def _model_set_v3(connection: sa.Connection) -> None:
    """The model set generation that keeps every worker and replica on the same models."""
    model_set.create(connection, checkfirst=True)


# Index i holds the migration from version i to i + 1. Append, never edit, once released.
MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (_create_v1, _content_hash_v2, _model_set_v3)
CURRENT_VERSION = len(MIGRATIONS)


def _lock(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Serialise concurrent start-ups; released at commit.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(804170001)"))


def database_version(connection: sa.Connection) -> int:
    if not sa.inspect(connection).has_table(schema_version.name):
        return 0
    found = connection.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(engine: sa.Engine) -> int:
    """Bring the database to CURRENT_VERSION; returns the version it was at."""
    with engine.begin() as connection:
        _lock(connection)
        schema_version.create(connection, checkfirst=True)
        found = database_version(connection)
        if found > CURRENT_VERSION:
            raise SchemaError(
                f"database schema is version {found}, this civicrisk understands up to {CURRENT_VERSION}"
            )
        for version in range(found, CURRENT_VERSION):
            MIGRATIONS[version](connection)
            connection.execute(
                schema_version.insert().values(version=version + 1, applied_at=datetime.now(UTC))
            )
        return found


__all__ = ["CURRENT_VERSION", "SchemaError", "metadata", "migrate"]
