"""Database connection: SQLite (WAL, durable commits) by default, PostgreSQL for scale-out.

Write transactions on SQLite start with ``BEGIN IMMEDIATE``: a second writer waits for the lock (up to the
busy timeout) instead of failing half-way with "database is locked" when it upgrades a read to a write.
"""

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalise_url(url):
    """Accept the URLs an operator writes: ``postgresql://`` means the psycopg (3) driver."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def make_engine(url, **kwargs):
    """An SQLAlchemy engine for ``url`` with the pragmas and transaction mode the engine relies on."""
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(u, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine):
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let us issue BEGIN ourselves (pysqlite's own handling defers it and breaks locking).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # durable: a commit survives a power cut
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Readers (an engine with execution_options(readonly=True)) do not take the write lock.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("readonly") else "BEGIN IMMEDIATE")


def is_postgres(bind):
    return bind.dialect.name == "postgresql"
