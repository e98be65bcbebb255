"""Alembic environment: migrate the connection handed over by
:func:`node.core.store.migrate.upgrade`.

Online mode only. The caller owns the connection and its transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, MetaData


def run_migrations() -> None:
    attributes = context.config.attributes
    connection: Connection = attributes["connection"]
    metadata: MetaData = attributes["target_metadata"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
