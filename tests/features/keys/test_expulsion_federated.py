"""Quorum expulsion of an infiltrated member (issue M13), four members on two homeservers.

Below the threshold nothing happens; at it, every member refuses the member's keys, nothing
is sealed to it any more, and its node account is removed from the coalition room. Coming
back is an ordinary invite of a new node with new keys (a new org id and safety code).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from node.core.coalition import invite_member, join_coalition
from node.core.runtime import open_node
from node.core.store import Role
from tests.support.api_harness import SAMPLE_CASES, RunningApi, WallClock
from tests.support.sharing import (
    ORGS,
    eventually,
    form_coalition,
    member_running,
    new_member,
    passphrase_env,
)


async def _share(sender: RunningApi, key: str, recipients: list[str], *,
                 expect: int = 200) -> str:
    made = await sender.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)
    await sender.json("POST", f"/cases/{made['record_id']}/share",
                      json={"recipients": recipients, "fields": ["country"]}, expect=expect)
    return str(made["record_id"])


async def _received(api: RunningApi, issuer: str, record_id: str) -> bool:
    answer = await api.call("GET", f"/received/{issuer}/{record_id}", Role.viewer)
    return answer.status == 200


async def test_a_quorum_expels_an_infiltrated_member_and_not_before(
    federation: Federation, tmp_path: Path
) -> None:
    orgs = [*ORGS, ("Infiltrada Asociación", "PE")]
    configs = [await new_member(federation[i % 2], tmp_path / f"org{i}", name, country)
               for i, (name, country) in enumerate(orgs)]
    await form_coalition(configs)  # the first member creates the coalition room
    async with AsyncExitStack() as stack:
        a, b, c, x = [await stack.enter_async_context(member_running(cfg, clock=WallClock()))
                      for cfg in configs]
        x_org = x.node.org_id
        x_user = (await x.node.matrix_login()).user_id

        proposed = await a.json("POST", "/expulsions", Role.admin, expect=201,
                                json={"org_id": x_org, "reason": "shares our cases outside"})
        assert proposed["applied"] is False
        pending = proposed["pending"]
        assert pending["signers"] == [a.node.org_id] and pending["threshold"] == 2
        await a.json("POST", "/expulsions", Role.editor, expect=403,
                     json={"org_id": x_org, "reason": "x"})
        await a.json("POST", "/expulsions", Role.admin, expect=422,
                     json={"org_id": a.node.org_id, "reason": "x"})

        # Below the threshold nothing happens: X still shares and receives.
        async def b_sees_the_proposal() -> bool:
            listed = (await b.json("GET", "/expulsions", Role.viewer))["expulsions"]
            return [p["proposal"] for p in listed] == [pending["proposal"]]

        await eventually(b_sees_the_proposal, what="B reading the proposal")
        before = await _share(x, "nairobi", [b.node.org_id])
        async def arrived() -> bool:
            return await _received(b, x_org, before)

        await eventually(arrived, what="X's record at B")
        await _share(b, "cauca", [x_org])

        answer = await b.json("POST", "/expulsions/approve", Role.admin,
                              json={"proposal": pending["proposal"]})
        assert answer["applied"] is True and answer["pending"] is None

        async def expelled_at(member: RunningApi) -> bool:
            listed = (await member.json("GET", "/members", Role.viewer))["members"]
            return next(m for m in listed if m["org_id"] == x_org)["revoked_at"] is not None

        for member in (a, b, c):
            async def applied_here(m: RunningApi = member) -> bool:
                return await expelled_at(m)

            await eventually(applied_here, what="the expulsion applied")
            applied = (await member.json("GET", "/revocations", Role.viewer))["revocations"]
            assert [(r["org_id"], r["expulsion"], r["reason"]) for r in applied] == [
                (x_org, True, "shares our cases outside")]
        # Nothing is sealed to it any more; what it signs is refused with the reason.
        await _share(c, "minsk", [x_org], expect=422)
        after = await _share(x, "addis", [b.node.org_id])

        async def refused() -> bool:
            # B removed X from their pair room (B made it), so X's homeserver refuses the post;
            # had it got in, B would quarantine it for the revoked key.
            items = (await b.json("GET", "/quarantine", Role.admin))["items"]
            error = (await x.json("GET", "/status", Role.viewer))["sync"]["outbox_error"]
            return (any("revoked" in item["detail"] for item in items)
                    or "not in room" in (error or ""))

        await eventually(refused, what="X's new record refused")
        assert not await _received(b, x_org, after)

        # Its node account is out of the coalition room (A, the creator, removed it).
        (coalition,) = await a.node.coalitions()
        room = coalition.room_id

        async def removed() -> bool:
            async with a.node.transport() as transport:
                state = await transport.room_state(room)
            return any(e.type == "m.room.member" and e.state_key == x_user
                       and e.content.get("membership") == "leave" for e in state)

        await eventually(removed, what="X's account removed from the coalition room")

        # Re-admission: a new node (new keys, a new org id), invited like any new member.
        old_code = next(m for m in (await a.json("GET", "/members", Role.viewer))["members"]
                        if m["org_id"] == x_org)["safety_code"]
        again_cfg = await new_member(federation[1], tmp_path / "again", *orgs[3])
        with passphrase_env():
            async with open_node(again_cfg) as again_node:
                again_org = again_node.org_id
                again_code = again_node.keys.public().safety_code()
                await invite_member(a.node, (await again_node.matrix_login()).user_id)
                await join_coalition(again_node, room)
        assert again_org != x_org and again_code != old_code

        async def readmitted() -> dict[str, object] | None:
            listed = (await b.json("GET", "/members", Role.viewer))["members"]
            return next((m for m in listed if m["org_id"] == again_org
                         and m["revoked_at"] is None), None)

        seen = await eventually(readmitted, what="the new node verified at B")
        assert seen["safety_code"] == again_code  # what the members compare out of band
        assert await expelled_at(b)  # the old identity stays revoked
        again = await stack.enter_async_context(member_running(again_cfg, clock=WallClock()))
        welcome = await _share(b, "minsk", [again_org])
        back = await _share(again, "cauca", [b.node.org_id])

        async def both_arrived() -> bool:
            return (await _received(again, b.node.org_id, welcome)
                    and await _received(b, again_org, back))

        await eventually(both_arrived, what="shares to and from the re-admitted member")
