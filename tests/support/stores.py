"""Looking at a store's database from outside the store's code, on either backend."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from node.core.store import Store
from node.core.store.database import DATABASE_FILE_NAME


async def database_content(store: Store, location: Path | str) -> bytes:
    """Everything the database holds, as its administrator could read it: the SQLite file and
    its write-ahead log, or every value of every table on PostgreSQL (bytes as stored, other
    values as text)."""
    if isinstance(location, Path):
        files = [location / DATABASE_FILE_NAME, location / (DATABASE_FILE_NAME + "-wal")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    pieces: list[bytes] = []
    async with store.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        for name in tables:
            for row in await connection.execute(text(f'SELECT * FROM "{name}"')):
                pieces.extend(bytes(value) if isinstance(value, bytes | memoryview)
                              else str(value).encode() for value in row)
    return b"\n".join(pieces)
