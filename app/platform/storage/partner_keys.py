"""Partner keys as stored (tables `partner_keys` and `partner_keys_file_imports`): the records and
the statements `Repository` runs for them. Only sha256 digests are stored, never a key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.platform.storage.tables import keys_file_imports, partner_keys


@dataclass(frozen=True)
class StoredKey:
    """One partner key: its id (the middle of `ck_<id>_<secret>`), who holds it, what it may call."""

    id: str
    partner: str
    scopes: tuple[str, ...]
    sha256: str  # hex
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class KeysFileImport:
    """What importing a keys file did: `keys_added` is None when this content was imported before
    (at `imported_at`, from `path`), and nothing was changed."""

    path: str
    imported_at: datetime
    keys_added: int | None


def dialect_insert(connection: sa.Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support, in the connection's dialect."""
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_if_absent(connection: sa.Connection, key: StoredKey) -> bool:
    """Store `key` unless its id or digest is already there (then leave the stored one as it is)."""
    inserted = connection.execute(
        dialect_insert(connection, partner_keys)
        .values(
            id=key.id,
            partner=key.partner,
            scopes=",".join(key.scopes),
            sha256=key.sha256,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        .on_conflict_do_nothing()
        .returning(partner_keys.c.id)
    ).first()
    return inserted is not None


def revoke(connection: sa.Connection, key_id: str, at: datetime, sha256: str | None = None) -> None:
    """Mark a key revoked at `at`, unless it already is (the first revocation time stands)."""
    matches = (partner_keys.c.id == key_id) & partner_keys.c.revoked_at.is_(None)
    if sha256 is not None:
        matches &= partner_keys.c.sha256 == sha256
    connection.execute(partner_keys.update().where(matches).values(revoked_at=at))


def import_file(
    connection: sa.Connection, file_sha256: str, path: str, keys: Sequence[StoredKey]
) -> KeysFileImport:
    """Import a keys file's entries once per file content. The import's own record is written first:
    a second worker importing the same file at the same time waits on it (a row lock on PostgreSQL,
    the write lock on SQLite), then finds it and changes nothing. A key already stored keeps its
    state (a revocation made in the database stands); a revocation in the file is applied."""
    now = datetime.now(UTC)
    claimed = connection.execute(
        dialect_insert(connection, keys_file_imports)
        .values(file_sha256=file_sha256, path=path, imported_at=now, keys_added=0)
        .on_conflict_do_nothing()
        .returning(keys_file_imports.c.file_sha256)
    ).first()
    if claimed is None:
        before = connection.execute(
            sa.select(keys_file_imports.c.path, keys_file_imports.c.imported_at).where(
                keys_file_imports.c.file_sha256 == file_sha256
            )
        ).one()
        return KeysFileImport(before.path, utc(before.imported_at), None)
    added = 0
    for key in keys:
        added += insert_if_absent(connection, key)
        if key.revoked_at is not None:
            revoke(connection, key.id, key.revoked_at, key.sha256)
    connection.execute(
        keys_file_imports.update()
        .where(keys_file_imports.c.file_sha256 == file_sha256)
        .values(keys_added=added)
    )
    return KeysFileImport(path, now, added)


def stored_key(row: sa.Row[Any]) -> StoredKey:
    return StoredKey(
        id=row.id,
        partner=row.partner,
        scopes=tuple(scope for scope in row.scopes.split(",") if scope),
        sha256=row.sha256,
        created_at=utc(row.created_at),
        revoked_at=None if row.revoked_at is None else utc(row.revoked_at),
    )


def utc(moment: datetime) -> datetime:
    """SQLite keeps no time zone; every timestamp here was written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
