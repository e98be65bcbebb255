"""A member whose node keeps its store on PostgreSQL, federating with one on SQLite (M11).

B is created with ``minga init --store-url postgresql://...`` (password from a file) on the
second homeserver, joins the coalition A (SQLite, first homeserver) created, shares a case
with A, receives A's alert and answers it. The PostgreSQL server holds ciphertext only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from node.core.config import StoreSection, load_config
from node.core.store import Role
from node.features.alerts.service import DELIVERED, HELPING, list_alerts, respond, send_alert
from schemas.payloads import Alert
from tests.support.api_harness import SAMPLE_CASES
from tests.support.postgres import PostgresServer
from tests.support.sharing import ORGS, eventually, form_coalition, member_running, new_member
from tests.support.stores import database_content

SECRET_TEXT = "Sntl-pg: el defensor fue retenido en el retén de la vía a Tumaco"
SHARED_FIELDS = ["country", "incident_date", "violations", "place"]


async def test_a_member_on_postgresql_shares_receives_and_answers_an_alert(
        federation: Federation, postgres: PostgresServer, tmp_path: Path) -> None:
    password_file = tmp_path / "store-password"
    password_file.write_text(postgres.password)
    url = postgres.new_database(with_password=False)
    on_sqlite = await new_member(federation[0], tmp_path / "a", *ORGS[0])
    on_postgresql = await new_member(
        federation[1], tmp_path / "b", *ORGS[1],
        store=StoreSection(url=url, password_file=password_file))
    assert load_config(on_postgresql).store.url == url
    assert not (tmp_path / "b" / "store.db").exists()
    await form_coalition([on_sqlite, on_postgresql])

    async with member_running(on_sqlite) as a, member_running(on_postgresql) as b:
        case = await b.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
        await b.json("POST", f"/cases/{case['record_id']}/share",
                     json={"recipients": [a.node.org_id], "fields": SHARED_FIELDS})

        async def shared_case_at_a() -> dict[str, Any] | None:
            answer = await a.call("GET", f"/received/{b.node.org_id}/{case['record_id']}",
                                  Role.viewer)
            return await answer.json() if answer.status == 200 else None  # type: ignore[no-any-return]

        view = await eventually(shared_case_at_a, what="B's case at A")
        assert view["verification"] == "verified"
        assert view["claims"]["place"] == SAMPLE_CASES["cauca"]["place"]

        alert = Alert.model_validate({"alert_type": "arrest", "urgency": "critical",
                                      "country": "CO", "asks": ["legal_support"],
                                      "text": SECRET_TEXT})
        sent = await send_alert(a.node, alert, withhold=["case"], actor="ana",
                                now=int(time.time()))

        async def alert_at_b() -> Any:
            return next((s for s in await list_alerts(b.node)
                         if s.record_id == sent.record_id), None)

        arrived = await eventually(alert_at_b, what="A's alert at B")
        assert arrived.claims["text"] == SECRET_TEXT
        await respond(b.node, a.node.org_id, sent.record_id, answer=HELPING,
                      offers=["legal_support"], actor="beto", now=int(time.time()))

        async def answered() -> Any:
            states = [s for s in await list_alerts(a.node) if s.record_id == sent.record_id]
            statuses = [r.status for r in states[0].recipients] if states else []
            return states[0] if statuses == [HELPING] else None

        final = await eventually(answered, what="B's answer at A")
        member = final.recipient(b.node.org_id)
        assert member is not None and [e.status for e in member.answers] == [DELIVERED, HELPING]

        stored = await database_content(b.node.store, url)
        assert b"Sntl-pg" not in stored  # the alert text, ciphertext only on the server
        assert SAMPLE_CASES["cauca"]["narrative"].encode() not in stored
