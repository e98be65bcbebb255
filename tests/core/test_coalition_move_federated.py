"""The coalition moves to a new room when its room's creator is no longer trusted (M13,
decision 0025): three members on real homeservers.

(a) The creator is expelled by quorum: the designated member makes a new room, the other
member follows, both keep sharing there and the roster is read there; the expelled account is
not in the new room and both members left the old one, so nothing it posts there reaches them.
(b) Move statements from a member that is not the designated one, or that do not verify, are
refused and audited; the designated member's staff can move the coalition after a seizure; a
member whose node was offline follows through its invite even when the old creator account
erased the statement in the old room; the creator, restored elsewhere on a new account, gets
back in through the new room.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation
from federation.coalition_move import CREATOR_REVOKED, CREATOR_SEIZED, build_move
from federation.roster import MEMBER_EVENT_TYPE
from federation.transport import MatrixTransport, TimelineEvent
from node.cli import main
from node.core.cli_support import unix_now
from node.core.coalition import MOVE_EVENT_TYPE, REVOCATION_EVENT_TYPE, invite_member
from node.core.coalition_move import (
    MOVE_MADE,
    MOVE_REFUSED,
    MOVED,
    join_coalition_room,
)
from node.core.runtime import Node, open_node
from node.core.sharing import share_in_room
from node.core.status import node_status, render_status
from node.core.store import Role
from node.features.backup.service import create_backup
from node.features.dedup.service import key_state
from schemas.case import Case
from schemas.ids import new_record_id
from schemas.records import build_record
from tests.support.api_harness import PASSPHRASE, SAMPLE_CASES, RunningApi, WallClock
from tests.support.restore import restore_on_new_account
from tests.support.sharing import (
    ORGS,
    arrives_verified,
    eventually,
    form_coalition,
    member_running,
    members_on,
    new_member,
    passphrase_env,
)


async def _state(node: Node, room: str) -> list[TimelineEvent]:
    async with node.transport() as transport:
        return await transport.room_state(room)


def _membership(state: list[TimelineEvent], user: str) -> str | None:
    return next((str(e.content.get("membership")) for e in state
                 if e.type == "m.room.member" and e.state_key == user), None)


async def _room_of(node: Node) -> str | None:
    """The room of the node's one coalition (every node here is in one), None if none."""
    coalitions = await node.coalitions()
    assert len(coalitions) <= 1
    return coalitions[0].room_id if coalitions else None


async def _share_in_coalition_room(sender: RunningApi, to: str) -> tuple[str, str]:
    """A record shared in the sender's coalition room: (record id, room)."""
    room = await _room_of(sender.node)
    assert room is not None
    case = Case.model_validate(SAMPLE_CASES["cauca"])
    record = build_record(sender.node.org_id, case, record_id=new_record_id(),
                          issued_at=int(time.time()))
    await share_in_room(sender.node, [record], [to], room, ["country"], actor="test",
                        issued_at=int(time.time()))
    return record.record_id, room


async def _moved_to(api: RunningApi, old_room: str) -> str | None:
    room = await _room_of(api.node)
    return room if room not in (None, old_room) else None


async def _audited(api: RunningApi, action: str) -> list[dict[str, Any]]:
    async with api.node.store.read() as tx:
        return [{"target": e.target, **(e.details or {})} for e in await tx.audit.recent()
                if e.action == action]


