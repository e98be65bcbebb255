"""The share dialog (recipients, fields by group, per-recipient preview, refusals), received
records with their badges and tombstones, and the members directory, on a real node.

Sending over Matrix is covered end to end by tests/core/web/test_browser.py; here the other members
are
roster entries in the store, which is all the dialog and the preview need."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys, sign_member_entry
from schemas.ids import new_record_id
from tests.features.cases.test_pages import CASE_FORM, create, with_fields
from tests.support.coalitions import TEST_COALITION, in_coalition
from tests.support.web import Browser, WebNode, running_web

PARTNER = OrgKeys.generate()
OTHER = OrgKeys.generate()
PROFILES = {
    PARTNER.org_id: {"name": "Red Jurídica del Sur", "country": "AR",
                     "capabilities": ["legal_support", "un_advocacy"],
                     "countries_of_work": ["AR", "CL"]},
    OTHER.org_id: {"name": "Sauti ya Haki", "country": "TZ", "capabilities": ["relocation"]},
}


@pytest.fixture
async def site(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[WebNode]:
    async with running_web(homeserver, tmp_path / "node") as web_node:
        async with web_node.node.store.transaction() as tx:
            for keys in (PARTNER, OTHER):
                entry = sign_member_entry(keys, PROFILES[keys.org_id])
                await tx.orgs.save_member(keys.org_id, entry, verified=True,
                                          safety_code="12345 67890", matrix_user_id=None)
            await in_coalition(tx, PARTNER.org_id, OTHER.org_id)
        web_node.node.forget_coalitions()
        yield web_node


async def preview(browser: Browser, record_id: str, recipients: list[str],
                  fields: list[str]) -> str:
    await browser.get(f"/cases/{record_id}/share")
    data = [("recipients", r) for r in recipients] + [("fields", f) for f in fields]
    page = await browser.post(f"/cases/{record_id}/share", [*data, ("step", "preview")])
    assert page.status == 200, page.text[:2000]
    return page.text


async def test_the_dialog_lists_members_and_fields_by_group(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, CASE_FORM)
    page = await browser.get(f"/cases/{record_id}/share")
    assert "Red Jurídica del Sur" in page.text and "Sauti ya Haki" in page.text
    for group in ("Context (not identifying)", "Place", "Names of people and collectives",
                  "Free text (may identify people)"):
        assert f"<legend>{group}</legend>" in page.text
    assert 'value="consent_level"' not in page.text  # internal fields are never offered
    assert "Send to" not in page.text  # nothing can be sent before a preview


async def test_the_preview_shows_exactly_the_chosen_fields_per_recipient(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, CASE_FORM)
    text = await preview(browser, record_id, [PARTNER.org_id, OTHER.org_id],
                         ["country", "violations"])
    previews = re.findall(r'<section class="preview".*?</section>', text, re.S)
    assert len(previews) == 2
    for section in previews:
        assert "Colombia" in section and "Death threat" in section
        assert "Vereda La Esperanza" not in section and "Nasa Yuwe Tumbo" not in section
    assert "Send to 2 organisations" in text
    async with site.node.store.read() as tx:
        assert not any(e.action == "record.share" for e in await tx.audit.recent(limit=50))


async def test_consent_refusal_is_clear_and_blocks_sending(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    anonymised = with_fields(CASE_FORM, consent_level="anonymised")
    record_id = await create(browser, anonymised)
    text = await preview(browser, record_id, [PARTNER.org_id], ["country", "victims.name"])
    assert "Consent does not allow this." in text
    assert "Affected: name" in text
    assert "does not allow this for this organisation" in text
    assert "Send to" not in text
    page = await browser.post(f"/cases/{record_id}/share", [
        ("recipients", PARTNER.org_id), ("fields", "country"), ("fields", "victims.name"),
        ("step", "send"), ("version", "1")])
    assert page.status == 409 and "Consent does not allow this." in page.text


async def test_named_partners_get_more_than_other_members(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    named = with_fields(CASE_FORM, consent_level="named_partners")
    record_id = await create(browser, [*named, ("consent_partners", PARTNER.org_id)])
    text = await preview(browser, record_id, [PARTNER.org_id, OTHER.org_id],
                         ["country", "place"])
    partner, other = re.findall(r'<section class="preview".*?</section>', text, re.S)
    assert "Vereda La Esperanza" in partner and "Red Jurídica del Sur" in partner
    assert "Consent does not allow this." in other


async def test_no_consent_means_no_dialog(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, with_fields(CASE_FORM, consent_level="none"))
    page = await browser.get(f"/cases/{record_id}/share")
    assert "This case cannot be shared." in page.text and 'name="recipients"' not in page.text


async def test_a_viewer_cannot_share(site: WebNode) -> None:
    editor = await site.logged_in("beatriz")
    record_id = await create(editor, CASE_FORM)
    viewer = await site.logged_in("chidi")
    assert (await viewer.get(f"/cases/{record_id}/share")).status == 403


async def test_received_records_show_issuer_badge_and_tombstone(site: WebNode) -> None:
    kept, retracted, forged = new_record_id(), new_record_id(), new_record_id()
    async with site.node.store.transaction() as tx:
        await tx.received.add(PARTNER.org_id, kept, 2, "case",
                              {"record_id": kept, "country": "AR", "violations": ["raid"],
                               "iss": PARTNER.org_id, "iat": 1}, "verified")
        await tx.received.add(OTHER.org_id, retracted, 1, "case",
                              {"record_id": retracted, "narrative": "Texto retirado"},
                              "verified")
        await tx.received.retract(OTHER.org_id, retracted)
        await tx.received.add(OTHER.org_id, forged, 1, "case", {"country": "TZ"},
                              "bad_signature")
    browser = await site.logged_in("chidi")
    page = await browser.get("/received")
    assert page.text.count("✔ Verified") == 2 and "Not verified" in page.text
    assert "Retracted by the issuer" in page.text and "Red Jurídica del Sur" in page.text
    detail = await browser.get(f"/received/{PARTNER.org_id}/{kept}")
    assert "Argentina" in detail.text and "Raid or search" in detail.text
    assert "12345 67890" in detail.text and ">iss<" not in detail.text
    tombstone = await browser.get(f"/received/{OTHER.org_id}/{retracted}")
    assert "Texto retirado" not in tombstone.text and "retracted this record" in tombstone.text
    assert (await browser.get(f"/received/{OTHER.org_id}/{new_record_id()}")).status == 404
    async with site.node.store.read() as tx:
        events = await tx.audit.recent(limit=20)
    assert any(e.action == "received.view" and e.target == kept for e in events)


async def test_the_received_list_shows_cases_first_and_every_kind_on_request(
    site: WebNode,
) -> None:
    case_id, ask_id = new_record_id(), new_record_id()
    async with site.node.store.transaction() as tx:
        await tx.received.add(PARTNER.org_id, case_id, 1, "case",
                              {"record_id": case_id, "country": "AR"}, "verified")
        await tx.received.add(PARTNER.org_id, ask_id, 1, "retraction",
                              {"record_id": ask_id}, "verified")
    browser = await site.logged_in("chidi")
    cases_only = await browser.get("/received")
    assert case_id in cases_only.text and ask_id not in cases_only.text
    every = await browser.get("/received?kind=")
    assert case_id in every.text and ask_id in every.text
    retractions = await browser.get("/received?kind=retraction")
    assert case_id not in retractions.text and ask_id in retractions.text


async def test_a_tombstone_says_why_and_when_the_issuer_retracted(site: WebNode) -> None:
    retracted, retraction = new_record_id(), new_record_id()
    async with site.node.store.transaction() as tx:
        await tx.received.add(OTHER.org_id, retracted, 1, "case",
                              {"record_id": retracted, "narrative": "Texto retirado"},
                              "verified")
        await tx.received.add(OTHER.org_id, retraction, 1, "retraction", {
            "record_id": retraction, "issued_at": 1_717_000_000, "reason": "consent_withdrawn",
            "note": "La familia lo pidió", "target": {"issuer": OTHER.org_id,
                                                     "record_id": retracted}}, "verified")
        await tx.received.retract(OTHER.org_id, retracted)
    browser = await site.logged_in("chidi")
    tombstone = await browser.get(f"/received/{OTHER.org_id}/{retracted}")
    assert "Texto retirado" not in tombstone.text
    assert "Consent withdrawn" in tombstone.text and "La familia lo pidió" in tombstone.text
    assert "May 29, 2024" in tombstone.text  # when the issuer retracted it


async def test_members_directory(site: WebNode) -> None:
    browser = await site.logged_in("chidi")
    page = await browser.get("/members")
    assert "Red Jurídica del Sur" in page.text and "Legal support" in page.text
    assert "Works in: Argentina, Chile" in page.text
    assert page.text.count("✔ Verified entry") == 2
    assert site.node.keys.public().safety_code() in page.text
    await browser.post("/language", {"language": "es", "next": "/members"})
    page = await browser.get("/members")
    assert "Apoyo jurídico" in page.text and "Trabaja en: Argentina, Chile" in page.text


async def test_the_members_page_says_the_coalition_moved_rooms(site: WebNode) -> None:
    browser = await site.logged_in("chidi")
    assert "moved to a new room" not in (await browser.get("/members")).text
    async with site.node.store.transaction() as tx:
        await tx.coalitions.move_room(TEST_COALITION, "!new-room")
    site.node.forget_coalitions()
    page = await browser.get("/members")
    assert "The coalition moved to a new room" in page.text
    assert TEST_COALITION in page.text and "!new-room" in page.text
    await browser.post("/language", {"language": "es", "next": "/members"})
    assert "La coalición pasó a una sala nueva" in (await browser.get("/members")).text
