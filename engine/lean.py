"""Hot-path SQL: constant statement texts run on the database driver's own cursor.

Starting and completing cases are the engine's hot path. Building and compiling a SQLAlchemy Core
statement costs about 80 µs per statement here against 4 µs for the driver itself, which made a case
three times slower than SpiffWorkflow alone (see ``python -m bench.hotpath``). SQLAlchemy still owns the
connection, the pool and the transaction (``with rt.db.begin() as conn``); only the statements of the hot
path go straight to the driver. Texts are written with ``?`` placeholders and quoted identifiers, the
common ground of SQLite and PostgreSQL; for psycopg the placeholders become ``%s``.
"""

from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache


@cache
def _pg_text(sql):
    return sql.replace("%", "%%").replace("?", "%s")


class Lean:
    """A cursor on the driver connection behind a SQLAlchemy connection (inside its transaction), or on a
    pooled connection of its own (``Lean.transaction``)."""

    __slots__ = ("pg", "cur")

    def __init__(self, conn=None, cursor=None, pg=False):
        if conn is not None:
            self.pg = conn.dialect.name == "postgresql"
            self.cur = conn.connection.driver_connection.cursor()
        else:
            self.pg, self.cur = pg, cursor

    @classmethod
    @contextmanager
    def transaction(cls, db_engine, readonly=False):
        """A transaction on a connection from the engine's pool, without SQLAlchemy's per-transaction
        machinery (about a tenth of a millisecond each, five times per case). SQLite write transactions
        take the write lock up front (BEGIN IMMEDIATE), as every writer of the engine does."""
        pooled = db_engine.raw_connection()
        try:
            driver = pooled.driver_connection
            pg = db_engine.dialect.name == "postgresql"
            if not pg:
                driver.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")
            try:
                yield cls(cursor=driver.cursor(), pg=pg)
            except BaseException:
                driver.rollback()
                raise
            if readonly:
                driver.rollback()
            else:
                driver.commit()
        finally:
            pooled.close()  # back to the pool

    def _sql(self, sql):
        return _pg_text(sql) if self.pg else sql

    def run(self, sql, params=()):
        self.cur.execute(self._sql(sql), params)
        return self.cur.rowcount

    def many(self, sql, rows):
        if rows:
            self.cur.executemany(self._sql(sql), rows)

    def one(self, sql, params=()):
        self.cur.execute(self._sql(sql), params)
        return self.cur.fetchone()

    def all(self, sql, params=()):
        self.cur.execute(self._sql(sql), params)
        return self.cur.fetchall()

    def ts(self, value):
        """A timestamp as the column stores it (SQLite: SQLAlchemy's naive UTC text)."""
        if value is None or self.pg:
            return value
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def read_ts(self, value):
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
