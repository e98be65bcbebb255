"""The sharing API's answers that need no second node: refusals (422 naming the recipient or
the path, 409 naming the refused fields, nothing queued), the preview, received records with
filters, pages and tombstones, and the admin-only quarantine list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys, sign_member_entry
from node.assembly import node_registry
from node.core.store import Role
from node.core.sync_host import NodeSyncHost
from schemas.ids import new_record_id
from sync.engine import read_status
from sync.host import Quarantined, VerifiedRecord
from sync.quarantine import quarantine
from tests.support.api_harness import SAMPLE_CASES, RunningApi, running_api
from tests.support.coalitions import in_coalition

MEMBER, STRANGER = OrgKeys.generate(), OrgKeys.generate()


@pytest.fixture
async def api(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with running_api(homeserver, tmp_path / "node") as running:
        async with running.node.store.transaction() as tx:
            entry = sign_member_entry(MEMBER, {"name": "Haki", "country": "KE"})
            await tx.orgs.save_member(MEMBER.org_id, entry, verified=True, safety_code="s",
                                      matrix_user_id="@member:hs")
            await in_coalition(tx, MEMBER.org_id)
        running.node.forget_coalitions()
        yield running


async def _case(api: RunningApi, key: str) -> str:
    made = await api.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)
    return str(made["record_id"])


async def _nothing_queued(api: RunningApi, record_id: str) -> None:
    async with api.node.store.read() as tx:
        assert (await read_status(tx.session)).queued_items == 0
    history = await api.json("GET", f"/cases/{record_id}/shares", Role.viewer)
    assert history["entries"] == []


async def test_refusals_name_what_is_wrong_and_queue_nothing(api: RunningApi) -> None:
    record_id = await _case(api, "mindanao")  # anonymised consent, critical risk
    path = f"/cases/{record_id}/share"

    stranger = await api.json("POST", path, expect=422, json={
        "recipients": [MEMBER.org_id, STRANGER.org_id], "fields": ["country"]})
    assert STRANGER.org_id in stranger["error"]["message"]
    assert stranger["error"]["fields"][0]["field"] == "body.recipients"

    unknown = await api.json("POST", path, expect=422, json={
        "recipients": [MEMBER.org_id], "fields": ["country", "shoe_size"]})
    assert "shoe_size" in unknown["error"]["fields"][0]["problem"]

    refused = await api.json("POST", path, expect=409, json={
        "recipients": [MEMBER.org_id], "fields": ["country", "narrative", "victims.name"]})
    assert refused["error"]["code"] == "consent_refused"
    assert {f["field"] for f in refused["error"]["fields"]} == {"narrative", "victims.name"}
    assert all(f["problem"].startswith(MEMBER.org_id) for f in refused["error"]["fields"])
    text = str(refused)
    assert "Rowena" not in text and "Sinampahan" not in text

    viewer = await api.call("POST", path, Role.viewer,
                            json={"recipients": [MEMBER.org_id], "fields": ["country"]})
    assert viewer.status == 403
    missing = await api.call("POST", f"/cases/{new_record_id()}/share",
                             json={"recipients": [MEMBER.org_id], "fields": ["country"]})
    assert missing.status == 404
    await _nothing_queued(api, record_id)
    for reason in ("error", "consent_withdrawn"):
        never = await api.json("POST", f"/cases/{record_id}/retract", expect=409,
                               json={"reason": reason})
        assert never["error"]["code"] == "not_shared"
    unchanged = await api.json("GET", f"/cases/{record_id}", Role.viewer)
    assert unchanged["version"] == 1 and unchanged["payload"]["consent_level"] == "anonymised"


async def test_preview_shows_claims_or_refusal_and_what_may_be_offered(api: RunningApi) -> None:
    record_id = await _case(api, "mindanao")
    preview = await api.json("POST", f"/cases/{record_id}/share/preview", json={
        "recipients": [MEMBER.org_id], "fields": ["country", "violations"]})
    (answer,) = preview["recipients"]
    assert answer["allowed"] is True and answer["refused"] == []
    assert answer["claims"]["country"] == "PH"
    assert answer["claims"]["violations"] == SAMPLE_CASES["mindanao"]["violations"]
    assert "narrative" not in answer["claims"] and "narrative" not in answer["allowed_fields"]
    assert preview["organisations"] == {MEMBER.org_id: "Haki"}

    refused = await api.json("POST", f"/cases/{record_id}/share/preview", json={
        "recipients": [MEMBER.org_id], "fields": ["country", "place"]})
    (answer,) = refused["recipients"]
    assert answer["allowed"] is False and answer["claims"] is None
    assert [r["path"] for r in answer["refused"]] == ["place"]
    await _nothing_queued(api, record_id)


def _verified(record_id: str, version: int, kind: str, **claims: Any) -> VerifiedRecord:
    return VerifiedRecord(
        issuer=MEMBER.org_id, record_id=record_id, version=version, kind=kind,
        claims={"record_id": record_id, "version": version, "kind": kind, **claims},
        disclosed_paths=frozenset(claims), issued_at=1, room_id="!pair:hs", event_id="$e",
        origin_server_ts=1,
    )


async def test_received_records_list_filter_page_and_tombstones(api: RunningApi) -> None:
    host = await NodeSyncHost.open(api.node, node_registry())
    cases = [new_record_id() for _ in range(3)]
    campaign = new_record_id()
    records = [_verified(r, 1, "case", country="KE", victims=[{"groups": ["journalist"]}])
               for r in cases]
    records += [_verified(cases[0], 2, "case", country="UG"),
                _verified(campaign, 1, "campaign", title="Sntl campaign"),
                _verified(new_record_id(), 1, "retraction", reason="error",
                          target={"issuer": MEMBER.org_id, "record_id": cases[1]})]
    async with host.transaction() as session:
        await host.deliver(session, records)

    every = await api.json("GET", "/received?kind=case&limit=2", Role.viewer)
    assert len(every["items"]) == 2 and every["next_offset"] == 2
    rest = await api.json("GET", "/received?kind=case&limit=2&offset=2", Role.viewer)
    assert rest["next_offset"] is None
    listed = {item["record_id"]: item for item in every["items"] + rest["items"]}
    assert set(listed) == set(cases)
    assert listed[cases[0]]["version"] == 2
    assert listed[cases[2]]["disclosed_fields"] == ["country", "victims.groups"]
    assert listed[cases[1]]["retracted"] is True and listed[cases[1]]["disclosed_fields"] == []
    assert every["organisations"] == {MEMBER.org_id: "Haki"}

    by_issuer = await api.json("GET", f"/received?issuer={STRANGER.org_id}", Role.viewer)
    assert by_issuer["items"] == []
    campaigns = await api.json("GET", "/received?kind=campaign", Role.viewer)
    assert [item["record_id"] for item in campaigns["items"]] == [campaign]

    latest = await api.json("GET", f"/received/{MEMBER.org_id}/{cases[0]}", Role.viewer)
    assert latest["claims"]["country"] == "UG" and latest["versions"] == [1, 2]
    assert latest["organisations"] == {MEMBER.org_id: "Haki"}
    tombstone = await api.json("GET", f"/received/{MEMBER.org_id}/{cases[1]}", Role.viewer)
    assert tombstone["retracted"] is True and tombstone["claims"] is None
    for path in (f"/received/{MEMBER.org_id}/{new_record_id()}",
                 f"/received/{MEMBER.org_id}/not-a-uuid"):
        assert (await api.call("GET", path, Role.viewer)).status == 404


async def test_quarantine_is_listed_for_admins_only(api: RunningApi) -> None:
    async with api.node.store.transaction() as tx:
        quarantine(tx.session, Quarantined("!pair:hs", "$bad", "@member:hs", "bad-signature",
                                           "the sender's signature does not verify"), 1_000)
    assert (await api.call("GET", "/quarantine", Role.editor)).status == 403
    listed = await api.json("GET", "/quarantine", Role.admin)
    assert [(e["event_id"], e["reason"]) for e in listed["items"]] == [("$bad", "bad-signature")]
    status = await api.json("GET", "/status", Role.viewer)
    assert status["sync"]["quarantined"] == 1
    assert status["sync"]["quarantine_by_reason"] == {"bad-signature": 1}
