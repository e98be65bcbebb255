"""A node in several coalitions (decision 0032), without a homeserver: which coalition an
action goes to, ``minga coalition list|leave`` and the other commands' ``--coalition``,
``minga status``, and pending expulsion proposals kept per coalition room."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from federation.identity import OrgKeys, sign_member_entry
from federation.roster import MEMBER_EVENT_TYPE, member_entry
from federation.secretbox import FAST_TEST_PARAMS
from federation.transport import MatrixTransport, TimelineEvent
from node.cli import main
from node.core.api.answers import sharing_answers
from node.core.api.framework import ApiError
from node.core.coalition import EXPULSIONS_SETTING, refresh_roster, roster_rejections
from node.core.coalition_move import _roster
from node.core.expulsion import approve_expulsion, pending_by_room, pending_expulsions
from node.core.runtime import CoalitionNotChosen, Node, NodeNotReady, open_node
from node.core.status import node_status, render_status
from node.core.store import create_data_key, open_store, unlock_data_key
from schemas.payloads import OrgProfile
from tests.support.api_harness import PASSPHRASE
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node, passphrase_in_environment

FIRST, SECOND, LEFT = "!first:hs", "!second:hs", "!left:hs"


@pytest.fixture
async def node(store_location: Path | str, tmp_path: Path) -> AsyncIterator[Node]:
    store = await open_store(store_location, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    try:
        yield Node(config=cast(Any, None), store=store, keys=cast(Any, None),
                   own=cast(Any, None))
    finally:
        await store.close()


async def test_the_coalition_an_action_goes_to_is_named_or_the_only_one(node: Node) -> None:
    with pytest.raises(CoalitionNotChosen, match="in no coalition yet"):
        await node.chosen_coalition(None)
    async with node.store.transaction() as tx:
        await in_coalition(tx, coalition_id=LEFT)
        await tx.coalitions.mark_left(LEFT)
        first = await in_coalition(tx, coalition_id=FIRST, room_id="!first-room:hs")
    with pytest.raises(CoalitionNotChosen, match="in no coalition yet"):
        await node.chosen_coalition(None)  # read before: the node caches its coalitions
    node.forget_coalitions()
    assert await node.chosen_coalition(None) == first
    assert await node.chosen_coalition(FIRST) == first
    assert await node.coalition_of_room("!first-room:hs") == first
    assert await node.coalition_of_room(FIRST) is None
    for unknown in (LEFT, "!unknown:hs", "!first-room:hs"):  # left, never in, a room not an id
        with pytest.raises(CoalitionNotChosen, match="in no coalition"):
            await node.chosen_coalition(unknown)
    async with node.store.transaction() as tx:
        second = await in_coalition(tx, coalition_id=SECOND)
    node.forget_coalitions()
    with pytest.raises(CoalitionNotChosen, match=f"several coalitions; name one of {FIRST},"
                                                 f" {SECOND}") as error:
        await node.chosen_coalition(None)
    assert isinstance(error.value, NodeNotReady)  # the commands say it as they say the others
    assert str(error.value).startswith("coalition: ")  # the field the API names
    assert await node.chosen_coalition(SECOND) == second
    assert [c.coalition_id for c in await node.coalitions()] == [FIRST, SECOND]


# --- pending expulsions, per coalition room ----------------------------------------------------


def _proposal(key: str) -> dict[str, Any]:
    return {"key": key, "target": "o-target", "reason": "r", "proposer": "o-proposer",
            "signers": ["o-proposer"], "threshold": 2, "revoked_at": 1}


def test_pending_proposals_saved_before_several_coalitions_are_the_first_ones() -> None:
    assert pending_by_room([_proposal("k")], "!room:hs") == {"!room:hs": [_proposal("k")]}
    assert pending_by_room([_proposal("k")], None) == {}
    saved = {"!a:hs": [_proposal("a")], "!b:hs": []}
    assert pending_by_room(saved, "!room:hs") == saved
    for nonsense in (None, "x", 3):
        assert pending_by_room(nonsense, "!room:hs") == {}


async def test_pending_expulsions_name_their_room_and_only_coalitions_the_node_is_in(
        node: Node) -> None:
    async with node.store.transaction() as tx:
        await in_coalition(tx, coalition_id=FIRST, room_id="!first-room:hs")
        await in_coalition(tx, coalition_id=SECOND, room_id="!second-room:hs")
        await in_coalition(tx, coalition_id=LEFT, room_id="!left-room:hs")
        await tx.coalitions.mark_left(LEFT)
        await tx.settings.set(EXPULSIONS_SETTING, {
            "!second-room:hs": [_proposal("s1"), _proposal("s2")],
            "!first-room:hs": [_proposal("f1")],
            "!left-room:hs": [_proposal("gone")],
            "!old-room:hs": [_proposal("moved-away")]})
    pending = await pending_expulsions(node)
    assert [(p.key, p.room_id) for p in pending] == [
        ("f1", "!first-room:hs"), ("s1", "!second-room:hs"), ("s2", "!second-room:hs")]
    with pytest.raises(ValueError, match="no pending expulsion proposal"):
        await approve_expulsion(node, "gone", actor="t")


async def test_a_pending_list_from_before_is_read_as_the_first_coalitions(node: Node) -> None:
    async with node.store.transaction() as tx:
        await in_coalition(tx, coalition_id=FIRST, room_id="!first-room:hs")
        await in_coalition(tx, coalition_id=SECOND)
        await tx.settings.set(EXPULSIONS_SETTING, [_proposal("old")])
    assert [(p.key, p.room_id) for p in await pending_expulsions(node)] == [
        ("old", "!first-room:hs")]


# --- the commands --------------------------------------------------------------------------


async def _with_coalitions(config: Path) -> None:
    """Two coalitions, the first with a member beside this node, and one left."""
    directory = config.parent
    store = await open_store(directory, unlock_data_key(directory, PASSPHRASE))
    try:
        async with store.transaction() as tx:
            own = await tx.orgs.own()
            assert own is not None
            await in_coalition(tx, own.org_id, "o-member", coalition_id=FIRST,
                               room_id="!first-room:hs", name="Red Norte")
            await in_coalition(tx, own.org_id, coalition_id=SECOND, name=None)
            await in_coalition(tx, own.org_id, coalition_id=LEFT, name="Antigua")
            await tx.coalitions.mark_left(LEFT)
    finally:
        await store.close()


async def _member_of_first(config: Path) -> str:
    """A verified member, in the first coalition only; its org id."""
    directory = config.parent
    keys = OrgKeys.generate()
    store = await open_store(directory, unlock_data_key(directory, PASSPHRASE))
    try:
        async with store.transaction() as tx:
            await tx.orgs.save_member(
                keys.org_id, sign_member_entry(keys, {"name": "m", "country": "KE"}),
                verified=True, safety_code="s", matrix_user_id="@m:hs")
            await in_coalition(tx, keys.org_id, coalition_id=FIRST)
    finally:
        await store.close()
    return keys.org_id


def _run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    with passphrase_in_environment():
        status = main(["--config", str(config), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_coalition_list_shows_every_coalition_and_those_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = await make_offline_node(tmp_path / "node")
    status, out, _ = await asyncio.to_thread(_run, capsys, config, "coalition", "list")
    assert status == 0 and "in no coalition yet" in out
    status, out, _ = await asyncio.to_thread(_run, capsys, config, "coalition", "list", "--json")
    assert status == 0 and json.loads(out) == []
    await _with_coalitions(config)
    status, out, _ = await asyncio.to_thread(_run, capsys, config, "coalition", "list")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 3
    assert lines[0].startswith(FIRST) and "Red Norte" in lines[0] and lines[0].endswith("member")
    assert lines[1].startswith(SECOND) and "(unnamed)" in lines[1]
    assert lines[2].startswith(LEFT) and "Antigua" in lines[2] and " left 20" in lines[2]
    status, out, _ = await asyncio.to_thread(_run, capsys, config, "coalition", "list", "--json")
    listed = json.loads(out)
    assert [(c["coalition_id"], c["room_id"], c["name"], c["left_at"] is None)
            for c in listed] == [(FIRST, "!first-room:hs", "Red Norte", True),
                                 (SECOND, SECOND, None, True), (LEFT, LEFT, "Antigua", False)]


async def test_commands_in_one_coalition_need_it_named_when_there_are_several(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = await make_offline_node(tmp_path / "node")
    await _with_coalitions(config)
    member = await _member_of_first(config)
    for args in (["coalition", "invite", "@x:hs"],
                 ["coalition", "move", "--creator-seized"],
                 ["coalition", "propose-expulsion", member, "--reason", "r"]):
        status, _, err = await asyncio.to_thread(_run, capsys, config, *args)
        assert status == 2, args
        assert f"several coalitions; name one of {FIRST}, {SECOND}" in err
    for args in (["coalition", "invite", "@x:hs", "--coalition", LEFT],
                 ["coalition", "move", "--creator-seized", "--coalition", "!nope:hs"]):
        status, _, err = await asyncio.to_thread(_run, capsys, config, *args)
        assert status == 2 and "this node is in no coalition" in err, args
    # an expulsion is proposed only where the organisation is a member
    status, _, err = await asyncio.to_thread(_run, capsys, config, "coalition",
                                             "propose-expulsion", member, "--reason", "r",
                                             "--coalition", SECOND)
    assert status == 2 and f"org_id: not a member of coalition {SECOND}" in err


async def test_leave_needs_the_id_of_a_coalition_the_node_is_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = await make_offline_node(tmp_path / "node")
    await _with_coalitions(config)
    with pytest.raises(SystemExit) as usage:
        await asyncio.to_thread(_run, capsys, config, "coalition", "leave")
    assert usage.value.code == 2 and "ID" in capsys.readouterr().err
    for unknown in (LEFT, "!nope:hs", "!first-room:hs"):
        status, out, err = await asyncio.to_thread(_run, capsys, config, "coalition", "leave",
                                                   unknown)
        assert status == 2 and f"this node is in no coalition {unknown!r}" in err
        assert "left coalition" not in out
    status, out, _ = await asyncio.to_thread(_run, capsys, config, "coalition", "list", "--json")
    assert [c["left_at"] is None for c in json.loads(out)] == [True, True, False]


async def test_status_lists_each_coalition_with_its_members_or_when_it_was_left(
        tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(config) as node:
            empty = await node_status(node)
    assert empty["coalitions"] == [] and empty["coalition"] is None
    assert "Coalitions     none yet (minga coalition create|join)" in render_status(empty)
    await _with_coalitions(config)
    with passphrase_in_environment():
        async with open_node(config) as node:
            status = await node_status(node)
    assert status["coalition"] == {"coalition_id": FIRST, "room_id": "!first-room:hs",
                                   "name": "Red Norte"}  # the first active one, as before
    assert [(c["coalition_id"], c["members"]) for c in status["coalitions"]] == [
        (FIRST, 2), (SECOND, 1), (LEFT, 1)]
    lines = render_status(status).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Coalitions"))
    first, second, left = lines[start:start + 3]
    assert first == f"Coalitions     Red Norte (2 members) id {FIRST} room !first-room:hs"
    assert second == f"               (unnamed) (1 members) id {SECOND} room {SECOND}"
    assert left.startswith("               Antigua (left 20") and f"id {LEFT}" in left
    assert lines[start + 3].startswith("Cases")


# --- each coalition room's roster ------------------------------------------------------------


class _Rooms:
    """Room state as the homeserver would give it; nothing else is asked of it here."""

    def __init__(self, states: dict[str, list[TimelineEvent]]) -> None:
        self.states = states

    async def room_state(self, room_id: str) -> list[TimelineEvent]:
        return self.states[room_id]


def _entry_event(room: str, keys: OrgKeys, user: str, content: dict[str, Any] | None = None
                 ) -> TimelineEvent:
    entry = member_entry(keys, OrgProfile(name="n", country="KE"), user) \
        if content is None else content
    return TimelineEvent(room, f"${keys.org_id[:6]}", user, MEMBER_EVENT_TYPE, entry, 1,
                         keys.org_id)


async def test_each_coalition_room_has_its_roster_and_its_ignored_entries(
        store_location: Path | str, tmp_path: Path) -> None:
    own, member, forger = OrgKeys.generate(), OrgKeys.generate(), OrgKeys.generate()
    forged = member_entry(forger, OrgProfile(name="Falsa", country="CO"), "@f:hs")
    forged["profile"]["name"] = "Falsa pero otra"
    rooms = _Rooms({
        "!a:hs": [_entry_event("!a:hs", own, "@own:hs"), _entry_event("!a:hs", member, "@m:hs"),
                  _entry_event("!a:hs", forger, "@f:hs", forged)],
        "!b:hs": [_entry_event("!b:hs", own, "@own:hs"),
                  _entry_event("!b:hs", member, "@m:hs", {})],  # withdrawn: it left B
    })
    store = await open_store(store_location, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    node = Node(config=cast(Any, None), store=store, keys=own, own=cast(Any, None))
    try:
        async with store.transaction() as tx:
            await in_coalition(tx, coalition_id="!a:hs")
            await in_coalition(tx, coalition_id="!b:hs")
        transport = cast(MatrixTransport, rooms)
        for room in ("!a:hs", "!b:hs", "!a:hs"):
            await refresh_roster(node, transport, room)
        async with store.read() as tx:
            memberships = await tx.coalitions.memberships()
            audited = [e for e in await tx.audit.recent() if e.action == "roster.reject"]
        assert memberships == {"!a:hs": {own.org_id, member.org_id}, "!b:hs": {own.org_id}}
        assert [e.target for e in audited] == [forger.org_id]  # said once, not per room read
        assert [r["state_key"] for r in await roster_rejections(node)] == [forger.org_id]
        async with store.transaction() as tx:
            await tx.coalitions.mark_left("!a:hs")
        node.forget_coalitions()
        assert await roster_rejections(node) == []  # only the coalitions it is in
    finally:
        await store.close()


def test_an_unchosen_coalition_is_an_answer_naming_the_field() -> None:
    with pytest.raises(ApiError) as answer, sharing_answers():
        raise CoalitionNotChosen("coalition: this node is in several coalitions; name one")
    assert (answer.value.status, answer.value.code) == (422, "invalid")
    assert [(f.field, f.problem) for f in answer.value.fields] == [
        ("body.coalition", "coalition: this node is in several coalitions; name one")]


async def test_a_coalitions_roster_for_a_move_counts_revocations_from_anywhere(
        store_location: Path | str, tmp_path: Path) -> None:
    """An expelled creator's entry no longer counts in the room's roster; its room must still
    be left: the move sees it revoked (keys are one per organisation)."""
    own, member, elsewhere, expelled = (OrgKeys.generate() for _ in range(4))
    store = await open_store(store_location, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    node = Node(config=cast(Any, None), store=store, keys=own, own=cast(Any, None))
    try:
        async with store.transaction() as tx:
            for keys in (own, member, elsewhere, expelled):
                await tx.orgs.save_member(
                    keys.org_id, sign_member_entry(keys, {"name": "n", "country": "KE"}),
                    verified=True, safety_code="s", matrix_user_id=f"@{keys.org_id[:6]}:hs")
            await in_coalition(tx, own.org_id, member.org_id, coalition_id=FIRST)
            await in_coalition(tx, own.org_id, elsewhere.org_id, coalition_id=SECOND)
            assert await tx.orgs.mark_revoked(expelled.org_id, 1_700_000_000)
        _, members, accounts, revoked = await _roster(node, "@own-now:hs", FIRST)
    finally:
        await store.close()
    assert members == sorted([own.org_id, member.org_id])
    assert accounts == {own.org_id: "@own-now:hs", member.org_id: f"@{member.org_id[:6]}:hs"}
    assert revoked == {expelled.org_id}
