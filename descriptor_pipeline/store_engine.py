"""Engines and schema versions: how the pipeline connects to a database and brings it up to date.

Shared by the index store and the catalog reader (both SQLite or PostgreSQL), so the driver
choices (WAL and busy timeout on SQLite, psycopg 3 and orjson on Postgres) are made once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from descriptor_pipeline.id_ranges import IdRange
from descriptor_pipeline.tables import metadata

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


class OpenOnce(Generic[P, T]):
    """`functools.cache` whose calls run under a lock: two threads opening the same URL
    (Dagster evaluates sensor ticks in threads when `sensors.use_threads` is set) get one
    object, and a store's migrations never run twice at once in a process."""

    def __init__(self, open_: Callable[P, T]) -> None:
        self._cached = functools.cache(open_)
        self._lock = threading.RLock()
        functools.update_wrapper(self, open_)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return self._cached(*args, **kwargs)

    def cache_clear(self) -> None:
        with self._lock:
            self._cached.cache_clear()


class MissingTablesError(RuntimeError):
    """Tables the code declares are not in the index database after its migrations ran."""


class MissingDatabaseError(RuntimeError):
    """The index database named by the URL does not exist on its server."""


def _missing_database(engine: sa.Engine, error: sa.exc.OperationalError) -> MissingDatabaseError:
    where = engine.url.render_as_string(hide_password=True)
    name = engine.url.database
    return MissingDatabaseError(
        f"the index database {name!r} does not exist on the server of {where}. Create it "
        f"(`createdb {name}` on that server) or point DESCRIPTOR_INDEX_URL at the right one, "
        "then run `descriptor-pipeline migrate` and a backfill. Not retried: it will not "
        f"appear by waiting. ({str(error.orig).strip().splitlines()[-1]})"
    )


def run_migrations(engine: sa.Engine, revision: str = "head") -> str:
    """Upgrade the index database to `revision`; returns the version it is at."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head() or ""
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        if "does not exist" in str(exc.orig) and "database" in str(exc.orig):
            raise _missing_database(engine, exc) from exc
        raise
    with conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": "descriptor_pipeline_version"}
        )
        version = context.get_current_revision() or ""
    _check_every_table_is_migrated(engine, version, head)
    return version


def _check_every_table_is_migrated(engine: sa.Engine, version: str, head: str) -> None:
    """A missing table fails at once, saying which, in which database, and what to do: with
    every migration applied, it was dropped by hand or no migration creates it."""
    existing = set(sa.inspect(engine).get_table_names())
    missing = sorted(name for name in metadata.tables if name not in existing)
    if not missing:
        return
    where = engine.url.render_as_string(hide_password=True)
    tables = ", ".join(missing)
    problem = (
        f"the index database {where} has no table {tables} (declared in "
        f"descriptor_pipeline/tables.py); it is at migration {version or 'none'} of {head}."
    )
    if version != head:
        todo = (
            f"Run `descriptor-pipeline migrate` with DESCRIPTOR_INDEX_URL={where} to apply the "
            "remaining migrations."
        )
    else:
        todo = (
            "Every migration is applied, so `descriptor-pipeline migrate` will not create it: "
            "if it was dropped by hand, restore it from a backup or rebuild the index database "
            "(drop it, run `descriptor-pipeline migrate`, then backfill); if it is a new table, "
            "add a migration under descriptor_pipeline/migrations/versions/."
        )
    raise MissingTablesError(f"{problem} {todo}")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI and search read while a partition commits; busy_timeout makes concurrent
    # partition runs wait for the write lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _lenient_text(raw: bytes) -> str:
    """SQLite text that is not valid UTF-8 decodes with lone surrogates instead of failing the
    whole page: the raw stage then quarantines that one row (`encoding:name`)."""
    return raw.decode("utf-8", "surrogateescape")


def _lenient_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = _lenient_text


# PostgreSQL 14+: how often a busy backend checks that its client is still there
CLIENT_CHECK_MS = 1000
_client_check_warned = False


def _postgres_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """A backend whose client is gone stops within a second, even waiting for a lock.

    Without it PostgreSQL notices a dead client only when it next writes to it: a step stopped
    mid-query (its run failed or was terminated, `celery_app.RunWatch`; `kill -9`) left its
    query waiting on the server until the lock freed, then running to the end (measured: still
    waiting 5 s after the kill without the check, gone after 0.2 s with a 200 ms check).
    A server that cannot check (before 14; Windows; 14 outside Linux) refuses the setting: the
    connection then goes on without it, once warned."""
    global _client_check_warned
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
        dbapi_connection.commit()
    except Exception as exc:  # the driver's error class: psycopg 3 or psycopg2
        dbapi_connection.rollback()
        if not _client_check_warned:
            _client_check_warned = True
            logger.warning("client_connection_check_interval not set on this server: %s", exc)


def create_engine(url: str, lenient_text: bool = False, **kwargs: Any) -> sa.Engine:
    """SQLite with WAL, or PostgreSQL through psycopg 3 (COPY) whatever driver the URL names."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        # JSONB columns decode with orjson: the stdlib decoder was 17-22% of a full backfill
        kwargs.setdefault("json_deserializer", orjson.loads)
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "postgresql" and engine.dialect.driver in ("psycopg", "psycopg2"):
        sa.event.listen(engine, "connect", _postgres_on_connect)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        if lenient_text:
            sa.event.listen(engine, "connect", _lenient_on_connect)
    return engine


