"""Nothing lost, nothing duplicated: the recipient's homeserver down while records are shared,
the recipient's node killed (SIGKILL) in the middle of ingesting, the sender's node killed in
the middle of sending. Real homeservers, real ``minga run`` processes for the killed nodes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import pytest

from deploy.homeserver import Federation, start_federation
from federation.sealing import parse_envelope
from node.core.runtime import Node, open_node
from node.core.sharing import share_many_from_node
from node.core.store import Role
from node.core.store.database import DATABASE_FILE_NAME
from node.features.cases.casebook import add_case, stored_record
from schemas.case import Case
from schemas.records import CaseRecord
from sync.frame import SEALED_EVENT_TYPE, BlobRef, envelope_from_blob, parse_content
from tests.support.api_harness import RunningApi
from tests.support.sharing import (
    ORGS,
    NodeProcess,
    eventually,
    form_coalition,
    member_running,
    new_member,
    passphrase_env,
    received,
)

FIELDS = ["country", "incident_date", "violations", "narrative", "victims.name"]


def numbered_case(number: int) -> Case:
    return Case.model_validate({
        "incident_date": "2024-03",
        "country": "KE",
        "narrative": f"Caso número {number}: la reunión comunitaria fue dispersada.",
        "violations": ["harassment"],
        "victims": [{"kind": "individual", "name": f"Persona inventada {number}",
                     "groups": ["defender"]}],
        "consent_level": "coalition",
        "risk_level": "medium",
    })


async def add_cases(node: Node, count: int, first: int = 0) -> list[CaseRecord]:
    async with node.store.transaction() as tx:
        stored = [await add_case(tx, issuer=node.org_id, case=numbered_case(first + i),
                                 author="test", issued_at=int(time.time()))
                  for i in range(count)]
    return [stored_record(case) for case in stored]


async def share_all(node: Node, records: list[CaseRecord], to: str) -> None:
    """Share in one transaction, as an import or a bulk share does."""
    await share_many_from_node(node, records, [to], FIELDS, actor="test",
                               issued_at=int(time.time()))


def exactly_once(items: list[dict[str, Any]], expected: int) -> None:
    ids = [item["record_id"] for item in items]
    assert len(ids) == expected and len(set(ids)) == expected
    assert all(item["version"] == 1 and not item["retracted"] for item in items)


@pytest.fixture
def own_federation(tmp_path: Path) -> Iterator[Federation]:
    servers = start_federation(tmp_path / "federation", 2)
    try:
        yield servers
    finally:
        servers.stop()


async def _pair(federation: Federation, tmp_path: Path) -> tuple[Path, Path]:
    a = await new_member(federation[0], tmp_path / "a", *ORGS[0])
    b = await new_member(federation[1], tmp_path / "b", *ORGS[1])
    await form_coalition([a, b])
    return a, b


async def _first_share(a: RunningApi, b_org: str, receiver: Any) -> None:
    """One share, so the pair room exists and the recipient has joined it."""
    (record,) = await add_cases(a.node, 1, first=100_000)
    await share_all(a.node, [record], b_org)
    await eventually(lambda: receiver(1), what="the first shared record at B")


async def test_recipient_homeserver_down_while_200_records_are_shared(
    own_federation: Federation, tmp_path: Path
) -> None:
    config_a, config_b = await _pair(own_federation, tmp_path)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(member_running(config_a))
        b = await stack.enter_async_context(member_running(config_b))
        b_org = b.node.org_id

        async def b_has(count: int) -> bool:
            return len(await received(b)) >= count

        await _first_share(a, b_org, b_has)
        own_federation[1].stop()
        for start in range(0, 200, 50):  # shared in several goes while B's server is away
            await share_all(a.node, await add_cases(a.node, 50, first=start), b_org)
        await eventually(lambda: _outbox_empty(a), what="A's homeserver took everything")
        assert len(await received(b)) == 1
        own_federation[1].start()
        await eventually(lambda: b_has(201), timeout=180, what="all 201 records at B")
        exactly_once(await received(b), 201)
        status = await b.json("GET", "/status", Role.viewer)
        assert status["received_record_count"] == len(await received(b, kind=None))
        assert status["sync"]["quarantined"] == 0


async def _outbox_empty(api: RunningApi) -> bool:
    sync = (await api.json("GET", "/status", Role.viewer))["sync"]
    return sync["outbox_queued"] == 0 and sync["outbox_unsent_frames"] == 0


async def _admin_token(config: Path) -> str:
    with passphrase_env():
        async with open_node(config) as node, node.store.transaction() as tx:
            return await tx.tokens.create("tester", Role.admin)


async def _process(config: Path, log: Path) -> tuple[NodeProcess, str]:
    token = await _admin_token(config)
    with passphrase_env():
        async with open_node(config) as node:
            http = node.config.http
    return NodeProcess(config, f"http://{http.host}:{http.port}/api/v1", log), token


async def _count(process: NodeProcess, token: str) -> int:
    status = await process.call("GET", "/status", token)
    return cast(int, status["received_record_count"])


async def test_recipient_node_killed_while_ingesting_1000_records(
    federation: Federation, tmp_path: Path
) -> None:
    config_a, config_b = await _pair(federation, tmp_path)
    b_process, token = await _process(config_b, tmp_path / "b.log")
    b_process.start()
    try:
        await b_process.ready(token)
        async with member_running(config_a) as a:
            b_org = (await b_process.call("GET", "/status", token))["org_id"]

            async def b_has(count: int) -> bool:
                return await _count(b_process, token) >= count

            await _first_share(a, b_org, b_has)
            records = await add_cases(a.node, 1000)
            sharing = asyncio.create_task(_share_slowly(a.node, records, b_org))
            seen = await eventually(lambda: _between(b_process, token, 50, 900),
                                    timeout=120, what="B in the middle of ingesting")
            b_process.kill()
            await sharing
            assert 50 <= seen < 1001
            b_process.start()
            await b_process.ready(token)
            await eventually(lambda: b_has(1001), timeout=180, what="all 1001 records at B")
            items = await _all_received(b_process, token)
            exactly_once(items, 1001)
            status = await b_process.call("GET", "/status", token)
            assert status["sync"]["quarantined"] == 0
    finally:
        b_process.stop()


async def _share_slowly(node: Node, records: list[CaseRecord], to: str) -> None:
    for start in range(0, len(records), 25):
        await share_all(node, records[start:start + 25], to)
        await asyncio.sleep(0.1)


async def _between(process: NodeProcess, token: str, low: int, high: int) -> int | None:
    count = await _count(process, token)
    return count if low <= count <= high else None


async def _all_received(process: NodeProcess, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = await process.call("GET", f"/received?kind=case&limit=100&offset={offset}", token)
        items += page["items"]
        offset = page["next_offset"]
    return items


def _frames(database: Path) -> tuple[int, int, int]:
    """(sent frames, frames not yet sent, records queued but not yet in a frame) in A's store,
    counting only the pair room with B (the coalition room also carries, e.g., linkage keys)."""
    pair_rooms = "SELECT room_id FROM pair_rooms"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        sent, unsent = connection.execute(
            "SELECT count(event_id), count(*) - count(event_id) FROM sync_frames"
            f" WHERE room_id IN ({pair_rooms})").fetchone()
        (queued,) = connection.execute(
            "SELECT count(*) FROM sync_outbox_items WHERE frame_id IS NULL"
            f" AND room_id IN ({pair_rooms})").fetchone()
    return int(sent), int(unsent), int(queued)


async def test_sender_node_killed_while_sending_sends_every_record_exactly_once(
    federation: Federation, tmp_path: Path
) -> None:
    config_a, config_b = await _pair(federation, tmp_path)
    a_process, token = await _process(config_a, tmp_path / "a.log")
    async with member_running(config_b) as b:
        b_org = b.node.org_id

        async def b_has(count: int) -> bool:
            return len(await received(b)) >= count

        with passphrase_env():  # queue everything while A is not running
            async with open_node(config_a) as a_node:
                (first,) = await add_cases(a_node, 1, first=100_000)
                await share_all(a_node, [first], b_org)
        a_process.start()
        try:
            await eventually(lambda: b_has(1), what="the first record at B")
            a_process.stop()
            with passphrase_env():
                async with open_node(config_a) as a_node:
                    await share_all(a_node, await add_cases(a_node, 1000), b_org)
            database = config_a.parent / DATABASE_FILE_NAME
            before = _frames(database)[0]
            a_process.start()
            state = await _mid_send(database, before)
            a_process.kill()
            assert state[0] > before and (state[1] or state[2])
            a_process.start()
            await a_process.ready(token)
            await eventually(lambda: b_has(1001), timeout=180, what="all 1001 records at B")
            exactly_once(await received(b), 1001)
            await eventually(lambda: _idle(database), what="A has nothing left to send")
        finally:
            a_process.stop()
        sent, unsent, queued = _frames(database)
        assert (unsent, queued) == (0, 0)
        sealed = await _sealed_events(b, b_org)
        seqs = [envelope.context["seq"] for envelope in sealed]
        assert len(seqs) == sent and sorted(seqs) == list(range(1, sent + 1))
        assert (await b.json("GET", "/status", Role.viewer))["sync"]["quarantined"] == 0


async def _mid_send(database: Path, before: int) -> tuple[int, int, int]:
    """Poll A's store until a frame was sent and more are still to go."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            state = _frames(database)
        except sqlite3.OperationalError:  # the node is still migrating or holds a lock
            state = (before, 1, 1)
        if state[0] > before and (state[1] or state[2]):
            return state
        await asyncio.sleep(0.005)
    raise AssertionError("never saw A in the middle of sending")


async def _idle(database: Path) -> bool:
    _, unsent, queued = _frames(database)
    return unsent == 0 and queued == 0


async def _sealed_events(b: RunningApi, b_org: str) -> list[Any]:
    """Every envelope A posted in the pair room (not counting answered resend requests)."""
    async with b.node.store.read() as tx:
        from node.core.store.pair_rooms import PairRoomRepository

        (room,) = [p.room_id for p in await PairRoomRepository(tx.session).all()]
    envelopes = []
    async with b.node.transport() as transport:
        token: str | None = None
        while True:
            events, token = await transport.messages(room, token, limit=100)
            for event in events:
                if event.type == SEALED_EVENT_TYPE and "resend" not in event.content:
                    content = parse_content(event.content)
                    if isinstance(content, BlobRef):  # a backlog travels in blobs
                        data = await transport.download(content.url, max_bytes=content.size)
                        content = envelope_from_blob(content, data)
                    envelopes.append(parse_envelope(content))
            if not events or token is None:
                break
    return envelopes
