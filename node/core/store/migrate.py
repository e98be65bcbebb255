"""Schema migrations with Alembic, run from Python when a store is opened (no alembic.ini).

Each package that owns tables in the node's database has its own :class:`MigrationSet`: an Alembic
script directory inside the package and its own version table. ``node.core.store`` owns
``node/core/store/migrations`` with version table ``alembic_version_store``; ``sync`` can later ship
``sync/migrations`` with ``alembic_version_sync`` and the node passes it to ``open_store``. The
sets are independent, so neither package imports the other, and each is upgraded to its head in
the order given, inside one transaction per set.

Adding a revision: copy the latest file in ``versions/``, give it a new ``revision`` id and set
``down_revision`` to the previous one. The env.py of a set reads the connection, version table and
metadata from ``config.attributes``, so any set can copy ``node/core/store/migrations/env.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData

from node.core.store.errors import StoreSchemaTooNew
from node.core.store.tables import Base


@dataclass(frozen=True)
class MigrationSet:
    """One package's migrations: where its scripts are and which table records its version."""

    name: str
    script_location: Path
    version_table: str
    metadata: MetaData


STORE_MIGRATIONS = MigrationSet(
    name="store",
    script_location=Path(__file__).parent / "migrations",
    version_table="alembic_version_store",
    metadata=Base.metadata,
)


def _config(migrations: MigrationSet, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations.script_location))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = migrations.version_table
    config.attributes["target_metadata"] = migrations.metadata
    return config


def current_revisions(connection: Connection, migrations: MigrationSet) -> set[str]:
    context = MigrationContext.configure(
        connection, opts={"version_table": migrations.version_table}
    )
    return set(context.get_current_heads())


def _refuse_unknown_revisions(connection: Connection, migrations: MigrationSet) -> None:
    script = ScriptDirectory(str(migrations.script_location))
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = current_revisions(connection, migrations) - known
    if unknown:
        raise StoreSchemaTooNew(
            f"the database's {migrations.name} schema is at revision {', '.join(sorted(unknown))},"
            " which this version of Minga does not know: it was written by a newer Minga"
        )


def upgrade(connection: Connection, sets: Iterable[MigrationSet]) -> None:
    """Bring every set to its newest revision (a no-op when already there)."""
    for migrations in sets:
        _refuse_unknown_revisions(connection, migrations)
        command.upgrade(_config(migrations, connection), "head")