async def test_an_expelled_creator_leaves_the_coalition_behind_in_its_old_room(
    federation: Federation, tmp_path: Path
) -> None:
    orgs = [("Infiltrada Asociación", "PE"), *ORGS[:2]]
    configs = [await new_member(federation[i % 2], tmp_path / f"org{i}", name, country)
               for i, (name, country) in enumerate(orgs)]
    old_room = await form_coalition(configs)  # X, the one to be expelled, makes the room
    async with AsyncExitStack() as stack:
        x, p, q = [await stack.enter_async_context(member_running(cfg, clock=WallClock()))
                   for cfg in configs]
        x_org, x_user = x.node.org_id, (await x.node.matrix_login()).user_id
        mover, other = sorted((p, q), key=lambda api: api.node.org_id)

        proposed = await other.json("POST", "/expulsions", Role.admin, expect=201,
                                    json={"org_id": x_org, "reason": "shares our cases"})
        key = proposed["pending"]["proposal"]

        async def mover_sees_it() -> bool:
            listed = (await mover.json("GET", "/expulsions", Role.viewer))["expulsions"]
            return key in [p["proposal"] for p in listed]

        await eventually(mover_sees_it, what="the proposal at the designated member")
        answer = await mover.json("POST", "/expulsions/approve", Role.admin,
                                  json={"proposal": key})
        assert answer["applied"] is True

        async def both_moved() -> str | None:
            rooms = {await _moved_to(api, old_room) for api in (mover, other)}
            return rooms.pop() if len(rooms) == 1 else None

        new_room = await eventually(both_moved, what="both members in the same new room")
        assert new_room is not None

        # The move is audited with ids only; the designated member made it.
        made = await _audited(mover, MOVE_MADE)
        followed = await _audited(other, MOVED)
        assert [(m["old_room"], m["new_room"], m["departed"], m["reason"]) for m in made] == \
            [(old_room, new_room, x_org, CREATOR_REVOKED)]
        assert [(f["mover"], f["new_room"]) for f in followed] == \
            [(mover.node.org_id, new_room)]
        status = await other.json("GET", "/status", Role.viewer)
        assert status["coalition_room_id"] == new_room
        # the coalition keeps its id, the room it was made in (decision 0032)
        assert [(c["coalition_id"], c["room_id"]) for c in status["coalitions"]] == [
            (old_room, new_room)]

        # The new room: both members' entries, posted by their own accounts; not X.
        new_state = await _state(mover.node, new_room)
        entries = {e.state_key: e.sender for e in new_state if e.type == MEMBER_EVENT_TYPE}
        accounts = {api.node.org_id: (await api.node.matrix_login()).user_id
                    for api in (mover, other)}
        assert entries == accounts
        assert _membership(new_state, x_user) is None
        # X's expulsion is carried over, for members that join later.
        assert [(e.state_key or "").split("/")[0] for e in new_state
                if e.type == REVOCATION_EVENT_TYPE] == [x_org]
        create = next(e for e in new_state if e.type == "m.room.create")
        assert create.sender == accounts[mover.node.org_id]
        # Both left the old room, where X keeps creator power: what X posts there reaches no
        # one. (X's own node, applying its expulsion, removed X's account too.)
        for api in (mover, other):
            async with api.node.transport() as transport:
                assert old_room not in await transport.joined_rooms()

        # Sharing in the coalition room goes on in the new one, both ways.
        for sender, to in ((other, mover), (mover, other)):
            record_id, room = await _share_in_coalition_room(sender, to.node.org_id)
            assert room == new_room
            await arrives_verified(to, sender.node.org_id, record_id)

        # The roster is read in the new room: members stay verified, X stays revoked.
        async def roster_read() -> bool:
            listed = {m["org_id"]: m for m in
                      (await other.json("GET", "/members", Role.viewer))["members"]}
            rejected = (await other.json("GET", "/status", Role.viewer))[
                "rejected_roster_entries"]
            return (listed[mover.node.org_id]["revoked_at"] is None
                    and listed[x_org]["revoked_at"] is not None and rejected == [])

        await eventually(roster_read, what="the roster at the other member")

        # The linkage key X issued is replaced by the designated member's (decision 0023),
        # which both hold.
        async def one_new_key() -> bool:
            held = [await key_state(api.node) for api in (mover, other)]
            return (all(k is not None and k.issuer == mover.node.org_id for k in held)
                    and len({k.key_id for k in held if k is not None}) == 1)

        await eventually(one_new_key, what="the designated member's linkage key at both")

        # X, expelled, signs a move of the coalition into a room it makes and invites both
        # there: its account is no member node's, so neither joins, and neither follows.
        async with x.node.transport() as transport:
            trap = await transport.create_room()
            statement = build_move(x.node.keys, new_room, trap, mover.node.org_id,
                                   CREATOR_REVOKED, int(time.time()))
            await transport.put_state(trap, MOVE_EVENT_TYPE, "", statement)
            for user in accounts.values():
                await transport.invite(trap, user)
        # One more share after the invites went out: by then both nodes handled them.
        record_id, _ = await _share_in_coalition_room(other, mover.node.org_id)
        await arrives_verified(mover, other.node.org_id, record_id)
        for api in (mover, other):
            assert await _room_of(api.node) == new_room
            async with api.node.transport() as transport:
                assert trap not in await transport.joined_rooms()


async def _forge_in(transport: MatrixTransport, node: Node, room: str, reason: Any, *,
                    departed: str) -> str:
    """A room ``node`` makes, and a move statement to it signed by ``node`` posted in ``room``."""
    target = await transport.create_room()
    statement = build_move(node.keys, room, target, departed, reason, int(time.time()))
    await transport.put_state(room, MOVE_EVENT_TYPE, "", statement)
    return target




