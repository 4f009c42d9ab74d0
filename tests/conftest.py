"""Shared fixtures: the real Chicago sample data, loaded once per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from training.inspections.config import CityConfig, load_city_config
from training.inspections.ingest import CityData, load_city

REPO_ROOT = Path(__file__).resolve().parent.parent
CHICAGO_CONFIG = REPO_ROOT / "data" / "sample" / "chicago" / "city.toml"


@pytest.fixture(scope="session")
def chicago_config_path() -> Path:
    return CHICAGO_CONFIG


@pytest.fixture(scope="session")
def chicago_config() -> CityConfig:
    return load_city_config(CHICAGO_CONFIG)


@pytest.fixture(scope="session")
def chicago_data(chicago_config: CityConfig) -> CityData:
    return load_city(chicago_config)


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_reason() -> str | None:
    """None when the CI PostgreSQL server answers, else why its tests skip."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure to reach it means: not this machine's setup
        return f"PostgreSQL at 127.0.0.1:5432 (user postgres, database test) is not reachable: {error}"
    return None


@pytest.fixture(scope="session")
def postgres_reachable() -> None:
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)


def fresh_postgres_schema() -> tuple[str, Callable[[], None]]:
    """A URL to a new schema in the local PostgreSQL test database, and a function that drops it."""
    import uuid

    import sqlalchemy as sa

    schema = f"civicrisk_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", drop


@pytest.fixture(scope="session")
def postgres_schema_factory(postgres_reachable: None) -> Callable[[], tuple[str, Callable[[], None]]]:
    return fresh_postgres_schema


@pytest.fixture
def postgres_url(postgres_reachable: None) -> Iterator[str]:
    """A URL to a fresh schema in the local PostgreSQL test database, dropped afterwards."""
    url, drop = fresh_postgres_schema()
    try:
        yield url
    finally:
        drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on an SQLite file and, where reachable, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'civicrisk.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
