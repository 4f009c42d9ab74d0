"""What keeps the tests away from the user's state (imported as `state_isolation`; tests/conftest.py
applies it to every test)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def state_env(state_dir: Path) -> dict[str, str]:
    """The CIVICRISK_* variables that put every setting the service and the CLI default to a place
    under var/ (app/platform/settings.py: keys_file, database_url) into `state_dir` instead."""
    return {
        "CIVICRISK_KEYS_FILE": str(state_dir / "partner-keys.json"),
        "CIVICRISK_DATABASE_URL": f"sqlite:///{state_dir / 'civicrisk.sqlite3'}",
    }


def var_snapshot(var: Path) -> dict[str, object]:
    """What a test run could change in a var/ folder: every entry's size and mtime (the folders' too,
    so a file created and removed again shows), and each SQLite database's row counts."""
    if not var.exists():
        return {}
    snapshot: dict[str, object] = {}
    for path in sorted([var, *var.rglob("*")]):
        stat = path.lstat()
        name = str(path.relative_to(var))
        snapshot[name] = ("dir" if path.is_dir() else stat.st_size, stat.st_mtime_ns)
        if path.is_file() and path.suffix in {".sqlite3", ".sqlite", ".db"}:
            snapshot[f"{name} rows"] = _row_counts(path)
    return snapshot


def _row_counts(path: Path) -> object:
    try:  # read-only and immutable: looking must not change the file
        with closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as connection:
            listed = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            count = 'SELECT count(*) FROM "{}"'
            return {name: connection.execute(count.format(name)).fetchone()[0] for (name,) in listed}
    except sqlite3.Error as error:
        return f"unreadable: {error}"
