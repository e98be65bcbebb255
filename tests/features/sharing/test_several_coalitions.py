"""A node in two coalitions (decision 0032), without a homeserver: a case records the
coalitions its consent covers, a share goes through one coalition and only to its members, the
gate refuses a coalition the consent does not cover (API and share dialog), the dialog offers
a coalition picker only when there is a choice, and received records name their coalition."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.identity import OrgKeys, sign_member_entry
from node.assembly import node_registry
from node.core.store import Role
from node.core.store.received import Incoming
from node.core.sync_host import NodeSyncHost
from schemas.ids import new_record_id
from sync.host import VerifiedRecord
from tests.features.cases.test_pages import CASE_FORM, create
from tests.features.sharing.test_pages import preview
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node
from tests.support.web import WebNode, serve_web

A, B = "!andes:test", "!bosque:test"
IN_A, IN_B = OrgKeys.generate(), OrgKeys.generate()
NAMES = {IN_A.org_id: "Red Andina", IN_B.org_id: "Foro del Bosque"}


async def _roster(node: Any, *, several: bool = True) -> None:
    async with node.store.transaction() as tx:
        for keys in (IN_A, IN_B):
            entry = sign_member_entry(keys, {"name": NAMES[keys.org_id], "country": "PE"})
            await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="s",
                                      matrix_user_id=None)
        await in_coalition(tx, IN_A.org_id, coalition_id=A, name="Andes")
        if several:
            await in_coalition(tx, IN_B.org_id, coalition_id=B, name="Bosque")
    node.forget_coalitions()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        await _roster(running.node)
        yield running


async def _new_case(api: RunningApi, **changes: Any) -> str:
    made = await api.json("POST", "/cases", json={**SAMPLE_CASES["nairobi"], **changes},
                          expect=201)
    return str(made["record_id"])


async def test_a_new_case_names_its_coalitions_when_the_node_is_in_several(
    api: RunningApi,
) -> None:
    missing = await api.json("POST", "/cases", json=SAMPLE_CASES["nairobi"], expect=422)
    assert [f["field"] for f in missing["error"]["fields"]] == ["body.consent_coalitions"]
    unknown = await api.json("POST", "/cases", expect=422, json={
        **SAMPLE_CASES["nairobi"], "consent_coalitions": ["!elsewhere:test"]})
    assert unknown["error"]["fields"][0]["field"] == "body.consent_coalitions"
    # consent "none" shares with no coalition: nothing to name
    await api.json("POST", "/cases", json=SAMPLE_CASES["khartoum"], expect=201)

    record_id = await _new_case(api, consent_coalitions=[A])
    edited = await api.json("PATCH", f"/cases/{record_id}", json={"title": "Otra vez"})
    assert edited["payload"]["consent_coalitions"] == [A]  # an edit keeps it
    both = await api.json("PATCH", f"/cases/{record_id}", json={"consent_coalitions": [A, B]})
    assert both["payload"]["consent_coalitions"] == [A, B]


async def test_a_case_consented_for_one_coalition_is_refused_through_another(
    api: RunningApi,
) -> None:
    record_id = await _new_case(api, consent_coalitions=[A])
    path = f"/cases/{record_id}/share"

    unnamed = await api.json("POST", path, expect=422, json={
        "recipients": [IN_B.org_id], "fields": ["country"]})
    assert unnamed["error"]["fields"][0]["field"] == "body.coalition"
    not_member = await api.json("POST", path, expect=422, json={
        "recipients": [IN_B.org_id], "fields": ["country"], "coalition": A})
    assert not_member["error"]["fields"][0]["field"] == "body.recipients"

    refused = await api.json("POST", path, expect=409, json={
        "recipients": [IN_B.org_id], "fields": ["country"], "coalition": B})
    assert refused["error"]["code"] == "consent_refused"
    seen = await api.json("POST", path + "/preview", json={
        "recipients": [IN_B.org_id], "fields": ["country"], "coalition": B})
    assert seen["recipients"][0]["allowed"] is False
    assert seen["recipients"][0]["allowed_fields"] == []

    allowed = await api.json("POST", path + "/preview", json={
        "recipients": [IN_A.org_id], "fields": ["country", "victims.name"], "coalition": A})
    assert allowed["recipients"][0]["allowed"] is True
    assert allowed["recipients"][0]["claims"]["coalition"] == A
    history = await api.json("GET", f"/cases/{record_id}/shares", Role.viewer)
    assert history["entries"] == []


def _received(issuer: OrgKeys, coalition: str) -> VerifiedRecord:
    record_id = new_record_id()
    claims = {"record_id": record_id, "version": 1, "kind": "case", "country": "PE",
              "coalition": coalition}
    return VerifiedRecord(issuer=issuer.org_id, record_id=record_id, version=1, kind="case",
                          claims=claims, disclosed_paths=frozenset({"country"}), issued_at=1,
                          room_id="!pair:test", event_id="$e", origin_server_ts=1)


async def test_received_records_name_their_coalition_and_one_this_node_left(
    api: RunningApi,
) -> None:
    host = await NodeSyncHost.open(api.node, node_registry())
    from_a, from_b = _received(IN_A, A), _received(IN_B, B)
    async with host.transaction() as session:
        await host.deliver(session, [from_a, from_b, _received(IN_A, B)])  # IN_A is not in B
    async with api.node.store.transaction() as tx:
        await tx.coalitions.mark_left(B)
    api.node.forget_coalitions()

    listed = await api.json("GET", "/received", Role.viewer)
    by_id = {item["record_id"]: item for item in listed["items"]}
    assert set(by_id) == {from_a.record_id, from_b.record_id}
    assert (by_id[from_a.record_id]["coalition_id"], by_id[from_a.record_id]["coalition"],
            by_id[from_a.record_id]["coalition_left"]) == (A, "Andes", False)
    assert by_id[from_b.record_id]["coalition_left"] is True
    one = await api.json("GET", f"/received/{IN_B.org_id}/{from_b.record_id}", Role.viewer)
    assert (one["coalition_id"], one["coalition"], one["coalition_left"]) == (B, "Bosque", True)


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[WebNode]:
    async with serve_web(await make_offline_node(tmp_path / "node")) as web_node:
        await _roster(web_node.node)
        yield web_node


async def test_the_case_form_asks_for_coalitions_and_the_case_page_names_them(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    form = await browser.get("/cases/new")
    assert 'name="consent_coalitions" value="!andes:test"' in form.text
    assert 'value="!andes:test" checked' not in form.text  # several: nothing preselected
    page = await browser.post("/cases/new", [*CASE_FORM, ("action", "save")])
    assert page.status == 422
    assert "Tick the coalitions within which the people concerned agreed" in page.text
    record_id = await create(browser, [*CASE_FORM, ("consent_coalitions", A)])
    detail = await browser.get(f"/cases/{record_id}")
    assert "Coalitions the consent covers" in detail.text and "Andes" in detail.text
    assert "Bosque" not in detail.text


async def test_the_dialog_picks_the_coalition_and_refuses_one_consent_does_not_cover(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, [*CASE_FORM, ("consent_coalitions", A)])
    dialog = await browser.get(f"/cases/{record_id}/share")
    assert '<select id="share-coalition" name="coalition">' in dialog.text
    assert "Red Andina" in dialog.text and "Foro del Bosque" not in dialog.text  # A covered

    in_b = await browser.post(f"/cases/{record_id}/share", [
        ("coalition", B), ("step", "coalition"), ("version", "1")])
    assert "Foro del Bosque" in in_b.text and "Red Andina" not in in_b.text
    assert re.search(r'<option value="!bosque:test" selected>Bosque</option>', in_b.text)

    page = await browser.post(f"/cases/{record_id}/share", [
        ("coalition", B), ("recipients", IN_B.org_id), ("fields", "country"),
        ("step", "preview"), ("version", "1")])
    assert page.status == 200 and "Consent does not allow this." in page.text
    assert "did not consent to sharing within the coalition Bosque" in page.text
    assert "Send to" not in page.text
    sent = await browser.post(f"/cases/{record_id}/share", [
        ("coalition", B), ("recipients", IN_B.org_id), ("fields", "country"),
        ("step", "send"), ("version", "1")])
    assert sent.status == 409 and "Consent does not allow this." in sent.text

    text = await preview(browser, record_id, [IN_A.org_id], ["country"])
    assert "did not consent to sharing within" not in text
    assert "Consent does not allow this." not in text and "Send to 1 organisation" in text


async def test_no_coalition_picker_with_one_coalition(tmp_path: Path) -> None:
    async with serve_web(await make_offline_node(tmp_path / "node")) as site:
        await _roster(site.node, several=False)
        browser = await site.logged_in("beatriz")
        form = await browser.get("/cases/new")
        assert 'name="consent_coalitions" value="!andes:test" checked' in form.text
        record_id = await create(browser, CASE_FORM)
        dialog = await browser.get(f"/cases/{record_id}/share")
        assert 'id="share-coalition"' not in dialog.text and "Show its members" not in dialog.text
        assert 'type="hidden" name="coalition" value="!andes:test"' in dialog.text


async def test_the_received_list_and_members_page_show_coalitions(site: WebNode) -> None:
    case_id = new_record_id()
    async with site.node.store.transaction() as tx:
        await tx.received.add_many([Incoming(IN_B.org_id, case_id, 1, "case",
                                             {"record_id": case_id, "country": "PE"}, B)],
                                   "verified")
    browser = await site.logged_in("chidi")
    members = await browser.get("/members")
    assert "Coalitions: Andes, Bosque" in members.text
    assert "In your coalitions: Bosque" in members.text
    listed = await browser.get("/received")
    assert "Through the coalition Bosque" in listed.text
    async with site.node.store.transaction() as tx:
        await tx.coalitions.mark_left(B)
    site.node.forget_coalitions()
    assert "Through the coalition Bosque (left)" in (await browser.get("/received")).text
    detail = await browser.get(f"/received/{IN_B.org_id}/{case_id}")
    assert "Bosque (left)" in detail.text


async def test_a_case_from_before_names_the_first_coalition_until_edited(tmp_path: Path) -> None:
    async with serve_web(await make_offline_node(tmp_path / "node")) as site:
        browser = await site.logged_in("beatriz")
        record_id = await create(browser, CASE_FORM)  # in no coalition yet: none named
        await _roster(site.node)
        detail = await browser.get(f"/cases/{record_id}")
        assert "the first coalition (Andes)" in detail.text
        form = await browser.get(f"/cases/{record_id}/edit")
        assert 'name="consent_coalitions" value="!andes:test" checked' in form.text
        assert 'value="!bosque:test" checked' not in form.text
        async with site.node.store.read() as tx:
            assert (await tx.cases.get(record_id)).document["payload"].get(
                "consent_coalitions") is None
