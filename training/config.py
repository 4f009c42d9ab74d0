"""City configuration: everything city-specific lives in one TOML file, read with the standard library."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A city configuration problem, reported as `file: key: problem` without a traceback."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.file}: {key}: {problem}")


class ConfigErrors(ConfigError):
    """Several problems found at once: one `file: key: problem` line each."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.key, first.problem)
        self.errors = errors
        self.args = ("\n".join(str(error) for error in errors),)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class TableSource:
    """A CSV file and the format of its dates."""

    path: Path
    date_format: str
    key: str  # the config section, for error messages


class ConfigReader:
    """Typed access to a TOML document that reports the file and dotted key on any problem."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.document = document

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        node: Any = self.document
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    raise self.error(key, "missing")
                return default
            node = node[part]
        if not isinstance(node, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(key, f"expected {names}, got {type(node).__name__} {node!r}")
        return node

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        values = self.get(key, list, default)
        if not all(isinstance(v, str) for v in values):
            raise self.error(key, "expected a list of strings")
        return tuple(values)

    def file(self, key: str) -> Path:
        path: Path = (self.path.parent / self.get(key, str)).resolve()
        if not path.is_file():
            raise self.error(key, f"file not found: {path}")
        return path

    def table(self, section: str) -> TableSource:
        return TableSource(
            path=self.file(f"{section}.file"),
            date_format=self.get(f"{section}.date_format", str),
            key=section,
        )


def read_document(path: Path | str) -> tuple[Path, dict[str, Any]]:
    """A config file's resolved path and parsed TOML; ConfigError if it is missing or not TOML."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(path, "(file)", "config file not found")
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(path, "(syntax)", str(error)) from None


def city_timezone(reader: ConfigReader) -> str:
    """`[city].timezone`, an IANA name (UTC when absent): the zone of the city's own days."""
    name: str = reader.get("city.timezone", str, "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise reader.error(
            "city.timezone", f"unknown IANA time zone {name!r} (e.g. America/New_York)"
        ) from None
    return name


def today_in(timezone: str, now: datetime | None = None) -> date:
    """The date it is now in `timezone` (a config's `[city].timezone`): a city's "today", "tomorrow"
    and "in the future" are its own, not UTC's or the server's."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
