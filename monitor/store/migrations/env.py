"""Alembic environment: runs on the connection ``monitor.store.migrate`` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitor.store.engine import make_engine
from monitor.store.partitions import migration_filter
from monitor.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=migration_filter(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with make_engine(context.config.get_main_option("sqlalchemy.url") or "").connect() as conn:
        _run(conn)
