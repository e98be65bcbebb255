"""The Matrix transport against a real homeserver: idempotent sends, state, gaps, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from deploy.homeserver import Account, Homeserver
from federation.transport import MatrixLogin, MatrixTransport, TransportError


def _login(account: Account) -> MatrixLogin:
    return MatrixLogin(account.homeserver_url, account.user_id, account.device_id,
                       account.access_token)


@pytest.fixture
async def pair(homeserver: Homeserver) -> AsyncIterator[tuple[MatrixTransport, MatrixTransport]]:
    a = MatrixTransport(_login(homeserver.create_account("ta")))
    b = MatrixTransport(_login(homeserver.create_account("tb")))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_retried_send_with_same_transaction_id_is_one_event(
    pair: tuple[MatrixTransport, MatrixTransport],
) -> None:
    a, _ = pair
    room = await a.create_room(name="t")
    first = await a.send(room, "org.minga.test", {"n": 1}, txn_id="txn-1")
    again = await a.send(room, "org.minga.test", {"n": 1}, txn_id="txn-1")
    other = await a.send(room, "org.minga.test", {"n": 1}, txn_id="txn-2")
    assert first == again != other


async def test_custom_state_is_visible_to_a_joining_member(
    pair: tuple[MatrixTransport, MatrixTransport],
) -> None:
    a, b = pair
    room = await a.create_room(invite=[b.user_id])
    await a.put_state(room, "org.minga.member", "org1", {"name": "Org One", "n": 7})
    await b.join(room)
    state = [e for e in await b.room_state(room) if e.type == "org.minga.member"]
    assert [(e.state_key, e.content) for e in state] == [("org1", {"name": "Org One", "n": 7})]
    batch = await b.sync(None)
    seen = batch.rooms[room].state + batch.rooms[room].events
    assert any(e.type == "org.minga.member" and e.state_key == "org1" for e in seen)


async def test_limited_timeline_gap_is_filled_by_pagination(
    pair: tuple[MatrixTransport, MatrixTransport],
) -> None:
    a, b = pair
    room = await a.create_room(invite=[b.user_id])
    await b.join(room)
    since = (await b.sync(None)).next_batch
    for n in range(25):
        await a.send(room, "org.minga.test", {"n": n}, txn_id=f"gap-{n}")
    batch = await b.sync(since, timeline_limit=10)
    update = batch.rooms[room]
    assert update.limited
    assert [e.content["n"] for e in update.events] == list(range(15, 25))
    collected: list[int] = []
    token = update.prev_batch
    while len(collected) < 15:
        page, token = await b.messages(room, token, limit=7)
        assert page, "pagination ended before the gap was filled"
        collected = [e.content["n"] for e in page if e.type == "org.minga.test"] + collected
    assert collected[-15:] == list(range(15))


async def test_errors_name_the_operation(pair: tuple[MatrixTransport, MatrixTransport]) -> None:
    a, _ = pair
    with pytest.raises(TransportError, match="join failed"):
        await a.join("!doesnotexist")


async def test_a_rate_limited_account_is_told_how_an_admin_lifts_the_limit(
    homeserver: Homeserver,
) -> None:
    account = homeserver.create_account("throttled")
    admin = homeserver.create_account("rl-admin", admin=True)
    homeserver.request(  # a limit for this account, as Synapse's defaults would apply
        "POST", f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit",
        {"messages_per_second": 1, "burst_count": 1}, access_token=admin.access_token)
    transport = MatrixTransport(_login(account), max_retries=0)
    try:
        room = await transport.create_room(name="t")
        with pytest.raises(TransportError) as caught:
            for n in range(20):
                await transport.send(room, "org.minga.test", {"n": n}, txn_id=f"rl-{n}")
    finally:
        await transport.close()
    assert caught.value.status == "M_LIMIT_EXCEEDED"
    assert "override_ratelimit" in str(caught.value)
    assert '"messages_per_second": 0' in str(caught.value)


async def test_media_reserved_first_is_waited_for_and_never_overwritten(
    pair: tuple[MatrixTransport, MatrixTransport],
) -> None:
    """An address reserved before its bytes exist: a download asked for meanwhile waits for
    the upload; a second upload to it is refused; the account can hold only a few."""
    a, b = pair
    reserved = await a.create_media()
    assert reserved.startswith("mxc://")
    waiting = asyncio.create_task(b.download(reserved, max_bytes=100))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await a.upload_to(reserved, b"sealed part")
    assert await waiting == b"sealed part"
    with pytest.raises(TransportError) as again:
        await a.upload_to(reserved, b"something else")
    assert again.value.status == "M_CANNOT_OVERWRITE_MEDIA"
    assert await b.download(reserved, max_bytes=100) == b"sealed part"
    with pytest.raises(TransportError) as too_many:
        for _ in range(10):
            await a.create_media()
    assert too_many.value.status == "M_LIMIT_EXCEEDED"
