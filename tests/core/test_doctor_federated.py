"""``minga doctor``'s federation check: each member's homeserver reached over federation by
ours, on real federating Synapse servers (one stopped, then shut out by a whitelist)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.homeserver import Federation, start_federation
from node.assembly import node_registry
from node.core.coalition import create_coalition, invite_member, join_coalition
from node.core.doctor import Level
from node.core.doctor_probe import homeserver_findings, run_doctor
from tests.support.nodes import PASSPHRASE, create_node, opened


@pytest.fixture
def own_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    servers = start_federation(tmp_path_factory.mktemp("doctor-federation"), 2)
    try:
        yield servers
    finally:
        servers.stop()


async def test_doctor_names_a_member_server_its_homeserver_cannot_reach(
    own_federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    config_a = await create_node(own_federation[0], tmp_path / "a", "Colectivo Norte", "CO")
    config_b = await create_node(own_federation[1], tmp_path / "b", "Haki Ardhi", "KE")
    async with opened(config_a, config_b) as (a, b):
        first = await create_coalition(a, "Minga", node_registry().after_coalition_created)
        await invite_member(a, (await b.matrix_login()).user_id)
        await join_coalition(b, first.room_id, wait_seconds=30)
        # a second coalition, made on the member's server (decision 0032)
        second = await create_coalition(b, "Red Sur", node_registry().after_coalition_created)
        await invite_member(b, (await a.matrix_login()).user_id, second.coalition_id)
        await join_coalition(a, second.room_id, wait_seconds=30)
        # the start-up check: the node account is no admin, so only the rate limit is unknown
        assert [(f.check, f.level) for f in await homeserver_findings(a)] \
            == [("rate limit", Level.warning)]

    findings = await run_doctor(config_a, [])
    assert [f.check for f in findings] == ["rate limit"]

    member_server = own_federation[1].server_name
    own_federation[1].stop()
    findings = await run_doctor(config_a, [])
    [unreachable] = [f for f in findings if f.check == "federation"]
    assert unreachable.level is Level.problem
    assert f"cannot reach {member_server}" in unreachable.message
    assert "8448" in unreachable.fix

    # our homeserver's federation_domain_whitelist now shuts the member's server out
    ours = own_federation[0]
    ours.stop()
    ours.state.federation_whitelist = [ours.server_name]
    ours.write_config()
    ours.start()
    findings = await run_doctor(config_a, [])
    [denied] = [f for f in findings if f.check == "federation"]
    assert f"refuses to federate with {member_server}" in denied.message
    assert "federation_domain_whitelist" in denied.fix

    # this node's account left the second coalition's room behind the store's back: doctor
    # checks each coalition, and says which room it cannot read
    async with opened(config_a) as (a,), a.transport() as transport:
        await transport.leave(second.room_id)
    findings = await run_doctor(config_a, [])
    lost = [f for f in findings if f.check == "federation" and "cannot list" in f.message]
    assert [second.coalition_id in f.message for f in lost] == [True]
