"""The staff pages for joint campaigns and sign-on letters, on one node in a coalition."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from node.assembly import node_registry
from node.core.coalition import create_coalition
from node.features.campaigns.letters import verify_letter_appendix
from tests.support.web import WebNode, running_web

PROPOSAL = [
    ("title", "Liberen a la defensora Ligaya"), ("goal", "Her release and dropped charges."),
    ("target_name", "Department of Justice"), ("target_type", "government"),
    ("target_name", ""), ("target_type", "company"), ("countries", "ph"),
    ("themes", "criminalisation"), ("asks", "legal"), ("asks", "media"),
    ("min_organisations", "2"), ("deadline", "2030-01-31"),
]


@pytest.fixture
async def site(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[WebNode]:
    async with running_web(homeserver, tmp_path / "node") as web_node:
        await create_coalition(web_node.node, "Minga de prueba",
                               node_registry().after_coalition_created)
        yield web_node


async def test_a_proposal_is_checked_posted_and_shown(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    page = await browser.submit("/proposals/new", "/proposals/new",
                                [*PROPOSAL, ("action", "post")])
    assert page.status == 200 and re.fullmatch(r"/proposals/o\w+/[0-9a-f-]{36}", page.path)
    assert "Liberen a la defensora Ligaya" in page.text and "Open for responses" in page.text
    assert "Launch now" in page.text

    similar = [(k, "Libertad para la DEFENSORA Ligaya" if k == "title" else v)
               for k, v in PROPOSAL]
    checked = await browser.submit("/proposals/new", "/proposals/new",
                                   [*similar, ("action", "check")])
    assert checked.status == 200 and "may overlap" in checked.text
    assert page.path in checked.text  # a link to the overlapping proposal
    # Posting straight away shows the check first; posting from that page goes through.
    shown = await browser.submit("/proposals/new", "/proposals/new",
                                 [*similar, ("action", "post")])
    assert shown.status == 200 and "may overlap" in shown.text
    posted = await browser.post("/proposals/new", [*similar, ("overlaps_seen", "yes"),
                                                   ("action", "post")])
    assert posted.path.startswith("/proposals/o") and "Libertad para" in posted.text
    listing = await browser.get("/proposals")
    assert listing.text.count("Liberen a la defensora Ligaya") == 1
    assert listing.text.count("Libertad para la DEFENSORA Ligaya") == 1

    bad = await browser.submit("/proposals/new", "/proposals/new",
                               [(k, "" if k == "goal" else v) for k, v in PROPOSAL]
                               + [("action", "post")])
    assert bad.status == 422 and "goal" in bad.text


async def test_a_letter_is_written_signed_and_exported(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    page = await browser.submit("/letters", "/letters", {
        "title": "Carta abierta", "text": "Exigimos su liberación.\n\nGracias.",
        "deadline": "2030-01-31", "campaign": ""})
    assert page.status == 200 and page.path.startswith("/letters/")
    signed = await browser.post(page.path + "/sign", {"signatory_name": "Óscar Ñañez",
                                                       "signatory_role": "Director"})
    assert "Óscar Ñañez, Director" in signed.text
    text = await browser.get(page.path + "/export.txt")
    assert verify_letter_appendix(text.text).valid
    async with browser.session.get(browser.base + page.path + "/export.html") as answer:
        assert answer.status == 200
        assert "'unsafe-inline'" in answer.headers["Content-Security-Policy"]
        assert "Verification appendix" in await answer.text()

    site.clock.value = 1_900_000_000  # after the deadline (2030-01-31)
    await browser.get(page.path)
    late = await browser.post(page.path + "/sign", {"signatory_name": "Someone Else"})
    assert late.status == 409 and "late signatures are not accepted" in late.text
