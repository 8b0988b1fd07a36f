"""Alembic environment. Run through ``engine.migrate`` (``ozgflow db upgrade``), which hands over the
connection; the engine's metadata is the target for autogenerate."""

from alembic import context

from engine.schema import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
