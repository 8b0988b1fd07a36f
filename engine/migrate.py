"""Schema migrations with alembic, run programmatically (no alembic.ini to keep in step)."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .config import PACKAGE_ROOT


def _config(connection):
    cfg = Config()
    cfg.set_main_option("script_location", str(PACKAGE_ROOT / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(db_engine):
    """Migrate the database to the newest schema. Returns (revision before, revision after)."""
    with db_engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), "head")
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def head_revision():
    return ScriptDirectory.from_config(_config(None)).get_current_head()


def current_revision(db_engine):
    with db_engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
