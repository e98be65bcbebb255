"""Alembic scripts of the sync tables (:mod:`sync.tables`), run by the node, not the alembic CLI.

``sync`` never imports ``node`` (docs/architecture.md §1), so the node wraps these three names into
its own
``MigrationSet`` and passes it to ``open_store(..., migrations=[...])``::

    MigrationSet("sync", SYNC_SCRIPT_LOCATION, SYNC_VERSION_TABLE, SYNC_METADATA)

``env.py`` reads the connection, version table and metadata from ``config.attributes`` exactly
like the store's own.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from sync.tables import SyncBase

SYNC_SCRIPT_LOCATION: Path = Path(__file__).parent
SYNC_VERSION_TABLE = "alembic_version_sync"
SYNC_METADATA: MetaData = SyncBase.metadata
