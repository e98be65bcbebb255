"""The alert endpoints on one node: validation, roles, settings, and refusals before sending."""

from __future__ import annotations

from pathlib import Path

from deploy.homeserver import Homeserver
from node.core.store import Role
from tests.support.api_harness import running_api

GOOD = {"alert_type": "arrest", "country": "CO", "text": "Sntl detenida en Suba",
        "asks": ["legal_support"]}


async def test_alert_endpoints_validate_and_refuse_without_members(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        assert await api.json("GET", "/alerts", Role.viewer) == {"items": []}

        bad = await api.json("POST", "/alerts", json={**GOOD, "alert_type": "picnic",
                                                      "country": "XX"}, expect=422)
        fields = {f["field"] for f in bad["error"]["fields"]}
        assert {"body.alert_type", "body.country"} <= fields
        assert "Sntl" not in str(bad)

        twice = await api.json("POST", "/alerts",
                               json={**GOOD, "asks": ["legal_support", "legal_support"]},
                               expect=422)
        assert [f["field"] for f in twice["error"]["fields"]] == ["body.asks"]
        alone = await api.json("POST", "/alerts", json=GOOD, expect=422)
        assert "no other verified member" in alone["error"]["message"]
        withheld = await api.json("POST", "/alerts", json={**GOOD, "withhold": ["text"]},
                                  expect=422)
        assert "cannot withhold text" in withheld["error"]["message"]
        stranger = await api.json("POST", "/alerts",
                                  json={**GOOD, "recipients": ["o" + "z" * 25]}, expect=422)
        assert stranger["error"]["fields"][0]["field"] == "body.recipients"
        await api.json("POST", "/alerts", Role.viewer, json=GOOD, expect=403)
        assert await api.json("GET", "/alerts", Role.viewer) == {"items": []}

        missing = "0190a5c4-0000-7000-8000-0000000000aa"
        await api.json("GET", f"/alerts/{api.node.org_id}/{missing}", Role.viewer, expect=404)
        await api.json("POST", f"/alerts/{missing}/status", json={"status": "closed"},
                       expect=404)
        await api.json("POST", f"/alerts/{api.node.org_id}/{missing}/answer",
                       json={"answer": "seen"}, expect=404)
        await api.json("POST", f"/alerts/{api.node.org_id}/{missing}/answer",
                       json={"answer": "maybe"}, expect=422)


async def test_alert_settings_are_for_admins(homeserver: Homeserver, tmp_path: Path) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        defaults = await api.json("GET", "/alerts/settings", Role.admin)
        assert defaults == {"escalate_after_seconds": 600, "late_after_seconds": 120}
        await api.json("GET", "/alerts/settings", Role.editor, expect=403)
        changed = {"escalate_after_seconds": 90, "late_after_seconds": 30}
        assert await api.json("PUT", "/alerts/settings", Role.admin, json=changed) == changed
        assert await api.json("GET", "/alerts/settings", Role.admin) == changed
        await api.json("PUT", "/alerts/settings", Role.admin,
                       json={"escalate_after_seconds": 0}, expect=422)


async def test_alert_watchers_are_for_admins_and_must_be_matrix_accounts(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        assert await api.json("GET", "/alerts/watchers", Role.admin) == {"users": []}
        await api.json("PUT", "/alerts/watchers", Role.editor, json={"users": []}, expect=403)
        refused = await api.json("PUT", "/alerts/watchers", Role.admin,
                                 json={"users": ["ana@example.org"]}, expect=422)
        assert [f["field"] for f in refused["error"]["fields"]] == ["body.users[0]"]
        chosen = {"users": ["@beto:example.org", "@ana:example.org", "@ana:example.org"]}
        saved = await api.json("PUT", "/alerts/watchers", Role.admin, json=chosen)
        assert saved == {"users": ["@ana:example.org", "@beto:example.org"]}
        assert await api.json("GET", "/alerts/watchers", Role.admin) == saved
