"""Reads and writes of issued lists and their claims, outcomes, the model set generation, spent EHR
tokens and partner keys. No FastAPI here: the routes translate errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.platform.errors import ServiceError
from app.platform.storage import feedback, list_claims, list_scores, route_plans
from app.platform.storage.feedback import CardFeedback, FeedbackCount
from app.platform.storage.list_claims import Claim, ListKey
from app.platform.storage.list_scores import ListedScore
from app.platform.storage.partner_keys import (
    KeysFileImport,
    StoredKey,
    dialect_insert,
    import_file,
    insert_if_absent,
    revoke,
    stored_key,
    utc,
)
from app.platform.storage.schema import migrate
from app.platform.storage.tables import issued_lists, model_set, outcomes, partner_keys, seen_tokens


class DatabaseUnavailable(ServiceError):
    """The database cannot be reached or refused the work; nothing was written."""

    status = 503
    code = "database_unavailable"


@dataclass(frozen=True)
class IssuedList:
    id: int
    city: str
    list_date: date
    model_name: str
    model_version: str
    parameters: dict[str, Any]
    issued_at: datetime
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class OutcomeWrite:
    created: list[str]
    already_recorded: list[str]


# orjson writes a list of thousands of rows several times faster than json, and floats round-trip exactly.
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": lambda value: orjson.dumps(value).decode(),
    "json_deserializer": orjson.loads,
}


def create_database_engine(url: str) -> sa.Engine:
    """An engine for `url`; SQLite files get a busy timeout so concurrent writers wait, not fail."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, connect_args={"timeout": 30}, **_JSON_CODEC)
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5}, **_JSON_CODEC)


