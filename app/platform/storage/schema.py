"""Schema migrations with Alembic, safe for rolling upgrades.

The revisions are modules in `migrations/versions/`; `migrate(engine)` brings a database to the newest
one this code has (`alembic upgrade head`, run here with a programmatic config: no alembic.ini). It
runs at start-up (`Repository.open`) and as `civicrisk db upgrade`, in one transaction under a
PostgreSQL advisory lock, so several workers starting together migrate once and the others wait.

The rule that makes rolling upgrades work: **migrations are additive**. A revision adds tables, or
columns that are nullable or have a default, and indexes; it drops or renames nothing and makes
nothing newly required. Replicas of the previous release keep reading and writing the new schema
while the rollout replaces them. What is no longer needed is dropped by a later release, once no
replica of the release that used it is running (so at least one release later).

That is why a database at a revision this code does not know (the code was rolled back after a newer
release migrated) is not refused: a warning is logged and the service works on, provided every table
and column this code uses is there. Only then (a release broke the rule) does `SchemaError` stop it.

A database made by release 0.1.0 has no Alembic revision but rows in `civicrisk_schema_version`: its
version 1 is stamped as revision 0001 (and 0002 then adds the content hash), version 2 as 0002. That
table is left as it is, so a 0.1.0 replica starting during the rollout still finds version 2.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError

from app.platform.storage.tables import metadata

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LEGACY_TABLE = "civicrisk_schema_version"  # release 0.1.0's record of its schema version
# Release 0.1.0's schema versions and the revisions that match them.
LEGACY_REVISIONS = {1: "0001_lists_and_outcomes", 2: "0002_content_sha256"}
LOCK_KEY = 804170001  # the advisory lock 0.1.0 took too: old and new replicas migrate one at a time


class SchemaError(Exception):
    """The database's schema cannot be used by this code."""


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for civicrisk's migrations; `url` only for commands that connect
    themselves (`migrate` passes its connection instead)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s")  # a revision file is named by its id
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this code has."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no revisions under migrations/versions"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The database's revision; None for a database never migrated by Alembic."""
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def migrate(engine: sa.Engine) -> str | None:
    """Bring the database to the head revision; returns the revision it was at (None: a new one)."""
    with _sqlite_file_lock(engine):
        return _migrate(engine)


@contextmanager
def _sqlite_file_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialise processes migrating one SQLite file. SQLite's own locking cannot: two connections
    that both read the schema and then write get "database is locked" at once, busy timeout or not
    (SQLite refuses to wait where waiting could deadlock). A lock on a file beside the database does."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl  # POSIX; the service runs on Linux

    with Path(f"{database}.migrate-lock").open("a") as handle:  # its folder exists: see the engine
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _migrate(engine: sa.Engine) -> str | None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        _lock(connection)
        found = current_revision(connection) or _stamp_legacy(connection, config)
        if found is not None and not _known(config, found):
            _check_usable(connection, found)
            return found
        command.upgrade(config, "head")
        return found


def _lock(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Serialise concurrent start-ups; released at commit.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _stamp_legacy(connection: sa.Connection, config: Config) -> str | None:
    """A database made by 0.1.0: record the revision its schema version matches, and return it."""
    if not sa.inspect(connection).has_table(LEGACY_TABLE):
        return None
    version = connection.execute(sa.text(f"SELECT max(version) FROM {LEGACY_TABLE}")).scalar()
    if version is None:
        return None  # 0.1.0 stopped before its first migration: the tables are created as new
    if int(version) not in LEGACY_REVISIONS:
        raise SchemaError(f"database schema is {LEGACY_TABLE} version {version}, which no release made")
    revision = LEGACY_REVISIONS[int(version)]
    command.stamp(config, revision)
    log.info("database made by civicrisk 0.1.0 (schema version %s) stamped as revision %s", version, revision)
    return revision


def _known(config: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except (ResolutionError, CommandError):
        return False


def _check_usable(connection: sa.Connection, revision: str) -> None:
    """A revision newer than this code: work on if every table and column it uses is there."""
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in present:
            missing.append(table.name)
            continue
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{column.name}" for column in table.columns if column.name not in columns]
    if missing:
        raise SchemaError(
            f"database schema is at revision {revision}, newer than this civicrisk (head {head_revision()}),"
            f" and lacks {', '.join(missing)}: that migration was not additive"
        )
    log.warning(
        "database schema is at revision %s, newer than this civicrisk knows (head %s); working on with it,"
        " as migrations are additive",
        revision,
        head_revision(),
    )


__all__ = ["SchemaError", "alembic_config", "current_revision", "head_revision", "metadata", "migrate"]
