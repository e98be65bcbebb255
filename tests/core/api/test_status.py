"""/api/v1/status and /api/v1/members on a real node in a real (one-server) coalition."""

from __future__ import annotations

from pathlib import Path

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys
from federation.roster import member_entry
from node.assembly import node_registry
from node.core.coalition import create_coalition
from node.core.store import Role
from schemas.payloads import OrgProfile
from tests.support.api_harness import SAMPLE_CASES, running_api


async def test_status_reports_the_node_and_its_counters(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node", "Kituo cha Haki", "KE") as api:
        status = await api.json("GET", "/status", Role.viewer)
        assert status == {
            "org_id": api.node.org_id,
            "org_name": "Kituo cha Haki",
            "country": "KE",
            "safety_code": api.node.keys.public().safety_code(),
            "holds_revocation_key": False,
            "homeserver": homeserver.url,
            "matrix_user_id": api.node.config.homeserver.user_id,
            "coalition_room_id": None,
            "coalition_name": None,
            "coalition_moved_from": None,
            "coalitions": [],
            "member_count": 0,
            "case_count": 0,
            "received_record_count": 0,
            "rejected_roster_entries": [],
            "sync": {"outbox_queued": 0, "outbox_unsent_frames": 0, "outbox_sent_frames": 0,
                     "outbox_pending_resends": 0, "outbox_error": None, "quarantined": 0,
                     "quarantine_by_reason": {}, "held_rooms": []},
        }
        for key in ("nairobi", "addis", "minsk"):
            await api.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)
        first = (await api.json("GET", "/cases?country=KE", Role.viewer))["items"][0]
        assert (await api.call("DELETE", f"/cases/{first['record_id']}")).status == 204
        assert (await api.json("GET", "/status", Role.viewer))["case_count"] == 2
        assert (await api.call("GET", "/status", None)).status == 401


async def test_members_lists_the_roster_with_safety_codes(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node", "Karapatan sa Timog", "PH") as api:
        assert await api.json("GET", "/members", Role.viewer) == {"members": []}
        coalition = await create_coalition(api.node, "Red Sur-Sur de Defensoras",
                                           node_registry().after_coalition_created)
        room_id = coalition.room_id
        partner = OrgKeys.generate()
        profile = OrgProfile(name="Comité Andino de Derechos", country="CO",
                             capabilities=["legal_support", "relocation"])
        async with api.node.store.transaction() as tx:
            await tx.orgs.save_member(
                partner.org_id, member_entry(partner, profile, "@minga-andino:example.org"),
                verified=False, safety_code=partner.public().safety_code(),
                matrix_user_id="@minga-andino:example.org",
            )
        members = {m["org_id"]: m for m in
                   (await api.json("GET", "/members", Role.viewer))["members"]}
        own = members[api.node.org_id]
        assert (own["name"], own["country"], own["verified"]) == ("Karapatan sa Timog", "PH", True)
        assert own["safety_code"] == api.node.keys.public().safety_code()
        assert own["matrix_user_id"] == api.node.config.homeserver.user_id
        other = members[partner.org_id]
        assert other["capabilities"] == ["legal_support", "relocation"]
        assert (other["name"], other["verified"]) == ("Comité Andino de Derechos", False)
        assert other["safety_code"] == partner.public().safety_code()
        status = await api.json("GET", "/status", Role.viewer)
        assert (status["coalition_room_id"], status["coalition_name"]) == (
            room_id, "Red Sur-Sur de Defensoras")
        assert status["member_count"] == 2
        (listed,) = status["coalitions"]
        assert (listed["coalition_id"], listed["room_id"], listed["name"], listed["left_at"],
                listed["member_count"]) == (room_id, room_id, "Red Sur-Sur de Defensoras", None,
                                            1)  # the partner is not verified
        assert listed["joined_at"].endswith("Z")
        assert (await api.call("GET", "/members", None)).status == 401
