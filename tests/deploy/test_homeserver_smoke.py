"""The harness works: real Synapse servers, alone and federated over TLS, carry custom events."""

from __future__ import annotations

import nio

from deploy.homeserver import Federation, Homeserver
from tests.support.matrix_client import events_of_type, logged_in, wait_for_invite

CONTENT = {
    "text": "Defensora — مدافعة — tagapagtanggol — mtetezi",
    "count": 42,
    "nested": {"flags": [True, False, None], "empty": {}},
}


async def _invite_join_send(host_a: Homeserver, host_b: Homeserver) -> dict[str, object]:
    account_a = host_a.create_account("alice")
    account_b = host_b.create_account("bob")
    async with logged_in(account_a) as alice, logged_in(account_b) as bob:
        created = await alice.room_create(name="smoke", invite=[account_b.user_id])
        assert isinstance(created, nio.RoomCreateResponse), created
        await wait_for_invite(bob, created.room_id)
        joined = await bob.join(created.room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        sent = await alice.room_send(created.room_id, "org.minga.test", CONTENT)
        assert isinstance(sent, nio.RoomSendResponse), sent
        (event,) = await events_of_type(bob, created.room_id, "org.minga.test", 1)
    assert event["sender"] == account_a.user_id
    assert event["event_id"] == sent.event_id
    content: dict[str, object] = event["content"]
    return content


async def test_custom_event_on_one_homeserver(homeserver: Homeserver) -> None:
    assert await _invite_join_send(homeserver, homeserver) == CONTENT


async def test_custom_event_across_federation(federation: Federation) -> None:
    host_a, host_b = federation[0], federation[1]
    assert host_a.server_name != host_b.server_name
    assert await _invite_join_send(host_a, host_b) == CONTENT


async def test_three_servers_federate(federation3: Federation) -> None:
    names = {server.server_name for server in federation3}
    assert len(names) == 3
    assert await _invite_join_send(federation3[2], federation3[0]) == CONTENT
