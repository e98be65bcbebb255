"""The "Check the coalition" pages (M6): the case form's check button, a check's answers, asking
to connect, and deciding on a contact request; choosing the coalition to ask when the node is in
several, and the coalition each check and request went through (decision 0032)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys
from federation.roster import member_entry
from node.assembly import node_registry
from node.core.coalition import create_coalition
from node.core.runtime import Node
from node.features.dedup.service import (
    CHECK_PREFIX,
    CONTACT_PREFIX,
    Answer,
    CheckState,
    ContactRequest,
    _digest,
    _save,
    contact_requests,
)
from schemas.payloads import OrgProfile
from tests.support.coalitions import in_coalition
from tests.support.web import WebNode, running_web

MATCHED = "0190a5c4-0000-7000-8000-0000000000bb"
REQUEST = "0190a000-0000-7000-8000-00000000000a"
CASE_FORM = [
    ("title", "Sntl-web amenaza"), ("incident_date.start.year", "2024"),
    ("incident_date.start.month", "3"), ("incident_date.start.day", "15"), ("country", "CO"),
    ("place", "Popayán"), ("victim_rows", "1"), ("victims[0].kind", "individual"),
    ("victims[0].name", "Maria Jose Quinones"),
]


@pytest.fixture
async def site(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[WebNode]:
    async with running_web(homeserver, tmp_path / "node") as web_node:
        await create_coalition(web_node.node, "Minga de prueba",
                               node_registry().after_coalition_created)
        yield web_node


async def _member(node: Node, name: str, coalition_id: str | None = None) -> str:
    """A verified member of ``coalition_id`` (by default the node's first coalition)."""
    keys = OrgKeys.generate()
    entry = member_entry(keys, OrgProfile(name=name, country="KE"), "@m:example.org")
    coalition_id = coalition_id or (await node.coalitions())[0].coalition_id
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="0000",
                                  matrix_user_id="@m:example.org")
        await in_coalition(tx, keys.org_id, coalition_id=coalition_id)
    node.forget_coalitions()
    return keys.org_id


