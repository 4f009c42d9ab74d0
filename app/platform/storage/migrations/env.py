"""Alembic's environment: runs on the connection `schema.migrate` passes in (already locked, in a
transaction), or on an engine for `config`'s `sqlalchemy.url` (`alembic revision --autogenerate`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from app.platform.storage.tables import metadata

# Tables the revisions do not manage: Alembic's own, and the previous release's version record
# (kept so its replicas still start during a rollout).
_UNMANAGED = {"alembic_version", "civicrisk_schema_version"}


def _include_object(item: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    return not (kind == "table" and name in _UNMANAGED)


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as own:
        _run(own)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
