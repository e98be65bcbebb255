"""Encryption at rest: the database file never holds names, places, narratives or keys."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    CaseIndex,
    CiphertextRejected,
    Role,
    Store,
    WrongPassphrase,
    create_data_key,
    open_store,
    unlock_data_key,
)
from node.core.store.database import DATABASE_FILE_NAME
from tests.support.postgres import PostgresServer
from tests.support.stores import database_content

PASSPHRASE = "un largo camino ✊ 2025"

# Distinctive content in several scripts: none of it may appear in the database files.
SECRETS = [
    "Ximena Quispe Huamaní",
    "Vereda La Esperanza, Cauca",
    "Los hombres armados llegaron de noche",
    "Wanjiru Nyambura Kamau",
    "Mathare Valley, Nairobi",
    "Juan dela Cruz Bautista",
    "Barangay San Isidro, Bukidnon",
    "عائشة بنت خالد الحربي",
    "Дмитрий Александрович Соколов",
    "阿兰·李明辉",
    "ኃይለ ማርያም ደሳለኝ",
    "ஆனந்த் கிருஷ்ணன்",
    "Story of impact: the community radio went silent",
    "Staffer Aurelio Pantaleón",
    "Colectivo Raíces del Río",
    "Haki Watetezi Alliance",
    "PRIVATE-KEY-MATERIAL-7f3a9c",
]


def case_document(n: int) -> dict[str, object]:
    return {
        "narrative": f"{SECRETS[2]} ({n})",
        "place": SECRETS[1] if n % 2 else SECRETS[4],
        "victims": [
            {"name": SECRETS[0]},
            {"name": SECRETS[7]},
            {"name": SECRETS[8]},
            {"name": SECRETS[9]},
            {"name": SECRETS[10]},
            {"name": SECRETS[11]},
            {"name": SECRETS[3]},
            {"name": SECRETS[5], "place": SECRETS[6]},
        ],
        "story_of_impact": SECRETS[12],
    }


def database_bytes(data_dir: Path) -> bytes:
    """The main file and any write-ahead log or shared-memory file next to it."""
    return b"".join(
        path.read_bytes()
        for path in sorted(data_dir.glob(DATABASE_FILE_NAME + "*"))
        if path.is_file()
    )


def encodings(text: str) -> list[bytes]:
    return [text.encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be")]


def leaked(data_dir: Path) -> list[str]:
    content = database_bytes(data_dir)
    return [text for text in SECRETS if any(form in content for form in encodings(text))]


async def fill(store: Store) -> list[str]:
    record_ids = [str(uuid.uuid4()) for _ in range(6)]
    async with store.transaction() as tx:
        for n, record_id in enumerate(record_ids):
            await tx.cases.add(record_id, case_document(n), CaseIndex(country="CO"), SECRETS[13])
        await tx.cases.update(record_ids[0], case_document(99), CaseIndex(), SECRETS[13])
        await tx.orgs.save_own("orga", SECRETS[14], "CO", SECRETS[16].encode(), {"sig": "pub"})
        await tx.orgs.save_member(
            "orgb",
            {"profile": {"name": SECRETS[15]}},
            verified=True,
            safety_code="1234",
            matrix_user_id="@b:hs.local",
        )
        await tx.received.add(
            "orgb", str(uuid.uuid4()), 1, "case", {"name": SECRETS[3]}, "verified"
        )
        await tx.audit.append(
            SECRETS[13], "case.share", target=record_ids[0], details={"recipient_note": SECRETS[15]}
        )
        await tx.tokens.create(SECRETS[13], Role.editor)
    return record_ids


def test_the_check_itself_finds_plaintext(tmp_path: Path) -> None:
    """Guard against a check that cannot fail: plain SQLite does show these strings."""
    with sqlite3.connect(tmp_path / DATABASE_FILE_NAME) as connection:
        connection.execute("CREATE TABLE t (v TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [(s,) for s in SECRETS])
    assert leaked(tmp_path) == SECRETS


async def test_no_content_in_the_database_files(tmp_path: Path) -> None:
    store = await open_store(tmp_path, create_data_key(tmp_path, PASSPHRASE, FAST_TEST_PARAMS))
    await fill(store)
    assert (tmp_path / (DATABASE_FILE_NAME + "-wal")).stat().st_size > 0
    assert leaked(tmp_path) == []  # while open, with content still in the write-ahead log
    await store.close()
    assert leaked(tmp_path) == []  # after the log was folded into the file
    assert SECRETS[0].encode() not in (tmp_path / "store.key").read_bytes()


async def test_copied_data_directory_needs_the_passphrase(tmp_path: Path) -> None:
    store = await open_store(tmp_path, create_data_key(tmp_path, PASSPHRASE, FAST_TEST_PARAMS))
    record_ids = await fill(store)
    await store.close()
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        unlock_data_key(tmp_path, "guess")
    reopened = await open_store(tmp_path, unlock_data_key(tmp_path, PASSPHRASE))
    async with reopened.read() as tx:
        case = await tx.cases.get(record_ids[1])
    await reopened.close()
    assert case.document == case_document(1)


def ciphertexts(data_dir: Path, record_id: str) -> list[bytes]:
    with sqlite3.connect(data_dir / DATABASE_FILE_NAME) as connection:
        rows = connection.execute(
            "SELECT document, author FROM case_versions WHERE record_id = ?", (record_id,)
        ).fetchall()
    return [value for row in rows for value in row]


def fragments(values: list[bytes]) -> list[bytes]:
    """32-byte pieces of each value: long values are split over pages in the file."""
    return [value[i : i + 32] for value in values for i in range(0, len(value) - 32, 256)]


async def test_deleted_case_content_is_gone_from_the_files(tmp_path: Path) -> None:
    store = await open_store(tmp_path, create_data_key(tmp_path, PASSPHRASE, FAST_TEST_PARAMS))
    record_ids = await fill(store)
    deleted, kept = record_ids[0], record_ids[1]
    async with store.transaction() as tx:  # a long version spills into overflow pages
        long_document = {"annexes": [case_document(n) for n in range(40)]}
        await tx.cases.update(deleted, long_document, CaseIndex(), SECRETS[13])
    doomed, surviving = ciphertexts(tmp_path, deleted), ciphertexts(tmp_path, kept)
    assert len(doomed) == 6  # three versions, document and author each
    found = [piece for piece in fragments(doomed) if piece in database_bytes(tmp_path)]
    assert len(found) > 0.9 * len(fragments(doomed))  # pieces across a page border are not

    async with store.transaction() as tx:
        await tx.cases.delete(deleted)

    content = database_bytes(tmp_path)
    assert [piece for piece in fragments(doomed) if piece in content] == []
    assert all(value in content for value in surviving)  # short values sit in one page
    await store.close()


def swap_documents(data_dir: Path, first: str, second: str) -> None:
    with sqlite3.connect(data_dir / DATABASE_FILE_NAME) as connection:
        (a,) = connection.execute(
            "SELECT document FROM case_versions WHERE record_id = ?", (first,)
        ).fetchone()
        (b,) = connection.execute(
            "SELECT document FROM case_versions WHERE record_id = ?", (second,)
        ).fetchone()
        for record_id, document in ((first, b), (second, a)):
            connection.execute(
                "UPDATE case_versions SET document = ? WHERE record_id = ?", (document, record_id)
            )


async def test_ciphertext_swapped_between_rows_is_detected(tmp_path: Path) -> None:
    key = create_data_key(tmp_path, PASSPHRASE, FAST_TEST_PARAMS)
    store = await open_store(tmp_path, key)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with store.transaction() as tx:
        await tx.cases.add(first, {"name": SECRETS[0]}, CaseIndex(), "ana")
        await tx.cases.add(second, {"name": SECRETS[3]}, CaseIndex(), "ana")
    await store.close()
    swap_documents(tmp_path, first, second)

    store = await open_store(tmp_path, key)
    with pytest.raises(CiphertextRejected, match="moved from another row") as raised:
        async with store.read() as tx:
            await tx.cases.get(first)
    await store.close()
    assert "case_versions.document" in str(raised.value)
    assert SECRETS[0] not in str(raised.value) and SECRETS[3] not in str(raised.value)


def _found(content: bytes) -> list[str]:
    return [text for text in SECRETS if any(form in content for form in encodings(text))]


async def test_a_postgresql_administrator_sees_ciphertext_only(
        postgres: PostgresServer, tmp_path: Path) -> None:
    location = postgres.new_database()
    store = await open_store(location, create_data_key(tmp_path, PASSPHRASE, FAST_TEST_PARAMS))
    try:
        await fill(store)
        assert _found(await database_content(store, location)) == []
        # The same look does find what the store did not encrypt, in either kind of column.
        async with store.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE plain (b bytea, t text)"))
            await connection.execute(text("INSERT INTO plain VALUES (:b, :t)"),
                                     {"b": SECRETS[0].encode(), "t": SECRETS[1]})
        assert _found(await database_content(store, location)) == SECRETS[:2]
    finally:
        await store.close()
