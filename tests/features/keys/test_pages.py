"""The keys page (rotation) and the members page's "compare again" notice, in a browser."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from federation.identity import OrgKeys, revocation_request, sign_revocation
from federation.roster import member_entry
from node.core.coalition import (
    EXPULSIONS_SETTING,
    SAFETY_CODE_CHANGES_SETTING,
    safety_code_changes,
)
from node.core.runtime import Node
from schemas.payloads import OrgProfile
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node
from tests.support.web import Browser, Page, csrf_of, serve_web


async def test_an_admin_rotates_the_keys_from_the_keys_page(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_web(config) as web_node:
        before = web_node.node.keys.signing_kid
        admin = await web_node.logged_in("amaru")
        page = await admin.get("/admin/keys")
        assert "The keys were never rotated." in page.text
        done = await admin.post("/admin/keys/rotate", {})
        assert done.status == 200 and done.path == "/admin/keys"
        assert "Your safety code changed" in done.text
        after = web_node.node.keys.signing_kid
        assert after != before and f"{before} → {after}" in done.text
        async with web_node.node.store.read() as tx:
            events = [(e.actor, e.action) for e in await tx.audit.recent(limit=5)]
        assert ("amaru", "keys.rotate") in events


async def _verified_member(node: Node, keys: OrgKeys) -> None:
    entry = member_entry(keys, OrgProfile(name="Haki Ardhi Trust", country="KE"), "@h:example")
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(keys.org_id, entry, verified=True,
                                  safety_code=keys.public().safety_code(),
                                  matrix_user_id="@h:example")


async def test_members_are_asked_to_compare_a_changed_safety_code_again(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    other = OrgKeys.generate()
    async with serve_web(config) as web_node:
        node = web_node.node
        await _verified_member(node, other)
        async with node.store.transaction() as tx:
            await tx.settings.set(SAFETY_CODE_CHANGES_SETTING, {other.org_id: {
                "previous": "11111 22222 33333 44444 55555 66666",
                "current": other.public().safety_code(), "at": 1_790_000_000}})
        viewer = await web_node.logged_in("chidi")
        page = await viewer.get("/members")
        assert "This safety code changed on" in page.text
        assert "11111 22222 33333 44444 55555 66666" in page.text
        refused = await viewer.post(f"/members/{other.org_id}/compared", {})
        assert refused.status == 403
        editor = await web_node.logged_in("beatriz")
        await editor.get("/members")
        done = await editor.post(f"/members/{other.org_id}/compared", {})
        assert done.path == "/members" and "This safety code changed on" not in done.text
        assert await safety_code_changes(node) == {}


async def _post_file(browser: Browser, path: str, content: bytes | None) -> Page:
    page = await browser.get("/members")
    form = aiohttp.FormData()
    form.add_field("csrf", csrf_of(page.text))
    if content is not None:
        form.add_field("file", content, filename="revocation.json",
                       content_type="application/json")
    async with browser.session.post(browser.base + path, data=form) as answer:
        return Page(answer.status, str(answer.url), await answer.text())


async def test_the_members_page_takes_a_revocation_upload_and_explains_a_refusal(
    tmp_path: Path,
) -> None:
    config = await make_offline_node(tmp_path / "node")
    seized = OrgKeys.generate()
    statement = sign_revocation(
        revocation_request(seized.org_id, [seized.signing_kid], 1_790_000_000, 1_790_000_100),
        seized.revocation_key())
    async with serve_web(config) as web_node:
        viewer = await web_node.logged_in("chidi")
        assert "Publish a revocation" not in (await viewer.get("/members")).text
        admin = await web_node.logged_in("amaru")
        assert "Publish a revocation" in (await admin.get("/members")).text
        missing = await _post_file(admin, "/members/revocations", None)
        assert missing.status == 422 and "Choose the revocation file" in missing.text
        junk = await _post_file(admin, "/members/revocations", b"not json")
        assert junk.status == 422 and "not a revocation made by minga keys revoke" in junk.text
        unknown = await _post_file(admin, "/members/revocations",
                                   json.dumps(statement).encode())
        assert unknown.status == 422 and "unknown organisation" in unknown.text


async def test_a_record_signed_after_the_issuers_revocation_is_flagged(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    seized = OrgKeys.generate()
    entry = member_entry(seized, OrgProfile(name="Colectivo Incautado", country="GT"), "@s:x")
    async with serve_web(config) as web_node:
        async with web_node.node.store.transaction() as tx:
            await tx.orgs.save_member(seized.org_id, entry, verified=True,
                                      safety_code=seized.public().safety_code(),
                                      matrix_user_id="@s:x")
            await tx.orgs.mark_revoked(seized.org_id, 1_790_000_000)
            for record_id, iat in (("0190a5c4-0000-7000-8000-0000000000a1", 1_789_999_999),
                                   ("0190a5c4-0000-7000-8000-0000000000a2", 1_790_000_001)):
                await tx.received.add(seized.org_id, record_id, 1, "case",
                                      {"iat": iat, "country": "GT"}, "verified")
        viewer = await web_node.logged_in("chidi")
        page = await viewer.get("/received")
        assert page.text.count("Signed after the issuer") == 1
        detail = await viewer.get(
            f"/received/{seized.org_id}/0190a5c4-0000-7000-8000-0000000000a2")
        assert "This record says it was signed after that" in detail.text
        members = await viewer.get("/members")
        assert "Keys revoked from" in members.text


async def test_members_page_proposes_and_lists_expulsions(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    other = OrgKeys.generate()
    async with serve_web(config) as web_node:
        node = web_node.node
        await _verified_member(node, other)
        admin = await web_node.logged_in("amaru")
        page = await admin.get("/members")
        assert "Propose expelling this member" in page.text
        empty = await admin.post("/members/expulsions", {"org_id": other.org_id, "reason": ""})
        assert empty.status == 422 and "reason" in empty.text
        await admin.get("/members")
        alone = await admin.post("/members/expulsions",
                                 {"org_id": other.org_id, "reason": "leaks our cases"})
        assert alone.status == 409 and "in no coalition" in alone.text
        async with node.store.transaction() as tx:
            await in_coalition(tx, other.org_id)  # proposals saved before 0032: its first
            await tx.settings.set(EXPULSIONS_SETTING, [{
                "key": f"{other.org_id}/0123456789abcdef", "target": other.org_id,
                "reason": "leaks our cases", "proposer": "o" + "b" * 24,
                "signers": ["o" + "b" * 24], "threshold": 2, "revoked_at": 1_790_000_000}])
        node.forget_coalitions()
        listed = await admin.get("/members")
        assert "Expel Haki Ardhi Trust" in listed.text and "1 of 2 approvals" in listed.text
        assert "Approve the expulsion" in listed.text
        viewer = await web_node.logged_in("chidi")
        assert "Approve the expulsion" not in (await viewer.get("/members")).text


async def test_an_expulsion_is_proposed_in_a_coalition_the_member_is_in(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    other = OrgKeys.generate()
    async with serve_web(config) as web_node:
        node = web_node.node
        await _verified_member(node, other)
        async with node.store.transaction() as tx:
            await in_coalition(tx, other.org_id, coalition_id="!uno:test", name="Uno")
            await in_coalition(tx, coalition_id="!dos:test", name="Dos")
        node.forget_coalitions()
        admin = await web_node.logged_in("amaru")
        page = await admin.get("/members")
        form = page.text.split("Propose expelling this member")[1]
        assert '<option value="!uno:test">Uno</option>' in form and "!dos:test" not in form
        unknown = await admin.post("/members/expulsions", {
            "org_id": other.org_id, "reason": "leaks our cases", "coalition": "!tres:test"})
        assert unknown.status == 422 and "!tres:test" in unknown.text
        unnamed = await admin.post("/members/expulsions",
                                   {"org_id": other.org_id, "reason": "leaks our cases"})
        assert unnamed.status == 422 and "several coalitions" in unnamed.text
