"""A sign-on letter between three member nodes on two federated homeservers, through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from node.core.api.times import iso_time
from node.features.campaigns.api import APPENDIX_VALID_HEADER
from node.features.campaigns.letters import verify_letter_appendix
from tests.features.campaigns.test_federated import trio
from tests.support.api_harness import RunningApi
from tests.support.sharing import eventually

TEXT = ("Las organizaciones firmantes exigimos la liberación inmediata de la defensora "
        "Ligaya Dimaculangan.\n\nWe call on the Department of Justice to drop all charges.")


async def letter_at(api: RunningApi, issuer: str, record_id: str, what: str,
                    condition: Any = bool) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await api.call("GET", f"/letters/{issuer}/{record_id}")
        if answer.status != 200:
            return None
        view: dict[str, Any] = await answer.json()
        return view if condition(view) else None

    return await eventually(probe, what=what)


async def test_a_letter_collects_signatures_refuses_late_ones_and_exports_verifiably(
    federation: Federation, tmp_path: Path
) -> None:
    async with trio(federation, tmp_path) as t:
        a_org, b_org, c_org = (api.node.org_id for api in t.everyone)
        deadline = t.a.clock.value + 3_600
        letter = await t.a.json("POST", "/letters", expect=201, json={
            "title": "Carta abierta: liberen a Ligaya", "text": TEXT,
            "deadline": iso_time(deadline)})
        lid = letter["record_id"]
        assert letter["open"] and letter["signatories"] == []
        assert letter["deadline"] == iso_time(deadline)
        for api in (t.b, t.c):
            await letter_at(api, a_org, lid, "the letter at every member")

        await t.a.json("POST", f"/letters/{a_org}/{lid}/signatures",
                       json={"signatory_name": "Óscar Ñañez Ruiz",
                             "signatory_role": "Director ejecutivo"})
        await t.b.json("POST", f"/letters/{a_org}/{lid}/signatures",
                       json={"signatory_name": "Wanjiru Atieno", "signatory_role": "Chair"})

        def two(view: dict[str, Any]) -> bool:
            return len(view["signatories"]) == 2

        for api in t.everyone:  # live on every node, the letter's author included
            view = await letter_at(api, a_org, lid, "two signatories", two)
            assert {s["org_id"] for s in view["signatories"]} == {a_org, b_org}

        t.c.clock.value = deadline + 1
        late = await t.c.call("POST", f"/letters/{a_org}/{lid}/signatures",
                              json={"signatory_name": "Datu Makabayan"})
        assert late.status == 409
        message = (await late.json())["error"]["message"]
        assert "deadline" in message and "late signatures are not accepted" in message
        t.a.clock.value = deadline + 10
        closed = await t.a.json("GET", f"/letters/{a_org}/{lid}")
        assert not closed["open"] and c_org not in {s["org_id"] for s in closed["signatories"]}

        exported = await t.a.file(f"/letters/{a_org}/{lid}/export?format=text")
        text = exported.text
        assert exported.media_type == "text/plain; charset=utf-8"
        assert exported.file_name == f"letter-{lid}.txt"
        assert exported.headers[APPENDIX_VALID_HEADER] == "true"
        result = verify_letter_appendix(text)
        assert result.valid and result.signatories == 2, result.problems
        assert "2. Wanjiru Atieno, Chair" in text and TEXT in text

        # Verification fails if any signatory line is altered (list, statement, key, signature).
        altered = [text.replace("Wanjiru Atieno, Chair", "Wanjiru Atieno, Treasurer", 1),
                   text.replace('"signatory_name":"Wanjiru Atieno"',
                                '"signatory_name":"Wanjiru Atiena"', 1),
                   text.replace("exigimos", "pedimos", 1)]
        for changed in altered:
            assert changed != text
            assert not verify_letter_appendix(changed).valid

        at_b = await t.b.file(f"/letters/{a_org}/{lid}/export?format=json")
        assert at_b.headers[APPENDIX_VALID_HEADER] == "true"
        assert verify_letter_appendix(json.loads(at_b.text)).valid
        page = await t.b.file(f"/letters/{a_org}/{lid}/export?format=html")
        assert page.media_type == "text/html; charset=utf-8"
        assert page.text.startswith("<!doctype html>")
        assert "Óscar Ñañez Ruiz" in page.text and "Verification appendix" in page.text
