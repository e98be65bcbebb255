"""Key rotation in a live coalition on two federated homeservers (issue M13).

A rotates its keys through the API while B runs and C is stopped. Records A signed before the
rotation keep verifying (C, starting afterwards, takes them after learning of the rotation),
records after it verify with the new key everywhere, shares to A are sealed to A's new key,
envelopes sealed to A's old key still open, and B is asked to compare A's new safety code.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from federation.sealing import open_envelope
from node.core.store import Role
from node.core.sync_host import NodeSyncHost
from sync.frame import SEALED_EVENT_TYPE, parse_content
from tests.support.api_harness import RunningApi, WallClock
from tests.support.sharing import (
    eventually,
    form_coalition,
    member_running,
    members_on,
    quarantined_count,
    share_case,
)


async def received_from(api: RunningApi, issuer: str, record_id: str) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        answer = await api.call("GET", f"/received/{issuer}/{record_id}", Role.viewer)
        return await answer.json() if answer.status == 200 else None

    return await eventually(arrived, what=f"{record_id} from {issuer}")


async def test_rotation_keeps_old_signatures_and_moves_new_shares_to_the_new_keys(
    federation: Federation, tmp_path: Path
) -> None:
    configs = await members_on([federation[0], federation[1], federation[0]], tmp_path)
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(member_running(configs[0], clock=WallClock()))
        b = await stack.enter_async_context(member_running(configs[1], clock=WallClock()))
        a_org, b_org = a.node.org_id, b.node.org_id
        async with member_running(configs[2], clock=WallClock()) as c_first:
            c_org = c_first.node.org_id
        before_a = await share_case(a, "nairobi", [b_org, c_org])  # C is stopped
        before_b = await share_case(b, "cauca", [a_org])
        await received_from(b, a_org, before_a)
        await received_from(a, b_org, before_b)
        old_code = a.node.keys.public().safety_code()
        old_encryption_kid = a.node.keys.encryption_kid

        rotated = await a.json("POST", "/keys/rotate", Role.admin)
        assert rotated["published"] is True and rotated["safety_code"] != old_code
        keys_view = await a.json("GET", "/keys", Role.admin)
        assert [r["kid"] for r in keys_view["rotations"]] == [rotated["kid"]]
        assert keys_view["rotations"][0]["effective_at"].endswith("Z")
        await a.json("POST", "/keys/rotate", Role.editor, expect=403)

        async def b_sees_new_code() -> dict[str, Any] | None:
            members = (await b.json("GET", "/members", Role.viewer))["members"]
            found = next(m for m in members if m["org_id"] == a_org)
            return found if found["safety_code"] == rotated["safety_code"] else None

        seen = await eventually(b_sees_new_code, what="B learning A's rotation")
        assert seen["previous_safety_code"] == old_code
        assert seen["safety_code_changed_at"] is not None

        after_a = await share_case(a, "minsk", [b_org, c_org])
        assert (await received_from(b, a_org, after_a))["verification"] == "verified"
        after_b = await share_case(b, "addis", [a_org])
        await received_from(a, b_org, after_b)

        # Shares to A after the rotation are sealed to its new key; the old ones still open.
        rooms = {(await b.json("GET", f"/cases/{record}/shares"))["entries"][0]["room_id"]
                 for record in (before_b, after_b)}  # one pair room, unless both made one
        events = []
        async with a.node.transport() as transport:
            for room in rooms:
                events += (await transport.messages(room, None, limit=50))[0]
        envelopes = [parse_content(e.content) for e in events if e.type == SEALED_EVENT_TYPE
                     and e.content.get("envelope", {}).get("sender") == b_org]
        slots = [{slot["kid"] for slot in env["recipients"]} for env in envelopes
                 if isinstance(env, dict)]
        assert {old_encryption_kid} in slots and {a.node.keys.encryption_kid} in slots
        a_trust = await (await NodeSyncHost.for_sending(a.node)).trust()
        for envelope in envelopes:
            assert isinstance(envelope, dict)
            assert open_envelope(envelope, a.node.keys, a_trust.resolver).payload

        # C starts only now: the record A signed before the rotation still verifies.
        c = await stack.enter_async_context(member_running(configs[2], clock=WallClock()))
        assert (await received_from(c, a_org, before_a))["verification"] == "verified"
        assert (await received_from(c, a_org, after_a))["verification"] == "verified"
        for node in (a, b, c):
            assert await quarantined_count(node) == 0

        compared = await b.json("POST", f"/members/{a_org}/safety-code-compared", Role.editor)
        assert compared == {"org_id": a_org, "safety_code": rotated["safety_code"]}
        members = (await b.json("GET", "/members", Role.viewer))["members"]
        assert next(m for m in members if m["org_id"] == a_org)["safety_code_changed_at"] is None
        await b.json("POST", f"/members/{a_org}/safety-code-compared", Role.editor, expect=404)
