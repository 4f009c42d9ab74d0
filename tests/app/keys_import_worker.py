"""A worker's start-up import of a keys file, run in a process of its own by
tests/app/test_partner_keys.py (a module of its own so that the process imports little)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.platform.keys_file import import_keys_file
from app.platform.storage.repository import Repository


def import_at_once(url: str, path: str, start: Any, results: Any) -> None:
    repository = Repository.open(url)
    start.wait()
    done = import_keys_file(repository, Path(path))
    results.put(None if done is None else done.keys_added)
