"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine import migrate
from engine.schema import Base


def test_migrations_match_models(rt):
    with rt.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert migrate.current_revision(rt.db) == migrate.head_revision()


def test_upgrade_twice_changes_nothing(rt):
    head = migrate.head_revision()
    assert migrate.upgrade(rt.db) == (head, head)
