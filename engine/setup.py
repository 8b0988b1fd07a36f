"""``ozgflow init``: migrate, deploy the shared models of ``processes/``, write missing demo keys. Idempotent."""

from sqlalchemy import inspect

from connectors.fitconnect.errors import MailboxError
from connectors.fitconnect.keys import ensure_demo_keys

from . import migrate
from .deploy import bundles_from_paths, deploy
from .errors import ConfigError


def ensure_schema(rt):
    """A database without any schema gets one; an existing one is left to ``ozgflow db upgrade``."""
    with rt.db.connect() as conn:
        fresh = not inspect(conn).has_table("alembic_version")
    if fresh:
        migrate.upgrade(rt.db)


def initialise(rt, actor="init"):
    """Migrate the database, deploy every model in the processes folder and give every FIT-Connect
    destination without keys demo keys (in ``<var>/keys/``)."""
    _, schema = migrate.upgrade(rt.db)
    versions = []
    if rt.settings.processes_dir.is_dir():
        bundles = bundles_from_paths([rt.settings.processes_dir])
        if bundles:
            versions = deploy(rt, bundles, actor=actor)
    try:
        keys = ensure_demo_keys(rt.settings.var_dir, rt.tenants)
    except MailboxError as exc:  # e.g. half a key pair on disk: the operator must look
        raise ConfigError(str(exc)) from exc
    return {"database": rt.db.url.render_as_string(hide_password=True), "schema": schema, "versions": versions,
            "keys": keys}
