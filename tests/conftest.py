"""Shared fixtures: the real Chicago sample data, loaded once per test session; and the isolation of
every test from the user's state (the checkout's var/ and the shell's CIVICRISK_* variables)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from state_isolation import state_env, var_snapshot

from training.inspections.config import CityConfig, load_city_config
from training.inspections.ingest import CityData, load_city

REPO_ROOT = Path(__file__).resolve().parent.parent
CHICAGO_CONFIG = REPO_ROOT / "data" / "sample" / "chicago" / "city.toml"
# The user's state: partner keys (`civicrisk keys create`) and the service's database, by default.
CHECKOUT_VAR = REPO_ROOT / "var"
# CIVICRISK_* variables that steer the test run, not the service: kept in the environment.
TEST_RUN_SWITCHES = {"CIVICRISK_FLEET_TEST"}


_var_at_start = pytest.StashKey[dict[str, object]]()
_user_env = pytest.StashKey[dict[str, str]]()
_session_state = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Before collection (some test modules build an app when imported): note the checkout's var/;
    drop the user's CIVICRISK_* variables; point the state settings at a session directory. Subprocesses
    the tests start inherit this environment."""
    config.stash[_var_at_start] = var_snapshot(CHECKOUT_VAR)
    user = [name for name in os.environ if name.startswith("CIVICRISK_") and name not in TEST_RUN_SWITCHES]
    config.stash[_user_env] = {name: os.environ.pop(name) for name in user}
    state = Path(tempfile.mkdtemp(prefix="civicrisk-test-state-"))
    config.stash[_session_state] = state
    os.environ.update(state_env(state))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_session_state, None)
    if state is not None:
        for name in state_env(state):
            os.environ.pop(name, None)
        os.environ.update(config.stash[_user_env])
        shutil.rmtree(state, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if it changed the checkout's var/ (a test wrote the user's keys or database)."""
    before = session.config.stash.get(_var_at_start, None)
    if before is None:
        return
    after = var_snapshot(CHECKOUT_VAR)
    if after != before:
        changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", f"the test run changed {CHECKOUT_VAR}: {', '.join(changed)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own directory for partner keys and the database (settings and CLI defaults, and in
    the subprocesses it starts); session and module fixtures use the session's directory."""
    path = tmp_path_factory.mktemp("state")
    for name, value in state_env(path).items():
        monkeypatch.setenv(name, value)
    return path


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
