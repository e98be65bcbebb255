"""Campaigns, organisations, received records, audit log and API tokens in the store."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import pytest
from sqlalchemy import text

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    RecordNotFound,
    Role,
    Store,
    create_data_key,
    open_store,
)
from tests.support.stores import database_content

ISSUER_B = "orgb0000000000000000"
ISSUER_C = "orgc0000000000000000"


class TickingClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def store(store_location: Path | str, tmp_path: Path) -> AsyncIterator[Store]:
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    opened = await open_store(store_location, key, clock=TickingClock())
    yield opened
    await opened.close()


def new_id() -> str:
    return str(uuid.uuid4())


async def raw_rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    """What the database itself holds, read past the store's code (either backend)."""
    async with store.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


# organisations


async def test_own_org_round_trip_and_replacement(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.orgs.own() is None
        await tx.orgs.save_own("orga", "Colectivo Tierra", "CO", b"\x01secret keys", {"sig": "k"})
    async with store.transaction() as tx:
        await tx.orgs.save_own("orga", "Colectivo Tierra Viva", "CO", b"\x02rotated", {"sig": "k2"})
    async with store.read() as tx:
        own = await tx.orgs.own()
    assert own is not None
    assert (own.org_id, own.name, own.private_keys, own.public_keys) == (
        "orga",
        "Colectivo Tierra Viva",
        b"\x02rotated",
        {"sig": "k2"},
    )
    assert own.updated_at > own.created_at
    assert "Tierra" not in repr(own) and "rotated" not in repr(own)


async def test_names_of_every_known_organisation(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.orgs.save_own("orga", "Colectivo Tierra", "CO", b"k", {})
        await tx.orgs.save_member(ISSUER_B, {"profile": {"name": " Haki Defenders "}},
                                  verified=True, safety_code="1", matrix_user_id=None)
        await tx.orgs.save_member(ISSUER_C, {"profile": {"name": ""}}, verified=False,
                                  safety_code="2", matrix_user_id=None)
    async with store.read() as tx:
        names = await tx.orgs.names()
    assert names == {"orga": "Colectivo Tierra", ISSUER_B: "Haki Defenders", ISSUER_C: ISSUER_C}


async def test_members(store: Store) -> None:
    entry_b = {"profile": {"name": "Haki Defenders"}, "keys": {"sig": "b"}}
    async with store.transaction() as tx:
        await tx.orgs.save_member(
            ISSUER_B,
            entry_b,
            verified=True,
            safety_code="12345 67890",
            matrix_user_id="@minga-b:hs1.local",
        )
        await tx.orgs.save_member(
            ISSUER_C, {"profile": {}}, verified=False, safety_code="0", matrix_user_id=None
        )
    async with store.transaction() as tx:
        await tx.orgs.save_member(
            ISSUER_C,
            {"profile": {"name": "C"}},
            verified=True,
            safety_code="111",
            matrix_user_id="@minga-c:hs2.local",
        )
    async with store.read() as tx:
        everyone = await tx.orgs.members()
        verified = await tx.orgs.members(verified_only=True)
        by_matrix = await tx.orgs.member_by_matrix_user("@minga-b:hs1.local")
        unknown = await tx.orgs.member_by_matrix_user("@nobody:hs1.local")
    assert [m.org_id for m in everyone] == [ISSUER_B, ISSUER_C]
    assert [m.org_id for m in verified] == [ISSUER_B, ISSUER_C]
    assert everyone[1].entry == {"profile": {"name": "C"}}
    assert by_matrix is not None and by_matrix.entry == entry_b
    assert unknown is None
    async with store.transaction() as tx:
        await tx.orgs.remove_member(ISSUER_C)
    with pytest.raises(RecordNotFound):
        async with store.read() as tx:
            await tx.orgs.member(ISSUER_C)


# received records


async def test_received_records_are_idempotent_per_version(store: Store) -> None:
    record_id = new_id()
    async with store.transaction() as tx:
        first = await tx.received.add(ISSUER_B, record_id, 1, "case", {"country": "KE"}, "verified")
        again = await tx.received.add(ISSUER_B, record_id, 1, "case", {"other": 1}, "verified")
    async with store.transaction() as tx:
        later = await tx.received.add(ISSUER_B, record_id, 1, "case", {"x": 2}, "verified")
        other_issuer = await tx.received.add(ISSUER_C, record_id, 1, "case", {}, "verified")
    assert (first, again, later, other_issuer) == (True, False, False, True)
    async with store.read() as tx:
        versions = await tx.received.versions(ISSUER_B, record_id)
    assert [(v.version, v.claims) for v in versions] == [(1, {"country": "KE"})]


async def test_latest_version_wins_even_when_an_older_arrives_late(store: Store) -> None:
    record_id = new_id()
    async with store.transaction() as tx:
        await tx.received.add(ISSUER_B, record_id, 3, "case", {"v": 3}, "verified")
        await tx.received.add(ISSUER_B, record_id, 1, "case", {"v": 1}, "verified")
        await tx.received.add(ISSUER_B, record_id, 2, "case", {"v": 2}, "verified")
    async with store.read() as tx:
        latest = await tx.received.latest(ISSUER_B, record_id)
        missing = await tx.received.latest(ISSUER_C, record_id)
    assert latest is not None and (latest.version, latest.claims) == (3, {"v": 3})
    assert missing is None


async def test_list_latest_shows_one_row_per_record(store: Store) -> None:
    case_b, case_c, alert_b = new_id(), new_id(), new_id()
    async with store.transaction() as tx:
        await tx.received.add(ISSUER_B, case_b, 1, "case", {"v": 1}, "verified")
        await tx.received.add(ISSUER_C, case_c, 1, "case", {"v": 1}, "verified")
        await tx.received.add(ISSUER_B, alert_b, 1, "alert", {"v": 1}, "verified")
        await tx.received.add(ISSUER_B, case_b, 2, "case", {"v": 2}, "verified")
    async with store.read() as tx:
        everything = await tx.received.list_latest()
        cases = await tx.received.list_latest(kind="case")
        from_b = await tx.received.list_latest(issuer=ISSUER_B)
    assert [(r.record_id, r.version) for r in everything] == [
        (case_b, 2),
        (alert_b, 1),
        (case_c, 1),
    ]
    assert {r.record_id for r in cases} == {case_b, case_c}
    assert {r.record_id for r in from_b} == {case_b, alert_b}


async def test_retraction_wipes_claims_and_keeps_tombstones(store: Store) -> None:
    record_id = new_id()
    async with store.transaction() as tx:
        await tx.received.add(ISSUER_B, record_id, 1, "case", {"v": 1}, "verified")
        await tx.received.add(ISSUER_B, record_id, 2, "case", {"v": 2}, "verified")
    async with store.transaction() as tx:
        assert await tx.received.retract(ISSUER_B, record_id) == 2
    async with store.transaction() as tx:
        late = await tx.received.add(ISSUER_B, record_id, 3, "case", {"v": 3}, "verified")
    async with store.read() as tx:
        versions = await tx.received.versions(ISSUER_B, record_id)
    assert late is True
    assert [(v.version, v.retracted, v.claims) for v in versions] == [
        (1, True, None),
        (2, True, None),
        (3, True, None),
    ]
    assert await raw_rows(store, "SELECT claims FROM received_records") == [(None,)] * 3


# audit log


async def test_audit_log_appends_and_pages_newest_first(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(5):
            await tx.audit.append("maría", "case.create", target=f"case-{n}", details={"n": n})
    async with store.read() as tx:
        newest = await tx.audit.recent(limit=3)
        older = await tx.audit.recent(limit=3, before_id=newest[-1].id)
    assert [e.target for e in newest + older] == [f"case-{n}" for n in (4, 3, 2, 1, 0)]
    assert newest[0].actor == "maría" and newest[0].details == {"n": 4}
    assert newest[0].at > older[0].at


async def test_audit_log_with_a_non_utc_clock(store_location: Path | str, tmp_path: Path) -> None:
    bogota = datetime(2025, 3, 1, 9, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Bogota"))
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    store = await open_store(store_location, key, clock=lambda: bogota)
    async with store.transaction() as tx:
        await tx.audit.append("ana", "token.create")
    async with store.read() as tx:
        (event,) = await tx.audit.recent()
    await store.close()
    assert event.at == bogota and event.actor == "ana"


# API tokens


async def test_tokens_verify_until_revoked(store: Store) -> None:
    async with store.transaction() as tx:
        editor = await tx.tokens.create("ana", Role.editor)
        viewer = await tx.tokens.create("bea", Role.viewer)
    async with store.read() as tx:
        owner = await tx.tokens.verify(editor)
        wrong = await tx.tokens.verify(editor + "x")
        listed = await tx.tokens.list()
    assert owner is not None and (owner.user, owner.role) == ("ana", Role.editor)
    assert wrong is None
    assert [(t.user, t.role, t.revoked) for t in listed] == [
        ("ana", Role.editor, False),
        ("bea", Role.viewer, False),
    ]
    async with store.transaction() as tx:
        await tx.tokens.revoke(listed[0].token_id)
    async with store.read() as tx:
        assert await tx.tokens.verify(editor) is None
        assert await tx.tokens.verify(viewer) is not None


async def test_a_lookup_is_one_statement_and_sees_each_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One trip to aiosqlite's thread: what this counts exists on SQLite only.
    store = await open_store(tmp_path, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    async with store.transaction() as tx:
        token = await tx.tokens.create("ana", Role.editor)
    trips: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn.__name__)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    async with store.lookup() as tx:
        owner = await tx.tokens.verify(token)
    assert owner is not None and owner.user == "ana"
    assert trips == ["_statement"]  # no BEGIN, no rollback
    async with store.transaction() as tx:
        await tx.tokens.revoke((await tx.tokens.list())[0].token_id)
    async with store.lookup() as tx:
        assert await tx.tokens.verify(token) is None
    await store.close()


async def test_revoking_an_unknown_token_is_an_error(store: Store) -> None:
    with pytest.raises(RecordNotFound):
        async with store.transaction() as tx:
            await tx.tokens.revoke("0" * 16)


async def test_only_the_token_hash_is_stored(store: Store, store_location: Path | str) -> None:
    async with store.transaction() as tx:
        token = await tx.tokens.create("ana", Role.admin)
    await store.checkpoint()
    assert await raw_rows(store, "SELECT token_hash FROM api_tokens") == [
        (hashlib.sha256(token.encode()).hexdigest(),)
    ]
    database = await database_content(store, store_location)
    assert token.encode() not in database
    assert token.removeprefix("minga_").encode() not in database


async def test_settings_are_replaced_whether_read_before_or_not(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.settings.set("a", {"n": 1})  # new: inserted
        await tx.settings.set("a", {"n": 2})  # again, never read: replaced
        assert await tx.settings.get_many("a", "missing") == [{"n": 2}, None]
        await tx.settings.set("a", {"n": 3})  # read in this session: updated in place
        assert await tx.settings.get("a") == {"n": 3}
    async with store.transaction() as tx:
        await tx.settings.set("a", {"n": 4})
        await tx.settings.set("b", ["x"])
    async with store.read() as tx:
        assert await tx.settings.get_many("b", "a") == [["x"], {"n": 4}]
    settings = "FROM store_meta WHERE name LIKE 'setting.%'"
    assert await raw_rows(store, f"SELECT count(*) {settings}") == [(2,)]
    values = await raw_rows(store, f"SELECT value {settings}")
    assert all(b'["x"]' not in bytes(value) for (value,) in values)  # type: ignore[call-overload]
