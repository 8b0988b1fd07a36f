"""``ozgflow init``: migrate, then deploy the shared models of ``processes/``. Idempotent."""

from sqlalchemy import inspect

from . import migrate
from .deploy import bundles_from_paths, deploy


def ensure_schema(rt):
    """A database without any schema gets one; an existing one is left to ``ozgflow db upgrade``."""
    with rt.db.connect() as conn:
        fresh = not inspect(conn).has_table("alembic_version")
    if fresh:
        migrate.upgrade(rt.db)


def initialise(rt, actor="init"):
    """Migrate the database and deploy every model in the processes folder."""
    _, schema = migrate.upgrade(rt.db)
    versions = []
    if rt.settings.processes_dir.is_dir():
        bundles = bundles_from_paths([rt.settings.processes_dir])
        if bundles:
            versions = deploy(rt, bundles, actor=actor)
    return {"database": rt.db.url.render_as_string(hide_password=True), "schema": schema, "versions": versions}
