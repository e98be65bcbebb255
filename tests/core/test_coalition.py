"""Three member nodes on two federated homeservers form a coalition and verify each other."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from deploy.homeserver import Federation
from federation.identity import OrgKeys
from federation.roster import MEMBER_EVENT_TYPE, member_entry
from node.assembly import node_registry
from node.core.coalition import (
    create_coalition,
    invite_member,
    join_coalition,
    refresh_roster,
    roster_rejections,
)
from node.core.federation_loop import run_federation
from node.core.runtime import Node
from node.core.status import node_status, render_status
from schemas.payloads import OrgProfile
from tests.support.nodes import PASSPHRASE, create_node, opened

ORGS = [("Corporación Tierra Viva", "CO", 0), ("Haki Ardhi Trust", "KE", 0),
        ("Bantay Katutubo", "PH", 1)]


async def _members(node: Node) -> dict[str, bool]:
    async with node.store.read() as tx:
        return {m.org_id: m.verified for m in await tx.orgs.members()}


async def test_three_nodes_form_a_coalition_and_reject_a_forged_entry(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    configs = [
        await create_node(federation[server], tmp_path / f"org{i}", name, country)
        for i, (name, country, server) in enumerate(ORGS)
    ]
    async with opened(*configs) as (a, b, c):
        room = (await create_coalition(a, "Minga Andes–África–Asia",
                                       node_registry().after_coalition_created)).room_id
        for other in (b, c):
            await invite_member(a, (await other.matrix_login()).user_id)
            await join_coalition(other, room, wait_seconds=30)

        everyone = {a.org_id, b.org_id, c.org_id}
        async with a.transport() as ta, b.transport() as tb, c.transport() as tc:
            for node, transport in ((a, ta), (b, tb), (c, tc)):
                report = await _eventually_all_members(node, transport, room, everyone)
                assert {m.org_id for m in report} == everyone
                assert await _members(node) == dict.fromkeys(everyone, True)

            # B posts a roster entry for an org whose signature does not verify.
            forged_keys = OrgKeys.generate()
            forged = member_entry(forged_keys, OrgProfile(name="Falsa", country="CO"),
                                  tb.user_id)
            forged["profile"]["name"] = "Falsa pero otra"
            await tb.put_state(room, MEMBER_EVENT_TYPE, forged_keys.org_id, forged)
            for node, transport in ((a, ta), (c, tc)):
                report = await _eventually_rejected(node, transport, room, forged_keys.org_id)
                assert "signature" in report
                assert forged_keys.org_id not in await _members(node)

        status = await node_status(c)
        assert {m["org_id"] for m in status["members"]} == everyone
        assert status["coalition"]["name"] == "Minga Andes–África–Asia"
        text = render_status(status)
        assert "Haki Ardhi Trust" in text and "ignored entry" in text


async def _eventually_all_members(node: Node, transport: object, room: str,
                                  everyone: set[str]) -> list[object]:
    for _ in range(60):
        report = await refresh_roster(node, transport, room)  # type: ignore[arg-type]
        if {m.org_id for m in report.members} == everyone:
            return list(report.members)
        await asyncio.sleep(0.5)
    raise AssertionError("the roster never showed all three members")


async def _eventually_rejected(node: Node, transport: object, room: str, org_id: str) -> str:
    for _ in range(60):
        await refresh_roster(node, transport, room)  # type: ignore[arg-type]
        for rejected in await roster_rejections(node):
            if rejected["state_key"] == org_id:
                return rejected["reason"]
        await asyncio.sleep(0.5)
    raise AssertionError("the forged entry was never reported")


async def test_running_loop_learns_of_a_member_that_joins_later(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    config_a = await create_node(federation[0], tmp_path / "a", "Defensoras del Río", "CO")
    config_b = await create_node(federation[1], tmp_path / "b", "Sauti ya Pwani", "KE")
    async with opened(config_a, config_b) as (a, b):
        room = (await create_coalition(a, "Coalición",
                                       node_registry().after_coalition_created)).room_id
        async with a.transport() as transport:
            loop = asyncio.create_task(run_federation(a, transport, node_registry()))
            try:
                await invite_member(a, (await b.matrix_login()).user_id)
                await join_coalition(b, room, wait_seconds=30)
                for _ in range(60):
                    if b.org_id in await _members(a):
                        break
                    await asyncio.sleep(0.5)
                assert (await _members(a)).get(b.org_id) is True
            finally:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
