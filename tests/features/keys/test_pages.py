"""The keys page (rotation) and the members page's "compare again" notice, in a browser."""

from __future__ import annotations

from pathlib import Path

from federation.identity import OrgKeys
from federation.roster import member_entry
from node.core.coalition import SAFETY_CODE_CHANGES_SETTING, safety_code_changes
from schemas.payloads import OrgProfile
from tests.support.offline_node import make_offline_node
from tests.support.web import serve_web


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


async def test_members_are_asked_to_compare_a_changed_safety_code_again(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    other = OrgKeys.generate()
    entry = member_entry(other, OrgProfile(name="Haki Ardhi Trust", country="KE"), "@h:example")
    async with serve_web(config) as web_node:
        node = web_node.node
        async with node.store.transaction() as tx:
            await tx.orgs.save_member(other.org_id, entry, verified=True,
                                      safety_code=other.public().safety_code(),
                                      matrix_user_id="@h:example")
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