def not_older(table: sa.Table, excluded: Any) -> sa.ColumnElement[bool]:
    """The upserts' guard against a lost update: a run that read a row before another run wrote
    a newer version of it must not put the older one back. Rows are compared by the catalog's
    `updated_at` (ISO text); a row without one is always written."""
    if "source_updated_at" not in table.c:
        return sa.true()
    old, new = table.c.source_updated_at, excluded.source_updated_at
    return sa.or_(old.is_(None), new.is_(None), new >= old)


def refused_updates(
    conn: sa.Connection,
    table: sa.Table,
    hash_column: str,
    resource_type: str,
    rows: Sequence[dict[str, Any]],
    existing: Mapping[int, str],
) -> int:
    """How many of the updates just upserted `not_older` refused (a newer version was stored
    by another run), so that the metrics count only what this run wrote. One indexed lookup of
    the updated ids, in the writing transaction; inserts are not looked up (the partition lock
    keeps other writers of the partition out, so an insert cannot meet a newer row)."""
    if "source_updated_at" not in table.c:
        return 0
    updated = {}
    for row in rows:
        resource_id = int(row["resource_id"])
        if existing.get(resource_id) not in (None, row[hash_column]):
            updated[resource_id] = row[hash_column]
    if not updated:
        return 0
    stored = conn.execute(
        sa.select(table.c.resource_id, table.c[hash_column]).where(
            table.c.resource_type == resource_type,
            id_in(table.c.resource_id, updated, conn.dialect.name),
        )
    )
    return sum(1 for resource_id, value in stored if value != updated[int(resource_id)])


def in_span(table: sa.Table, resource_type: str, span: IdRange) -> sa.ColumnElement[bool]:
    """The rows of one resource type within an id range: how every stage-table read is bounded
    (the primary key's order, so an index range scan)."""
    return sa.and_(
        table.c.resource_type == resource_type,
        table.c.resource_id.between(span.first, span.last),
    )


def id_in(column: Any, ids: Iterable[int], dialect: str) -> sa.ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL one array parameter (`= ANY(:ids)`): psycopg parses an
    IN list of thousands of parameters slower than the rows are read (`_split_query` topped a
    publish profile). Ids reach SQL only as bound values either way."""
    wanted = sorted({int(i) for i in ids})
    if dialect == "postgresql":
        array = sa.bindparam(None, wanted, type_=postgresql.ARRAY(sa.BigInteger))
        return column == sa.any_(array)
    return column.in_(wanted)


def dialect_insert(engine: sa.Engine) -> Any:
    """The dialect's INSERT construct: both have ON CONFLICT, the generic one has not."""
    return sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert


def create_missing_database(url: str) -> bool:
    """Create the PostgreSQL database a URL names if it does not exist (needs CREATEDB).

    Returns whether it was created; a URL of another dialect is left alone.
    """
    if not url.startswith("postgres"):
        return False
    parsed = sa.make_url(url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).first()
            if exists:
                return False
            quoted = admin.dialect.identifier_preparer.quote(parsed.database)
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        admin.dispose()
