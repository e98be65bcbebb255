"""Bad envelopes posted into the rooms directly are quarantined with the right reason, and the
inbox keeps delivering the good ones that follow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from federation.canonical import canonical_json
from federation.encoding import b64u_decode, b64u_encode
from federation.identity import OrgKeys
from federation.sealing import seal
from sync.frame import (
    RESEND_EVENT_TYPE,
    SEALED_EVENT_TYPE,
    blob_bytes,
    blob_content,
    bundle,
    chain_context,
    inline_content,
)
from sync.quarantine import count_by_reason, count_quarantined, list_quarantined
from tests.support.sync import (
    Member,
    eventually,
    members,
    record_token,
    running,
    shared_room,
)


def _sealed(sender: OrgKeys, member: Member, recipients: list[Member], room: str,
            seq: int = 999) -> dict[str, Any]:
    keys = [member.host.trust_view.recipient_key(m.org_id) for m in recipients]
    return seal(bundle([record_token(sender)]), sender, keys, 1_700_000_000,
                context=chain_context(room, seq, "")).to_wire()


def _flipped(envelope: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(b64u_decode(envelope["ciphertext"]))
    raw[10] ^= 1
    return {**envelope, "ciphertext": b64u_encode(bytes(raw))}


async def _received(member: Member, expected: int) -> bool:
    return len(await member.host.received()) >= expected


async def _quarantine_size(member: Member, expected: int) -> bool:
    return len(await member.host.quarantined()) >= expected


async def test_injected_envelopes_are_quarantined_and_good_ones_still_arrive(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1]), ("c", federation[1])]
    async with members(tmp_path, placements) as (a, b, c):
        room = await shared_room(a, b, c)
        pair = await shared_room(a, b)
        b.host.pair_rooms.add(pair)
        await a.share(room, [record_token(a.keys)], [b.org_id])
        async with running(a.engine, b.engine):
            await eventually(lambda: _received(b, 1), what="the first record at B")
        [(first_content,)] = await a.host.query("SELECT content FROM sync_frames")
        stranger = OrgKeys.generate()
        good = _sealed(a.keys, b, [b], room)
        half = dict(list(good.items())[: len(good) // 2])
        blob = blob_bytes(_sealed(a.keys, b, [b], room))
        url = await a.transport.upload(blob)
        forged_blob = blob_content(url, blob + b" ")
        forged_blob["blob"]["size"] = len(blob)
        injected = {
            "bad-signature": (a, SEALED_EVENT_TYPE, inline_content(_flipped(good))),
            "malformed": (a, SEALED_EVENT_TYPE, inline_content(half)),
            "replayed": (a, SEALED_EVENT_TYPE, json.loads(first_content)),
            "sender-not-trusted": (a, SEALED_EVENT_TYPE,
                                   inline_content(_sealed(stranger, b, [b], room))),
            "wrong-sender": (c, SEALED_EVENT_TYPE, inline_content(good)),
            "wrong-room": (a, SEALED_EVENT_TYPE,
                           inline_content(_sealed(a.keys, b, [b], "!elsewhere:test"))),
            "tampered": (a, SEALED_EVENT_TYPE, forged_blob),
            "not-a-sealed-event": (a, SEALED_EVENT_TYPE, {"body": "hello"}),
            "bad-resend-request": (a, RESEND_EVENT_TYPE, {"issuer": a.org_id, "ranges": "all"}),
        }
        expected: dict[str, str] = {}
        for name, (poster, event_type, content) in injected.items():
            event_id = await poster.transport.send(room, event_type, content, f"inject-{name}")
            expected[event_id] = _reason(name)
        # Through A's own outbox: a bundle with records A may not pass on (C's; one for C, one
        # for a list of audiences without B), one for a list with B, and an envelope for C in
        # the pair room with B (where every envelope must be for B).
        tokens = [record_token(a.keys), record_token(c.keys),
                  record_token(a.keys, audience=c.org_id),
                  record_token(a.keys, audience=[c.org_id, a.org_id]),
                  record_token(a.keys, audience=[c.org_id, b.org_id]), record_token(a.keys)]
        await a.share(room, tokens, [b.org_id])
        await a.share(pair, [record_token(a.keys)], [c.org_id])
        async with running(a.engine, b.engine):
            await eventually(lambda: _quarantine_size(b, len(expected) + 4),
                             what="every bad event quarantined")
            await a.share(pair, [record_token(a.keys) for _ in range(3)], [b.org_id])
            await a.share(room, [record_token(a.keys) for _ in range(3)], [b.org_id])
            await eventually(lambda: _received(b, 1 + 3 + 6), what="the good records at B")
        quarantined = await b.host.quarantined()
        by_event: dict[str, list[str]] = {}
        for event_id, reason in quarantined:
            by_event.setdefault(event_id, []).append(reason)
        for event_id, reason in expected.items():
            assert by_event.pop(event_id) == [reason]
        assert sorted(reason for reasons in by_event.values() for reason in reasons) == [
            "audience-mismatch", "audience-mismatch", "issuer-mismatch", "not-a-recipient"
        ]
        assert len(await b.host.received()) == 10 and b.host.deliveries == 10
        async with b.host.transaction() as session:
            listed = await list_quarantined(session, limit=100)
            assert await count_quarantined(session) == len(listed) == len(quarantined)
            assert sum((await count_by_reason(session)).values()) == len(listed)
        for entry in listed:
            assert entry.sender in {a.user_id, c.user_id} and entry.room_id in {room, pair}
            assert "Urgent" not in entry.detail  # details never carry record content


def _reason(name: str) -> str:
    return {"not-a-sealed-event": "malformed", "bad-resend-request": "malformed"}.get(name, name)


async def test_a_blob_that_does_not_match_its_hash_is_tampered(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        data = canonical_json({"type": "not an envelope"})
        url = await a.transport.upload(data)
        content = blob_content(url, data)
        other = b"x" * len(data)
        swapped_url = await a.transport.upload(other)
        content["blob"]["url"] = swapped_url
        event_id = await a.transport.send(room, SEALED_EVENT_TYPE, content, "swap-1")
        missing = blob_content("mxc://" + a.account.user_id.split(":", 1)[1] + "/nothere", data)
        gone_id = await a.transport.send(room, SEALED_EVENT_TYPE, missing, "gone-1")
        for _ in range(3):
            await b.engine.inbox.sync_once(timeout_ms=2000)
            if len(await b.host.quarantined()) >= 2:
                break
        assert dict(await b.host.quarantined()) == {
            event_id: "tampered", gone_id: "blob-unavailable"
        }
