"""Schema migrations run when the store opens: from empty, idempotent, and extensible."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, text

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    STORE_MIGRATIONS,
    CaseFilter,
    CaseIndex,
    DataKey,
    MigrationSet,
    StoreSchemaTooNew,
    create_data_key,
    open_store,
)
from node.core.store.database import create_engine, database_url
from node.core.store.migrate import _config

STORE_TABLES = {
    "store_meta",
    "own_org",
    "members",
    "coalitions",
    "coalition_members",
    "cases",
    "case_versions",
    "case_violations",
    "case_victim_groups",
    "received_records",
    "audit_log",
    "api_tokens",
    "shares",
    "pair_rooms",
    "staff_users",
    "staff_sessions",
    "campaign_records",
    "campaign_rooms",
    "imported_rows",
    "attachments",
    "custody_entries",
    "key_revocations",
    "received_files",
}
STORE_HEAD = "0012_coalitions"
RECORD_ID = "0190a5c4-0000-7000-8000-0000000000aa"


@pytest.fixture
def key(tmp_path: Path) -> DataKey:
    return create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)


async def _run(location: Path | str, sql: str) -> list[tuple[object, ...]]:
    """``sql`` run on the database itself, past the store's code."""
    engine = create_engine(database_url(location))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def _tables(location: Path | str) -> set[str]:
    engine = create_engine(database_url(location))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def _store_revision(location: Path | str) -> list[object]:
    rows = await _run(location, f"SELECT version_num FROM {STORE_MIGRATIONS.version_table}")
    return [revision for (revision,) in rows]


async def test_first_open_creates_every_table(store_location: Path | str, key: DataKey) -> None:
    store = await open_store(store_location, key)
    await store.close()
    assert await _tables(store_location) == STORE_TABLES | {STORE_MIGRATIONS.version_table}
    assert await _store_revision(store_location) == [STORE_HEAD]


async def test_reopening_keeps_data_and_revision(store_location: Path | str, key: DataKey) -> None:
    store = await open_store(store_location, key)
    async with store.transaction() as tx:
        await tx.cases.add(RECORD_ID, {"narrative": "x"}, CaseIndex(country="KE"), "ana")
    await store.close()
    for _ in range(2):
        store = await open_store(store_location, key)
        async with store.read() as tx:
            assert (await tx.cases.get(RECORD_ID)).index.country == "KE"
        await store.close()
    assert await _store_revision(store_location) == [STORE_HEAD]


def _differences(connection: Connection, metadata: MetaData) -> list[object]:
    options = {"compare_type": True, "version_table": STORE_MIGRATIONS.version_table}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(
        store_location: Path | str, key: DataKey) -> None:
    store = await open_store(store_location, key)
    async with store.engine.connect() as connection:
        differences = await connection.run_sync(_differences, STORE_MIGRATIONS.metadata)
    await store.close()
    assert differences == []


async def test_sqlite_settings_are_applied(tmp_path: Path, key: DataKey) -> None:
    store = await open_store(tmp_path, key)
    async with store.engine.connect() as connection:
        settings = {
            pragma: (await connection.execute(text(f"PRAGMA {pragma}"))).scalar()
            for pragma in ("journal_mode", "foreign_keys", "secure_delete", "synchronous")
        }
    await store.close()
    assert settings == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "secure_delete": 1,
        "synchronous": 2,
    }


async def test_database_from_a_newer_minga_is_refused(
        store_location: Path | str, key: DataKey) -> None:
    store = await open_store(store_location, key)
    await store.close()
    await _run(store_location,
               f"UPDATE {STORE_MIGRATIONS.version_table} SET version_num = '9999_future'")
    with pytest.raises(StoreSchemaTooNew, match="newer Minga"):
        await open_store(store_location, key)


def _write_extra_migrations(directory: Path) -> MigrationSet:
    """A second package's migrations, laid out as ``sync`` would ship them."""
    (directory / "versions").mkdir(parents=True)
    shutil.copy(STORE_MIGRATIONS.script_location / "env.py", directory / "env.py")
    (directory / "versions" / "e0001.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            from alembic import op

            revision = "e0001"
            down_revision = None
            branch_labels = None
            depends_on = None

            def upgrade():
                op.create_table(
                    "extra_outbox",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("payload", sa.LargeBinary(), nullable=False),
                )

            def downgrade():
                op.drop_table("extra_outbox")
            """
        ),
        encoding="utf-8",
    )
    return MigrationSet("extra", directory, "alembic_version_extra", MetaData())


async def test_another_package_adds_its_tables_with_its_own_version(
    store_location: Path | str, tmp_path: Path, key: DataKey
) -> None:
    extra = _write_extra_migrations(tmp_path / "extra_migrations")
    store = await open_store(store_location, key)  # an existing node, before the package existed
    await store.close()
    for _ in range(2):
        store = await open_store(store_location, key, migrations=[extra])
        async with store.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await store.close()
    assert tables == STORE_TABLES | {
        "extra_outbox",
        "alembic_version_store",
        "alembic_version_extra",
    }
    assert await _store_revision(store_location) == [STORE_HEAD]


def _downgrade_store(connection: Connection, revision: str) -> None:
    command.downgrade(_config(STORE_MIGRATIONS, connection), revision)


async def test_code_tables_get_the_listing_columns_of_existing_cases(
        store_location: Path | str, key: DataKey) -> None:
    """Cases stored before 0011 are found by the code-driven listing after the upgrade."""
    older, newer = RECORD_ID, RECORD_ID.replace("aa", "bb")
    store = await open_store(store_location, key)
    async with store.transaction() as tx:
        await tx.cases.add(older, {"n": 1}, CaseIndex(
            country="KE", date_from="2023-01-01", date_to="2023-01-31",
            violations=frozenset({"threat"}), victim_groups=frozenset({"lawyer"})), "ana")
        await tx.cases.add(newer, {"n": 2}, CaseIndex(
            country="CO", violations=frozenset({"threat", "raid"})), "ana")
    async with store.engine.begin() as connection:
        await connection.run_sync(_downgrade_store, "0009_evidence_sharing")
    await store.close()

    store = await open_store(store_location, key)
    async with store.read() as tx:
        threats = await tx.cases.list(CaseFilter(violation="threat"), limit=1)
        following = await tx.cases.list(
            CaseFilter(violation="threat"), limit=1, cursor=threats.next_cursor)
        kenyan_lawyers = await tx.cases.list(CaseFilter(
            victim_group="lawyer", country="KE", date_from="2023-01-15", date_to="2023-02-15"))
        count = await tx.cases.count(CaseFilter(violation="raid", country="CO"))
    await store.close()
    assert [case.record_id for case in threats.items + following.items] == sorted(
        [older, newer], reverse=True)  # added in one transaction: same updated_at
    assert following.next_cursor is None
    assert [case.record_id for case in kenyan_lawyers.items] == [older]
    assert count == 1
    assert await _store_revision(store_location) == [STORE_HEAD]
