"""`civicrisk db upgrade|current`: the service's database (CIVICRISK_DATABASE_URL) and its schema."""

from __future__ import annotations

import argparse
import sys

from civicrisk.errors import UsageError


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database = commands.add_parser(
        "db", help="the service's database (CIVICRISK_DATABASE_URL): migrate it, show its revision"
    )
    actions = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions.add_parser("upgrade", help="migrate the database to this civicrisk's newest schema revision")
    actions.add_parser("current", help="print the database's schema revision")


def run_db(args: argparse.Namespace) -> int:
    """`db upgrade` / `db current` on the service's database (what `Repository.open` would open)."""
    import sqlalchemy as sa
    from pydantic import ValidationError

    from app.platform.settings import Settings
    from app.platform.storage.repository import create_database_engine
    from app.platform.storage.schema import SchemaError, current_revision, head_revision, migrate

    try:
        url = Settings().database_url
    except ValidationError as error:
        raise UsageError(f"invalid service settings: {error}") from None
    try:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        raise UsageError("CIVICRISK_DATABASE_URL is not a database URL") from None
    try:
        engine = create_database_engine(url)
    except (OSError, sa.exc.ArgumentError, ImportError) as error:  # a folder it cannot make, a bad driver
        raise UsageError(f"database unavailable at {shown}: {error}") from None
    try:
        if args.db_command == "upgrade":
            found = migrate(engine)
            with engine.connect() as connection:
                now = current_revision(connection)
            print(f"{shown}: {found or 'new database'} -> {now}", file=sys.stderr)
        else:
            with engine.connect() as connection:
                now = current_revision(connection)
        head = head_revision()
        print(now or "none")
        if now != head:
            print(f"civicrisk: this civicrisk's newest revision is {head}", file=sys.stderr)
        return 0
    except sa.exc.DBAPIError as error:  # OperationalError and the driver's other failures
        reason = str(error.orig or error).strip().splitlines()[0]
        raise UsageError(f"database unavailable at {shown}: {reason}") from None
    except SchemaError as error:
        raise UsageError(str(error)) from None
    finally:
        engine.dispose()