async def test_forged_moves_are_refused_and_a_seized_creator_comes_back_through_the_new_room(
    federation3: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = await members_on([federation3[0], federation3[1], federation3[0]], tmp_path)
    creator_cfg = configs[0]
    old_room = await form_coalition(configs)  # the first member makes the coalition room
    backup = tmp_path / "creator.mingabackup"
    with passphrase_env():
        orgs = {}
        for cfg in configs[1:]:
            async with open_node(cfg) as node:
                orgs[cfg] = node.org_id
    mover_cfg, other_cfg = sorted(configs[1:], key=lambda cfg: orgs[cfg])
    async with AsyncExitStack() as stack:
        mover = await stack.enter_async_context(member_running(mover_cfg, clock=WallClock()))
        async with (member_running(other_cfg, clock=WallClock()) as other,
                    member_running(creator_cfg, clock=WallClock()) as creator):
            creator_org = creator.node.org_id
            old_user = (await creator.node.matrix_login()).user_id
            before, _ = await _share_in_coalition_room(creator, mover.node.org_id)
            await arrives_verified(mover, creator_org, before)
            create_backup(creator_cfg, backup, PASSPHRASE, created_at=unix_now())

            # A member that is not the designated one signs a move: refused by the others.
            async with other.node.transport() as transport:
                await _forge_in(transport, other.node, old_room, CREATOR_SEIZED,
                                departed=creator_org)
            for api in (mover, creator):
                await _refusal(api, "not the one designated")
            # The designated member's account posts a statement that does not verify.
            async with mover.node.transport() as transport:
                target = await transport.create_room()
                signed = build_move(mover.node.keys, old_room, target, creator_org,
                                    CREATOR_SEIZED, int(time.time()))
                await transport.put_state(old_room, MOVE_EVENT_TYPE, "",
                                          {**signed, "new_room": "!elsewhere:example.org"})
                for api in (other, creator):
                    await _refusal(api, "signature does not verify")
                unsigned = {k: v for k, v in signed.items() if k != "signature"}
                await transport.put_state(old_room, MOVE_EVENT_TYPE, "", unsigned)
                for api in (other, creator):
                    await _refusal(api, "malformed move statement")
            for api in (mover, other, creator):
                assert await _room_of(api.node) == old_room
                assert await _audited(api, MOVED) == []
            refusals_before = len(await _audited(other, MOVE_REFUSED))
        # The creator's machine is seized; the other member's node is offline a while. The
        # members know of the seizure out of band; the designated member's staff move the
        # coalition with `minga coalition move` while its node runs.
        with passphrase_env():
            assert await asyncio.to_thread(main, [
                "--config", str(mover_cfg), "coalition", "move", "--creator-seized"]) == 0
        new_room = capsys.readouterr().out.split("the coalition moved to ")[1].split(";")[0]
        assert new_room.startswith("!") and new_room != old_room

        async def mover_switched() -> bool:  # the running node, in another Node than the CLI's
            return await _room_of(mover.node) == new_room

        await eventually(mover_switched, what="the running designated node in the new room")
        # Whoever holds the old creator account overwrites the statement in the old room: the
        # other member's node follows through the invite into the new room, where it is too.
        with passphrase_env():
            async with open_node(creator_cfg) as seized, seized.transport() as transport:
                await transport.put_state(old_room, MOVE_EVENT_TYPE, "", {"type": "nothing"})
        other = await stack.enter_async_context(member_running(other_cfg, clock=WallClock()))

        async def followed() -> bool:
            return await _room_of(other.node) == new_room

        await eventually(followed, what="the other member in the new room")
        assert len(await _audited(other, MOVE_REFUSED)) == refusals_before + 1  # the junk
        assert _membership(await _state(mover.node, new_room), old_user) is None

        # The creator is restored elsewhere on a new account, with new keys.
        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        assert (restored.status)["sync"]["held_rooms"] == [old_room]
        # A member compares the new safety code and invites the new account into the new room
        # (the designated member made it, so it may); the restored node joins it.
        await invite_member(mover.node, moved.user_id)
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                await join_coalition_room(node, new_room)
                assert await _room_of(node) == new_room
                status = await node_status(node)
                assert status["sync"]["held_rooms"] == []  # the old room is no longer held
                assert (status["coalition"]["coalition_id"],
                        status["coalition"]["room_id"]) == (old_room, new_room)
                assert f"id {old_room} room {new_room}" in render_status(status)

        back = await stack.enter_async_context(member_running(restored.config_file,
                                                              clock=WallClock()))

        async def known_anew() -> bool:
            listed = {m["org_id"]: m for m in
                      (await other.json("GET", "/members", Role.viewer))["members"]}
            return bool(listed[creator_org]["safety_code"] == moved.safety_code)

        await eventually(known_anew, what="the restored creator's new entry at the other member")
        welcome, room = await _share_in_coalition_room(other, creator_org)
        assert room == new_room
        await arrives_verified(back, other.node.org_id, welcome)
        reply, room = await _share_in_coalition_room(back, other.node.org_id)
        assert room == new_room
        await arrives_verified(other, creator_org, reply)


async def _refusal(api: RunningApi, reason: str) -> None:
    async def audited() -> bool:
        return any(reason in str(r.get("reason")) for r in await _audited(api, MOVE_REFUSED))

    await eventually(audited, what=f"a refused move statement ({reason})")
