"""Sharing between member nodes on two federated homeservers, through the HTTP API.

A (homeserver 1) shares with B (homeserver 2); C (homeserver 1) is a member but not a recipient.
Then: nothing a homeserver or a log holds contains any plaintext value; updates, late versions
and retractions propagate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation
from federation.sealing import NotARecipient, open_envelope
from node.core.rooms import InviteHandler
from node.core.sharing import share_from_node
from node.core.store import Role
from node.core.sync_host import NodeSyncHost
from sync.frame import SEALED_EVENT_TYPE, parse_content
from tests.support.api_harness import SAMPLE_CASES, RunningApi
from tests.support.sharing import (
    ORGS,
    captured_logs,
    eventually,
    files_under,
    form_coalition,
    member_running,
    new_member,
    received,
    search,
)

SUBSET = ["country", "incident_date", "violations", "victims.groups", "place"]


@dataclass
class Trio:
    a: RunningApi
    b: RunningApi
    c: RunningApi
    directories: list[Path]


@asynccontextmanager
async def trio(federation: Federation, tmp_path: Path) -> AsyncIterator[Trio]:
    homes = [federation[0], federation[1], federation[0]]
    directories = [tmp_path / f"org{i}" for i in range(3)]
    configs = [await new_member(home, directory, name, country)
               for home, directory, (name, country) in zip(homes, directories, ORGS, strict=True)]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a, b, c = [await stack.enter_async_context(member_running(config)) for config in configs]
        yield Trio(a, b, c, directories)


async def _create(api: RunningApi, key: str) -> dict[str, Any]:
    return await api.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)  # type: ignore[no-any-return]


async def _received_one(api: RunningApi, issuer: str, record_id: str,
                        version: int = 1) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        answer = await api.call("GET", f"/received/{issuer}/{record_id}", Role.viewer)
        if answer.status != 200:
            return None
        view: dict[str, Any] = await answer.json()
        return view if view["version"] >= version else None

    try:
        return await eventually(arrived, what=f"version {version} of {record_id} at the recipient")
    except AssertionError as timeout:
        status = await api.json("GET", "/status", Role.viewer)
        quarantine = await api.json("GET", "/quarantine", Role.admin)
        raise AssertionError(f"{timeout}; recipient sync {status['sync']}, "
                             f"quarantine {quarantine['items']}") from None


def _free_text(case: dict[str, Any]) -> set[str]:
    """Every name, place, narrative and story of a sample case."""
    values = {case.get(key) for key in ("title", "place", "narrative", "impact_story")}
    for person in case.get("victims", []) + case.get("perpetrators", []):
        values |= {person.get(key) for key in ("name", "native_name", "romanised_name",
                                               "description")}
    values |= set(case.get("sources", []))
    return {value for value in values if isinstance(value, str)}


async def test_a_subset_reaches_the_recipient_verified_and_nobody_else_can_open_it(
    federation: Federation, tmp_path: Path
) -> None:
    with captured_logs() as logs:
        async with trio(federation, tmp_path) as t:
            a_org, b_org = t.a.node.org_id, t.b.node.org_id
            cauca = await _create(t.a, "cauca")
            preview = await t.a.json("POST", f"/cases/{cauca['record_id']}/share/preview",
                                     json={"recipients": [b_org], "fields": SUBSET})
            shared = await t.a.json("POST", f"/cases/{cauca['record_id']}/share",
                                    json={"recipients": [b_org], "fields": SUBSET})
            assert [r["org_id"] for r in shared["recipients"]] == [b_org]
            view = await _received_one(t.b, a_org, cauca["record_id"])
            assert view["verification"] == "verified" and not view["retracted"]
            assert view["disclosed_fields"] == sorted(SUBSET)
            claims = view["claims"]
            case = SAMPLE_CASES["cauca"]
            assert claims["place"] == case["place"] and claims["country"] == "CO"
            assert claims["victims"] == [{"groups": v["groups"]} for v in case["victims"]]
            for withheld in ("narrative", "title", "impact_story"):
                assert withheld not in claims
            # The preview showed exactly what B verified.
            expected = preview["recipients"][0]["claims"]
            assert {k: v for k, v in expected.items() if k not in ("iat",)} == {
                k: v for k, v in claims.items() if k not in ("iat",)}

            # C, a member but not a recipient: nothing received, nothing it could open.
            history = await t.a.json("GET", f"/cases/{cauca['record_id']}/shares")
            room = history["entries"][0]["room_id"]
            async with t.a.node.transport() as transport:
                events, _ = await transport.messages(room, None, limit=50)
            sealed = [parse_content(e.content) for e in events if e.type == SEALED_EVENT_TYPE]
            assert sealed
            c_trust = await (await NodeSyncHost.for_sending(t.c.node)).trust()
            b_trust = await (await NodeSyncHost.for_sending(t.b.node)).trust()
            for envelope in sealed:
                assert isinstance(envelope, dict)
                with pytest.raises(NotARecipient):
                    open_envelope(envelope, t.c.node.keys, c_trust.resolver)
                assert open_envelope(envelope, t.b.node.keys, b_trust.resolver).payload
            # (C may get other kinds meanwhile, such as dedup queries sent to every member.)
            assert await received(t.c) == []
            assert (await t.c.json("GET", "/status", Role.viewer))["sync"]["quarantined"] == 0

            # Share a few more cases whole, then look for their plaintext everywhere.
            for key in ("nairobi", "minsk", "addis"):
                made = await _create(t.a, key)
                await t.a.json("POST", f"/cases/{made['record_id']}/share",
                               json={"recipients": [b_org, t.c.node.org_id],
                                     "fields": _allowed(SAMPLE_CASES[key])})
                await _received_one(t.b, a_org, made["record_id"])
                await _received_one(t.c, a_org, made["record_id"])
            for node in (t.a, t.b, t.c):
                await node.node.store.checkpoint()
    secrets = set().union(*(_free_text(case) for case in SAMPLE_CASES.values()))
    homeserver_files = [p for server in federation
                        for p in files_under(server.directory)
                        if ".db" in p.name or "log" in p.name or p.name.endswith(".stdout")
                        or "media_store" in p.parts]
    assert any(p.name.endswith("-wal") or p.name.endswith(".db") for p in homeserver_files)
    node_files = [p for d in t.directories for p in files_under(d)]
    # The search does find what is in clear on purpose: org names in the coalition roster.
    assert search(homeserver_files, [ORGS[0][0]])
    assert search(homeserver_files + node_files, secrets) == []
    log_text = "\n".join(logs.lines)
    assert "pair room" in log_text  # the logs were captured
    assert [s for s in secrets if s in log_text] == []


def _allowed(case: dict[str, Any]) -> list[str]:
    """Every path a coalition member may get for a sample case, as the share dialog offers."""
    from federation.consent import Recipient, allowed_fields
    from schemas.case import Case

    parsed = Case.model_validate(case)
    return sorted(allowed_fields(parsed, Recipient.member("ox" + "a" * 25)))


async def test_updates_late_versions_and_retractions_propagate(
    federation: Federation, tmp_path: Path
) -> None:
    async with trio(federation, tmp_path) as t:
        a_org, b_org = t.a.node.org_id, t.b.node.org_id
        made = await _create(t.a, "nairobi")
        record_id = made["record_id"]
        fields = {"recipients": [b_org], "fields": ["country", "narrative"]}
        await t.a.json("POST", f"/cases/{record_id}/share", json=fields)
        first = await _received_one(t.b, a_org, record_id)
        assert first["claims"]["narrative"] == SAMPLE_CASES["nairobi"]["narrative"]
        version_one = await _stored_record(t.a, record_id)

        await t.a.json("PATCH", f"/cases/{record_id}", json={"narrative": "Sntl updated text"})
        await t.a.json("POST", f"/cases/{record_id}/share", json=fields)
        second = await _received_one(t.b, a_org, record_id, version=2)
        assert second["claims"]["narrative"] == "Sntl updated text"

        # Version 1 sent again, late: stored, never shown as the latest.
        await share_from_node(t.a.node, version_one, [b_org], ["country", "narrative"],
                              actor="test", issued_at=t.a.clock())
        await eventually(lambda: _history_has(t.a, record_id, 3), what="the late send queued")
        await eventually(lambda: _outbox_empty(t.a), what="A's outbox drained")
        await eventually(lambda: _b_saw_all_frames(t.b, t.a), what="B took every frame")
        view = await t.b.json("GET", f"/received/{a_org}/{record_id}", Role.viewer)
        assert view["version"] == 2 and view["versions"] == [1, 2]
        assert view["claims"]["narrative"] == "Sntl updated text"

        history = await t.a.json("GET", f"/cases/{record_id}/shares")
        assert [(e["action"], e["version"]) for e in history["entries"]] == [
            ("share", 1), ("share", 2), ("share", 1)]

        retracted = await t.a.json("POST", f"/cases/{record_id}/retract",
                                   json={"reason": "consent_withdrawn"})
        assert [r["org_id"] for r in retracted["recipients"]] == [b_org]
        # The withdrawal is recorded on the case itself, so A stops matching and sharing it.
        case = await t.a.json("GET", f"/cases/{record_id}", Role.viewer)
        assert retracted["version"] == case["version"] == 3
        assert case["payload"]["consent_level"] == "none"

        async def tombstone() -> dict[str, Any] | None:
            view = await t.b.json("GET", f"/received/{a_org}/{record_id}", Role.viewer)
            return view if view["retracted"] else None

        gone = await eventually(tombstone, what="the retraction at B")
        assert gone["claims"] is None and gone["disclosed_fields"] == []
        listed = {item["record_id"]: item for item in await received(t.b)}
        assert listed[record_id]["retracted"] is True
        async with t.b.node.store.read() as tx:
            versions = await tx.received.versions(a_org, record_id)
        assert [v.claims for v in versions] == [None, None]
        again = await t.a.call("POST", f"/cases/{record_id}/share", json=fields)
        assert again.status == 409


async def _stored_record(api: RunningApi, record_id: str) -> Any:
    from node.features.cases.casebook import stored_record

    async with api.node.store.read() as tx:
        return stored_record(await tx.cases.get(record_id))


async def _history_has(api: RunningApi, record_id: str, count: int) -> bool:
    history = await api.json("GET", f"/cases/{record_id}/shares")
    return len(history["entries"]) >= count


async def _outbox_empty(api: RunningApi) -> bool:
    sync = (await api.json("GET", "/status", Role.viewer))["sync"]
    return sync["outbox_queued"] == 0 and sync["outbox_unsent_frames"] == 0


async def _b_saw_all_frames(b: RunningApi, a: RunningApi) -> bool:
    """B processed every frame A sent (its chain from A has no hole up to A's last seq)."""
    from sqlalchemy import func, select

    from sync.tables import ChainLinkRow, Frame

    async with a.node.store.read() as tx:
        sent = await tx.session.scalar(select(func.count()).select_from(Frame)
                                       .where(Frame.event_id.is_not(None)))
    async with b.node.store.read() as tx:
        seen = await tx.session.scalar(select(func.count()).select_from(ChainLinkRow)
                                       .where(ChainLinkRow.issuer == a.node.org_id))
    return bool(sent) and seen == sent


async def test_what_was_posted_before_the_recipient_joined_still_arrives(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's node is running but joins the new pair room only after A has posted in it: B's
    homeserver never had that event, and nothing after it shows a gap."""
    configs = [await new_member(home, tmp_path / name, *org)
               for home, name, org in ((federation[0], "a", ORGS[0]),
                                       (federation[1], "b", ORGS[1]))]
    await form_coalition(configs)
    a_posted = asyncio.Event()
    join = InviteHandler._join

    async def join_late(self: InviteHandler, transport: Any, room_id: str) -> None:
        await a_posted.wait()
        await join(self, transport, room_id)

    monkeypatch.setattr(InviteHandler, "_join", join_late)
    async with member_running(configs[0]) as a, member_running(configs[1]) as b:
        made = await _create(a, "minsk")
        await a.json("POST", f"/cases/{made['record_id']}/share",
                     json={"recipients": [b.node.org_id], "fields": ["country", "violations"]})
        await eventually(lambda: _outbox_empty(a), what="A posted in the pair room")
        a_posted.set()
        view = await _received_one(b, a.node.org_id, made["record_id"])
        assert view["disclosed_fields"] == ["country", "violations"]
