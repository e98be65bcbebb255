"""The admin's coalitions page, in a browser, on a node of a real homeserver: create, invite,
join, leave, each with its errors and its notice (decision 0032)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, async_playwright

from deploy.homeserver import Homeserver
from node.features.coalitions import pages
from tests.support import ARTIFACTS
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node
from tests.support.web import PASSWORD, running_web, serve_web

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE: ViewportSize = {"width": 360, "height": 740}


async def test_an_admin_manages_coalitions_from_the_page(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pages, "JOIN_WAIT_SECONDS", 0.0)
    outsider = homeserver.create_account("outsider")
    async with running_web(homeserver, tmp_path / "node") as web_node:
        node = web_node.node
        admin = await web_node.logged_in("amaru")
        assert 'href="/admin/coalitions"' in (await admin.get("/admin")).text
        page = await admin.get("/admin/coalitions")
        assert page.status == 200
        assert "This node is in no coalition yet." in page.text
        assert (await node.matrix_login()).user_id in page.text
        assert "Invite an organisation" not in page.text  # nothing to invite into yet

        blank = await admin.post("/admin/coalitions", {"name": "  "})
        assert blank.status == 422
        assert 'id="f-name-error"' in blank.text and "Give the coalition a name" in blank.text
        assert await node.coalitions() == []

        made = await admin.post("/admin/coalitions", {"name": "Red Regional de Protección"})
        assert made.status == 200 and made.path == "/admin/coalitions"
        assert "The coalition was created." in made.text
        assert "Red Regional de Protección" in made.text
        # One coalition: the invite and leave forms name it, no choice to make.
        assert '<select id="f-invite-coalition"' not in made.text
        made = await admin.post("/admin/coalitions", {"name": "Plataforma Nacional"})
        first, second = await node.coalitions()
        assert (first.name, second.name) == ("Red Regional de Protección", "Plataforma Nacional")
        assert first.room_id in made.text and second.coalition_id in made.text
        assert '<select id="f-invite-coalition"' in made.text
        assert "1 member:" in made.text and "Colectivo Tejiendo Memoria" in made.text

        bad = await admin.post("/admin/coalitions/invite",
                               {"coalition": first.coalition_id, "matrix_user_id": "outsider"})
        assert bad.status == 422 and 'id="f-matrix_user_id-error"' in bad.text
        unchosen = await admin.post("/admin/coalitions/invite",
                                    {"coalition": "", "matrix_user_id": outsider.user_id})
        assert unchosen.status == 422 and 'id="f-invite-coalition-error"' in unchosen.text
        invited = await admin.post("/admin/coalitions/invite", {
            "coalition": second.coalition_id, "matrix_user_id": outsider.user_id})
        assert invited.status == 200 and "The node was invited." in invited.text
        async with node.transport() as transport:
            state = await transport.room_state(second.room_id)
        assert [e.content.get("membership") for e in state if e.type == "m.room.member"
                and e.state_key == outsider.user_id] == ["invite"]

        # This node's own account was never invited to a room another account made.
        async with node.transport() as transport:
            nowhere = await transport.create_room(initial_state=[])
            await transport.leave(nowhere)
        refused = await admin.post("/admin/coalitions/join", {"room_id": nowhere})
        assert refused.status == 409 and 'id="f-room_id-error"' in refused.text
        assert "was not invited to this room yet" in refused.text
        malformed = await admin.post("/admin/coalitions/join", {"room_id": "red regional"})
        assert malformed.status == 422 and 'id="f-room_id-error"' in malformed.text

        unconfirmed = await admin.post("/admin/coalitions/leave",
                                       {"coalition": second.coalition_id})
        assert unconfirmed.status == 422 and 'id="f-confirm-error"' in unconfirmed.text
        assert len(await node.coalitions()) == 2
        left = await admin.post("/admin/coalitions/leave",
                                {"coalition": second.coalition_id, "confirm": "yes"})
        assert left.status == 200 and "This node left the coalition." in left.text
        assert "this node left it" in left.text and "Left on" in left.text
        assert [c.coalition_id for c in await node.coalitions()] == [first.coalition_id]
        gone = await admin.post("/admin/coalitions/leave",
                                {"coalition": second.coalition_id, "confirm": "yes"})
        assert gone.status == 422 and 'id="f-leave-coalition-error"' in gone.text

        spanish = await admin.post("/language", {"language": "es", "next": "/admin/coalitions"})
        assert "Las coaliciones de este nodo" in spanish.text
        assert "este nodo salió de ella" in spanish.text

        for username in ("beatriz", "chidi"):
            other = await web_node.logged_in(username)
            assert (await other.get("/admin/coalitions")).status == 403


async def test_the_page_says_when_the_homeserver_cannot_be_reached(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_web(config) as web_node:
        admin = await web_node.logged_in("amaru")
        await admin.get("/admin/coalitions")
        answer = await admin.post("/admin/coalitions", {"name": "Red Regional"})
        assert answer.status == 503
        assert "The homeserver cannot be reached now." in answer.text
        assert await web_node.node.coalitions() == []


async def test_the_page_fits_a_phone_and_labels_every_control(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_web(config) as web_node, async_playwright() as playwright:
        async with web_node.node.store.transaction() as tx:
            for number, name in enumerate(("Red Regional de Protección de Personas Defensoras"
                                           " de la Tierra y el Territorio", None)):
                room = f"!{'x' * 40}{number}:coalition.example.org"
                await in_coalition(tx, web_node.node.org_id, coalition_id=room, name=name)
        web_node.node.forget_coalitions()
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport=PHONE)
            await page.goto(web_node.base + "/login")
            await page.get_by_label("User name").fill("amaru")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_label("6-digit code").fill(web_node.code("amaru"))
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(web_node.base + "/")
            await page.goto(web_node.base + "/admin/coalitions")
            await page.get_by_role("button", name="Leave the coalition").click()  # unticked
            await page.wait_for_load_state()
            assert await page.locator("#f-confirm-error").is_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{width} px wide at 360 px"
            unlabelled = await page.evaluate("""
                [...document.querySelectorAll('input, select, textarea')]
                  .filter(e => e.type !== 'hidden' && e.labels.length === 0)
                  .map(e => e.name)
            """)
            assert unlabelled == []
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "coalitions-360.png"), full_page=True)
        finally:
            await chromium.close()