def nothing_stored(url: str) -> bool:
    """True for an SQLite file that does not exist yet: nothing was ever written, so there is nothing
    to read either. Readers that may start before any write (the partner keys) ask this first, so
    that looking creates no database (nor its folder)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return False  # not for this function to judge: opening it reports the problem
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return False
    return not Path(database).exists()


class Repository:
    """Lists, outcomes and shared state in one database; `open()` migrates the schema first."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Repository:
        try:
            engine = create_database_engine(url)
        except OSError as error:  # an SQLite file's folder that cannot be made
            raise DatabaseUnavailable(f"database unavailable: {error}") from error
        repository = cls(engine)
        with repository._translate_errors():
            _migrate_with_retry(repository.engine)
        return repository

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, DBAPIError) as error:
            # The driver's message names the host and the failure, never the request's data.
            raise DatabaseUnavailable(f"database unavailable: {error.orig or error}") from error

    def issue_list(
        self,
        city: str,
        list_date: date,
        model_name: str,
        model_version: str,
        parameters: dict[str, Any],
        rows: Sequence[dict[str, Any]],
    ) -> IssuedList:
        """Store a list and its rows in one transaction; returns it with its database-issued id.

        A list whose content (city, date, model, parameters, rows) was issued before is not stored
        again: the stored one comes back, with its id and the time it was first issued. Reloading a
        page, or asking again before the data changes, adds nothing to the database."""
        what = {"city": city, "date": list_date, "model": [model_name, model_version]}
        content = _content_sha256(what | {"parameters": parameters}, rows)
        with self._translate_errors():
            try:
                with self.engine.begin() as connection:
                    stored = _stored_with(connection, content)
                    if stored is None:
                        issued_at = datetime.now(UTC)
                        inserted = connection.execute(
                            issued_lists.insert()
                            .values(
                                city=city,
                                list_date=list_date,
                                model_name=model_name,
                                model_version=model_version,
                                parameters=parameters,
                                row_count=len(rows),
                                rows=list(rows),
                                issued_at=issued_at,
                                content_sha256=content,
                            )
                            .returning(issued_lists.c.id)
                        )
                        stored = int(inserted.scalar_one()), issued_at
            except IntegrityError:
                # Another worker stored the same list between the look-up and the insert: it is this one.
                with self.engine.connect() as connection:
                    stored = _stored_with(connection, content)
                if stored is None:
                    raise
        list_id, issued_at = stored
        return IssuedList(
            list_id, city, list_date, model_name, model_version, parameters, issued_at, list(rows)
        )

    def claim_list(self, key: ListKey, holder: str, stale_after: float) -> Claim:
        """Claim the computation of the list `key` names, or find who has it (list_claims.take)."""
        with self._translate_errors():
            for _ in range(10):  # a row released or taken over between our insert and our read
                with self.engine.begin() as connection:
                    claim = list_claims.take(connection, key, holder, stale_after)
                if claim is not None:
                    return claim
        raise DatabaseUnavailable("could not claim the daily list's computation")

    def complete_list_claim(self, key_sha256: str, list_id: int) -> None:
        with self._translate_errors(), self.engine.begin() as connection:
            list_claims.complete(connection, key_sha256, list_id)

    def release_list_claim(self, key_sha256: str, holder: str) -> None:
        with self._translate_errors(), self.engine.begin() as connection:
            list_claims.release(connection, key_sha256, holder)

    def get_list(self, list_id: int) -> IssuedList | None:
        with self._translate_errors(), self.engine.connect() as connection:
            header = connection.execute(sa.select(issued_lists).where(issued_lists.c.id == list_id)).first()
            if header is None:
                return None
            return IssuedList(
                id=header.id,
                city=header.city,
                list_date=header.list_date,
                model_name=header.model_name,
                model_version=header.model_version,
                parameters=header.parameters,
                issued_at=utc(header.issued_at),
                rows=list(header.rows),
            )

    def record_outcomes(self, city: str, records: Sequence[dict[str, Any]]) -> OutcomeWrite:
        """Insert outcomes; an inspection id already stored for the city is left as it was."""
        received_at = datetime.now(UTC)
        values = [{**record, "city": city, "received_at": received_at} for record in records]
        with self._translate_errors(), self.engine.begin() as connection:
            inserted = connection.execute(
                dialect_insert(connection, outcomes)
                .values(values)
                .on_conflict_do_nothing(index_elements=["city", "inspection_id"])
                .returning(outcomes.c.inspection_id)
            ).scalars()
            created = set(inserted)
        ids = [record["inspection_id"] for record in records]
        return OutcomeWrite(
            created=[i for i in ids if i in created], already_recorded=[i for i in ids if i not in created]
        )

    def outcomes(self, city: str) -> list[dict[str, Any]]:
        """A city's recorded outcomes, in one order whichever process reads them: by inspection date,
        then inspection id."""
        condition = outcomes.c.city == city
        with self._translate_errors(), self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(outcomes)
                .where(condition)
                .order_by(outcomes.c.inspection_date, outcomes.c.inspection_id)
            ).mappings()
            return [dict(row) for row in rows]

    def outcomes_revision(self, city: str, before: date | None = None) -> tuple[int, datetime | None]:
        """A cheap fingerprint of a city's outcomes (count, latest receipt), for cache invalidation;
        with `before`, of those dated before that day only."""
        condition = outcomes.c.city == city
        if before is not None:
            condition = condition & (outcomes.c.inspection_date < before)
        with self._translate_errors(), self.engine.connect() as connection:
            count, latest = connection.execute(
                sa.select(sa.func.count(), sa.func.max(outcomes.c.received_at)).where(condition)
            ).one()
            return int(count), latest

    def listed_scores(self, model_name: str, first: date, last: date) -> list[ListedScore]:
        """The rows of the model's lists issued for dates in [first, last] (list_scores.py)."""
        with self._translate_errors(), self.engine.connect() as connection:
            return list_scores.listed_scores(connection, model_name, first, last)

    def posted_outcomes(self, city: str, first: date, last: date) -> list[dict[str, Any]]:
        with self._translate_errors(), self.engine.connect() as connection:
            return list_scores.posted_outcomes(connection, city, first, last)

    def newest_posted_outcome(self, city: str, excluding: tuple[str, ...] = ()) -> date | None:
        with self._translate_errors(), self.engine.connect() as connection:
            return list_scores.newest_posted(connection, city, excluding)

    def model_generation(self) -> int:
        """The model set generation every worker should serve (0 before the first reload)."""
        with self._translate_errors(), self.engine.connect() as connection:
            found = connection.execute(sa.select(model_set.c.generation).where(model_set.c.id == 1))
            return int(found.scalar() or 0)

    def bump_model_generation(self) -> int:
        """The next generation, stored: every worker that sees it reloads the models directory."""
        with self._translate_errors():
            for _ in range(3):
                try:
                    with self.engine.begin() as connection:
                        bumped = connection.execute(
                            model_set.update()
                            .where(model_set.c.id == 1)
                            .values(generation=model_set.c.generation + 1, changed_at=datetime.now(UTC))
                            .returning(model_set.c.generation)
                        ).scalar()
                        if bumped is None:
                            connection.execute(
                                model_set.insert().values(id=1, generation=1, changed_at=datetime.now(UTC))
                            )
                            bumped = 1
                        return int(bumped)
                except IntegrityError:
                    continue  # another process inserted the first row meanwhile: update it instead
        raise DatabaseUnavailable("could not record the model set generation")

    def first_use(self, token_key: str, expires_at: datetime) -> bool:
        """Record a token's use: True the first time `token_key` is seen, False on a replay. Tokens
        past their expiry are forgotten here too (they are refused as expired anyway)."""
        with self._translate_errors():
            try:
                with self.engine.begin() as connection:
                    expired = seen_tokens.c.expires_at < datetime.now(UTC)
                    connection.execute(seen_tokens.delete().where(expired))
                    connection.execute(
                        seen_tokens.insert().values(token_sha256=token_key, expires_at=expires_at)
                    )
                return True
            except IntegrityError:
                return False

    def record_feedback(self, entries: Sequence[CardFeedback]) -> list[CardFeedback]:
        """Store CDS Hooks card outcomes (those already stored for their card are left): the new ones."""
        with self._translate_errors(), self.engine.begin() as connection:
            return feedback.insert(connection, entries)

    def store_route_plan(
        self,
        issued: IssuedList,
        inspectors: int,
        per_inspector: int,
        method: str,
        content: dict[str, Any],
    ) -> route_plans.RoutePlan:
        """Store a list's routes (the same plan asked for again is the stored one) and return it."""
        digest = route_plans.content_sha256(issued.id, inspectors, per_inspector, method)
        with self._translate_errors(), self.engine.begin() as connection:
            found = route_plans.find(connection, content=digest)
            if found is not None:
                return found
            route_plans.store(
                connection, issued.id, issued.city, issued.list_date, inspectors, per_inspector, method,
                content,
            )  # fmt: skip
            stored = route_plans.find(connection, content=digest)
        if stored is None:  # pragma: no cover - inserted or found in the transaction above
            raise DatabaseUnavailable("the route plan was not stored")
        return stored

    def get_route_plan(self, plan_id: int) -> route_plans.RoutePlan | None:
        with self._translate_errors(), self.engine.connect() as connection:
            return route_plans.find(connection, plan_id=plan_id)

    def feedback_counts(self, model_name: str) -> list[FeedbackCount]:
        with self._translate_errors(), self.engine.connect() as connection:
            return feedback.counts(connection, model_name)

    def add_partner_key(self, key: StoredKey) -> bool:
        """Store a new key; False (nothing stored) when its id or digest is taken."""
        with self._translate_errors(), self.engine.begin() as connection:
            return insert_if_absent(connection, key)

    def revoke_partner_key(self, key_id: str) -> StoredKey | None:
        """Revoke a key (kept, as a record of who held which key when); None for an unknown id.
        A key revoked before keeps its first revocation time."""
        with self._translate_errors(), self.engine.begin() as connection:
            revoke(connection, key_id, datetime.now(UTC))
            found = connection.execute(sa.select(partner_keys).where(partner_keys.c.id == key_id)).first()
            return None if found is None else stored_key(found)

    def partner_keys(self, active_only: bool = False) -> list[StoredKey]:
        """Every key (revoked ones too, unless `active_only`), oldest first."""
        query = sa.select(partner_keys).order_by(partner_keys.c.created_at, partner_keys.c.id)
        if active_only:
            query = query.where(partner_keys.c.revoked_at.is_(None))
        with self._translate_errors(), self.engine.connect() as connection:
            return [stored_key(row) for row in connection.execute(query)]

    def partner_keys_stamp(self) -> tuple[int, int]:
        """(keys, revoked keys): changes with every create and revoke, as rows are never deleted nor
        revocations undone. A worker reads the keys again only when it changes."""
        with self._translate_errors(), self.engine.connect() as connection:
            counted = sa.select(sa.func.count(), sa.func.count(partner_keys.c.revoked_at))
            total, revoked = connection.execute(counted).one()
            return int(total), int(revoked)

    def import_keys_file(self, file_sha256: str, path: str, entries: Sequence[StoredKey]) -> KeysFileImport:
        """Import a keys file's entries once per file content (see `import_file`)."""
        with self._translate_errors(), self.engine.begin() as connection:
            return import_file(connection, file_sha256, path, entries)


def _content_sha256(what: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """sha256 of a list's content: `what` it is (city, date, model, parameters) and its rows."""
    document = what | {"rows": list(rows)}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _stored_with(connection: sa.Connection, content: str) -> tuple[int, datetime] | None:
    """Id and issue time of the list stored with this content hash, if there is one."""
    found = connection.execute(
        sa.select(issued_lists.c.id, issued_lists.c.issued_at).where(issued_lists.c.content_sha256 == content)
    ).first()
    return None if found is None else (int(found.id), utc(found.issued_at))


def _migrate_with_retry(engine: sa.Engine, attempts: int = 3) -> None:
    # Processes migrating at once wait on a lock (schema.migrate); should one still meet the other's
    # half-made schema ("already exists"), it tries again.
    for attempt in range(attempts):
        try:
            migrate(engine)
            return
        except (OperationalError, sa.exc.IntegrityError):
            if attempt == attempts - 1:
                raise
