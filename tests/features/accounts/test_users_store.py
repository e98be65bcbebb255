"""Staff accounts and sessions in the encrypted store (node.core.store.users)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    Role,
    Store,
    StoreTransaction,
    UsernameTaken,
    UserRepository,
    create_data_key,
    open_store,
    staff_users,
)
from node.core.store.errors import RecordNotFound
from node.features.accounts.passwords import hash_password
from tests.support.stores import database_content

PASSWORD = {"scheme": "argon2id/v1", "salt": "c2FsdA", "iterations": 1, "lanes": 1,
            "memory_kib": 8, "hash": "aGFzaA"}


@pytest.fixture
async def store(store_location: Path | str, tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(store_location,
                             create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    try:
        yield store
    finally:
        await store.close()


def users(tx: StoreTransaction) -> UserRepository:
    return staff_users(tx)


async def test_add_and_find_by_name_ignoring_case_and_spaces(store: Store) -> None:
    async with store.transaction() as tx:
        added = await users(tx).add("Ñusta Quispe", Role.editor, PASSWORD, language="es")
    async with store.read() as tx:
        found = await users(tx).by_username("  ñusta quispe ")
        assert await users(tx).by_username("someone else") is None
    assert found is not None
    assert (found.user_id, found.role, found.language, found.password) == (
        added.user_id, Role.editor, "es", PASSWORD)
    assert not found.has_totp and not found.disabled


async def test_names_are_unique(store: Store) -> None:
    async with store.transaction() as tx:
        await users(tx).add("amaru", Role.admin, PASSWORD)
    with pytest.raises(UsernameTaken):
        async with store.transaction() as tx:
            await users(tx).add("AMARU", Role.viewer, PASSWORD)


async def test_names_secrets_and_hashes_are_not_in_the_database_file(
    store: Store, store_location: Path | str
) -> None:
    secret = b"totp-secret-bytes-20"
    stored = hash_password("a password long enough", FAST_TEST_PARAMS)
    async with store.transaction() as tx:
        user = await users(tx).add("Wanjiru Kamau", Role.admin, stored, totp_secret=secret)
        await users(tx).start_session(user.user_id)
    await store.checkpoint()
    raw = await database_content(store, store_location)
    for needle in (b"Wanjiru", secret, stored["hash"].encode(), stored["salt"].encode()):
        assert needle not in raw


async def test_sessions_resolve_to_their_user_and_end_everywhere(store: Store) -> None:
    async with store.transaction() as tx:
        user = await users(tx).add("beatriz", Role.editor, PASSWORD)
        first = await users(tx).start_session(user.user_id)
        second = await users(tx).start_session(user.user_id)
    async with store.read() as tx:
        session = await users(tx).session(first)
        assert session is not None and session.user.username == "beatriz"
        assert await users(tx).session("not-a-session") is None
    async with store.transaction() as tx:
        assert await users(tx).end_sessions(user.user_id) == 2
    async with store.read() as tx:
        assert await users(tx).session(first) is None
        assert await users(tx).session(second) is None


async def test_disabling_ends_sessions(store: Store) -> None:
    async with store.transaction() as tx:
        user = await users(tx).add("chidi", Role.viewer, PASSWORD)
        token = await users(tx).start_session(user.user_id)
        await users(tx).set_disabled(user.user_id, True)
    async with store.read() as tx:
        assert await users(tx).session(token) is None
        assert (await users(tx).get(user.user_id)).disabled


async def test_totp_enrolment_and_last_step(store: Store) -> None:
    async with store.transaction() as tx:
        user = await users(tx).add("amaru", Role.admin, PASSWORD)
        await users(tx).set_totp(user.user_id, b"s" * 20)
        await users(tx).use_totp_step(user.user_id, 1234)
    async with store.read() as tx:
        enrolled = await users(tx).get(user.user_id)
    assert (enrolled.totp_secret, enrolled.totp_last_step) == (b"s" * 20, 1234)
    async with store.transaction() as tx:
        await users(tx).set_totp(user.user_id, None)
    async with store.read() as tx:
        removed = await users(tx).get(user.user_id)
    assert (removed.has_totp, removed.totp_last_step) == (False, None)


async def test_role_password_language_and_admin_count(store: Store) -> None:
    async with store.transaction() as tx:
        admin = await users(tx).add("amaru", Role.admin, PASSWORD)
        editor = await users(tx).add("beatriz", Role.editor, PASSWORD)
        await users(tx).set_role(editor.user_id, Role.admin)
        await users(tx).set_disabled(admin.user_id, True)
        await users(tx).set_password(editor.user_id, {**PASSWORD, "hash": "bmV3"},
                                     must_change=True)
        await users(tx).set_language(editor.user_id, "fr")
        assert await users(tx).count_active_admins() == 1
    async with store.read() as tx:
        changed = await users(tx).get(editor.user_id)
    assert (changed.role, changed.password["hash"], changed.must_change_password,
            changed.language) == (Role.admin, "bmV3", True, "fr")


async def test_old_sessions_are_removed(store: Store) -> None:
    async with store.transaction() as tx:
        user = await users(tx).add("dina", Role.viewer, PASSWORD)
        token = await users(tx).start_session(user.user_id)
    async with store.transaction() as tx:
        assert await users(tx).end_sessions_before(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert await users(tx).end_sessions_before(datetime.now(UTC) + timedelta(hours=1)) == 1
    async with store.read() as tx:
        assert await users(tx).session(token) is None


async def test_unknown_user_is_a_typed_error(store: Store) -> None:
    async with store.read() as tx:
        with pytest.raises(RecordNotFound):
            await users(tx).get("0" * 32)