async def test_the_case_form_checks_the_coalition_and_the_answers_show(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    form = await browser.get("/cases/new")
    assert 'formaction="/dedup/case-check"' in form.text
    alone = await browser.post("/dedup/case-check", CASE_FORM)
    assert alone.status == 422 and "no other member to ask" in alone.text
    nameless = await browser.submit("/cases/new", "/dedup/case-check",
                                     [(k, v) for k, v in CASE_FORM if k != "victims[0].name"])
    assert nameless.status == 422 and "at least one name" in nameless.text

    holder = await _member(site.node, "Haki Ardhi Trust")
    silent = await _member(site.node, "Bantay Katutubo")
    started = await browser.submit("/cases/new", "/dedup/case-check", CASE_FORM)
    assert started.status == 200 and started.path.startswith("/dedup/checks/")
    assert "0 of 2 members answered" in started.text and 'http-equiv="refresh"' in started.text
    assert "Haki Ardhi Trust" in started.text and "No answer yet" in started.text
    assert "Coalition: Minga de prueba" in started.text

    check_id = started.path.rsplit("/", 1)[1]
    async with site.node.store.transaction() as tx:
        name = CHECK_PREFIX + _digest(check_id)
        check = CheckState.model_validate(await tx.settings.get(name))
        check.answers = [
            Answer(org_id=holder, score_band="medium", handle="h4ndle", contact="Haki desk",
                   answered_at=1),
            Answer(org_id=silent, score_band="none", answered_at=1)]
        await _save(tx, name, check)
    answered = await browser.get(started.path)
    assert "2 of 2 members answered" in answered.text
    assert 'http-equiv="refresh"' not in answered.text
    assert "Possible match: Medium" in answered.text and "Haki desk" in answered.text
    assert "No match" in answered.text and "Ask to connect" in answered.text

    asked = await browser.post(f"{started.path}/contact", {"handle": "h4ndle"})
    assert asked.status == 200 and "waiting for their answer" in asked.text
    viewer = await site.logged_in("chidi")
    seen = await viewer.get(started.path)
    assert seen.status == 200 and "waiting for their answer" in seen.text


async def test_a_contact_request_is_declined_from_its_page(site: WebNode) -> None:
    querier = await _member(site.node, "Haki Ardhi Trust")
    (coalition,) = await site.node.coalitions()
    async with site.node.store.transaction() as tx:
        await _save(tx, CONTACT_PREFIX + _digest(REQUEST), ContactRequest(
            request_id=REQUEST, querier=querier, handle="h", score_band="high",
            room_id=coalition.room_id, arrived_at=1, matched_case=MATCHED,
            coalition_id=coalition.coalition_id))
    viewer = await site.logged_in("chidi")
    page = await viewer.get("/dedup/contacts")
    assert "Haki Ardhi Trust" in page.text and "Possible match: High" in page.text
    assert "Coalition: Minga de prueba" in page.text
    assert f'href="/cases/{MATCHED}"' in page.text
    assert "Decline" not in page.text  # viewers cannot decide
    browser = await site.logged_in("beatriz")
    page = await browser.get("/dedup/contacts")
    decided = await browser.post(f"/dedup/contacts/{REQUEST}", {"decision": "decline"})
    assert decided.status == 200 and "Declined" in decided.text
    (request,) = await contact_requests(site.node)
    assert (request.status, request.decided_by, request.pair_room) == ("declined", "beatriz",
                                                                      None)
    again = await browser.post(f"/dedup/contacts/{REQUEST}", {"decision": "accept"})
    assert again.status == 409


async def test_a_node_in_several_coalitions_asks_which_one_to_check(site: WebNode) -> None:
    node = site.node
    (first,) = await node.coalitions()
    second = await create_coalition(node, "Red regional", node_registry().after_coalition_created)
    await _member(node, "Haki Ardhi Trust", first.coalition_id)
    in_second = await _member(node, "Bantay Katutubo", second.coalition_id)
    browser = await site.logged_in("beatriz")
    choose = await browser.post("/dedup/case-check", CASE_FORM)
    assert choose.status == 200 and "Which coalition should be asked?" in choose.text
    assert '<select id="coalition" name="coalition"' in choose.text
    assert "Minga de prueba" in choose.text and "Red regional" in choose.text
    assert 'value="Maria Jose Quinones"' in choose.text  # the draft goes along, hidden

    started = await browser.post("/dedup/case-check",
                                 [*CASE_FORM, ("coalition", second.coalition_id)])
    assert started.status == 200 and started.path.startswith("/dedup/checks/")
    assert "Coalition: Red regional" in started.text and "Bantay Katutubo" in started.text
    assert "Haki Ardhi Trust" not in started.text  # only the members of the coalition asked
    check_id = started.path.rsplit("/", 1)[1]
    async with node.store.read() as tx:
        check = CheckState.model_validate(await tx.settings.get(CHECK_PREFIX + _digest(check_id)))
    assert (check.coalition_id, check.asked) == (second.coalition_id, [in_second])

    unknown = await browser.post("/dedup/case-check", [*CASE_FORM, ("coalition", "!nope:x")])
    assert unknown.status == 422 and "not in that coalition" in unknown.text

    # A request that came through a coalition this node left shows it so.
    async with node.store.transaction() as tx:
        await _save(tx, CONTACT_PREFIX + _digest(REQUEST), ContactRequest(
            request_id=REQUEST, querier=in_second, handle="h", score_band="high",
            room_id=second.room_id, arrived_at=1, coalition_id=second.coalition_id))
        await tx.coalitions.mark_left(second.coalition_id)
    node.forget_coalitions()
    page = await browser.get("/dedup/contacts")
    assert "Coalition: Red regional (left)" in page.text
