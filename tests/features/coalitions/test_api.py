"""``/api/v1/coalitions``: a node creates two coalitions, invites a second node into one, the
second node joins it and leaves it, the first leaves the other; and the refusals (decision
0032)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deploy.homeserver import Homeserver
from federation.roster import MEMBER_EVENT_TYPE
from federation.transport import MatrixTransport
from node.core.api.app import mount_api
from node.core.coalition import refresh_roster
from node.core.registry import Registry, build_registry
from node.core.runtime import Node, open_node
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.features.coalitions import CoalitionsFeature
from tests.support.api_harness import (
    USERS,
    FakeClock,
    RunningApi,
    _passphrase_env,
    create_node,
    serve_node,
)
from tests.support.offline_node import make_offline_node
from tests.support.sharing import eventually


def _by_id(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["coalition_id"]: item for item in listing["coalitions"]}


async def _members_seen(api: RunningApi, room_id: str, expected: set[str]) -> None:
    """Wait until ``api``'s node, reading the room's roster, sees exactly ``expected``."""
    async with api.node.transport() as transport:
        async def seen() -> bool:
            report = await refresh_roster(api.node, transport, room_id)
            return {member.org_id for member in report.members} == expected

        await eventually(seen, what="the roster")


async def _membership(api: RunningApi, room_id: str, user_id: str) -> str | None:
    async with api.node.transport() as transport:
        for event in await transport.room_state(room_id):
            if event.type == "m.room.member" and event.state_key == user_id:
                return str(event.content.get("membership"))
    return None


async def test_two_coalitions_are_created_joined_listed_and_left(homeserver: Homeserver,
                                                                 tmp_path: Path) -> None:
    andes = await create_node(homeserver, tmp_path / "andes", "Red Andina de Defensoras", "PE")
    haki = await create_node(homeserver, tmp_path / "haki", "Haki Ardhi Trust", "KE")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(serve_node(andes))
        b = await stack.enter_async_context(serve_node(haki))
        assert await a.json("GET", "/coalitions", Role.viewer) == {"coalitions": [],
                                                                   "organisations": {}}
        first = await a.json("POST", "/coalitions", Role.admin, expect=201,
                             json={"name": "  Red Regional de Protección "})
        second = await a.json("POST", "/coalitions", Role.admin, expect=201,
                              json={"name": "Plataforma Nacional"})
        assert first["name"] == "Red Regional de Protección" and first["active"] is True
        assert first["coalition_id"] == first["room_id"] != second["coalition_id"]
        assert first["members"] == [a.node.org_id] and first["left_at"] is None

        listing = await a.json("GET", "/coalitions", Role.viewer)
        assert [c["name"] for c in listing["coalitions"]] == ["Red Regional de Protección",
                                                             "Plataforma Nacional"]
        assert listing["organisations"] == {a.node.org_id: "Red Andina de Defensoras"}

        # Not invited yet: a clear refusal, nothing remembered.
        refused = await b.call("POST", "/coalitions/join", Role.admin,
                               json={"room_id": first["room_id"], "wait_seconds": 0})
        assert refused.status == 409
        assert (await refused.json())["error"]["code"] == "not_invited"
        assert (await b.json("GET", "/coalitions", Role.viewer))["coalitions"] == []

        b_account = (await b.node.matrix_login()).user_id
        invited = await a.json("POST", f"/coalitions/{first['coalition_id']}/invite",
                               Role.admin, json={"matrix_user_id": b_account})
        assert invited == {"coalition_id": first["coalition_id"], "matrix_user_id": b_account,
                           "room_id": first["room_id"]}
        joined = await b.json("POST", "/coalitions/join", Role.admin,
                              json={"room_id": invited["room_id"]})
        assert joined["coalition_id"] == first["coalition_id"]
        assert joined["name"] == "Red Regional de Protección"
        assert set(joined["members"]) == {a.node.org_id, b.node.org_id}

        await _members_seen(a, first["room_id"], {a.node.org_id, b.node.org_id})
        listing = _by_id(await a.json("GET", "/coalitions", Role.viewer))
        assert set(listing[first["coalition_id"]]["members"]) == {a.node.org_id, b.node.org_id}
        assert listing[second["coalition_id"]]["members"] == [a.node.org_id]
        names = (await a.json("GET", "/coalitions", Role.viewer))["organisations"]
        assert names[b.node.org_id] == "Haki Ardhi Trust"

        # The second node leaves: its account leaves the room, its roster entry is withdrawn,
        # the first node's roster no longer counts it; it lists the coalition as left.
        left = await b.json("POST", f"/coalitions/{first['coalition_id']}/leave", Role.admin)
        assert left["active"] is False and left["left_at"] is not None
        assert (await _membership(a, first["room_id"], b_account)) == "leave"
        async with a.node.transport() as transport:
            entry = await transport.state_event(first["room_id"], MEMBER_EVENT_TYPE,
                                                b.node.org_id)
        assert entry == {}
        await _members_seen(a, first["room_id"], {a.node.org_id})
        mine = await b.json("GET", "/coalitions", Role.viewer)
        assert [(c["coalition_id"], c["active"]) for c in mine["coalitions"]] == [
            (first["coalition_id"], False)]
        assert await b.node.coalitions() == []
        again = await b.call("POST", f"/coalitions/{first['coalition_id']}/leave", Role.admin)
        assert again.status == 404
        async with b.node.store.read() as tx:
            actions = [(e.action, e.target) for e in await tx.audit.recent(limit=20)]
        assert ("coalition.leave", first["coalition_id"]) in actions

        # The first node leaves the other coalition: listed after the one it is in, as left.
        await a.json("POST", f"/coalitions/{second['coalition_id']}/leave", Role.admin)
        listing = await a.json("GET", "/coalitions", Role.viewer)
        assert [(c["coalition_id"], c["active"]) for c in listing["coalitions"]] == [
            (first["coalition_id"], True), (second["coalition_id"], False)]
        assert (await _membership(a, first["room_id"], (await a.node.matrix_login()).user_id)
                ) == "join"
        assert [c.coalition_id for c in await a.node.coalitions()] == [first["coalition_id"]]


async def _error(api: RunningApi, method: str, path: str, role: Role | None = Role.admin,
                 **kwargs: Any) -> tuple[int, dict[str, Any]]:
    answer = await api.call(method, path, role, **kwargs)
    return answer.status, (await answer.json())["error"]


async def test_refusals_name_the_field_the_role_or_the_homeserver(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as api:
        status, error = await _error(api, "POST", "/coalitions", json={})
        assert status == 422 and [f["field"] for f in error["fields"]] == ["body.name"]
        status, error = await _error(api, "POST", "/coalitions", json={"name": "   "})
        assert status == 422 and [f["field"] for f in error["fields"]] == ["body.name"]
        status, error = await _error(api, "POST", "/coalitions",
                                     json={"name": "Red", "room": "!x:y"})
        assert status == 422 and [f["field"] for f in error["fields"]] == ["body.room"]
        status, error = await _error(api, "POST", "/coalitions/join",
                                     json={"room_id": "not a room"})
        assert status == 422 and [f["field"] for f in error["fields"]] == ["body.room_id"]
        status, error = await _error(api, "POST", "/coalitions/join",
                                     json={"room_id": "!a:b", "wait_seconds": 3600})
        assert status == 422 and [f["field"] for f in error["fields"]] == ["body.wait_seconds"]
        status, error = await _error(api, "POST", "/coalitions/!unknown:x/invite",
                                     json={"matrix_user_id": "node-at-server"})
        assert status == 422 and [f["field"] for f in error["fields"]] == [
            "body.matrix_user_id"]

        status, error = await _error(api, "POST", "/coalitions/!unknown:x/invite",
                                     json={"matrix_user_id": "@node:server"})
        assert (status, error["code"]) == (404, "unknown_coalition")
        status, error = await _error(api, "POST", "/coalitions/!unknown:x/leave")
        assert (status, error["code"]) == (404, "unknown_coalition")

        for role in (Role.viewer, Role.editor):
            status, error = await _error(api, "POST", "/coalitions", role, json={"name": "Red"})
            assert status == 403
            status, _ = await _error(api, "POST", "/coalitions/!unknown:x/leave", role)
            assert status == 403
        status, _ = await _error(api, "GET", "/coalitions", None)
        assert status == 401

        # This node's homeserver does not answer: 503 saying so, and nothing remembered.
        status, error = await _error(api, "POST", "/coalitions", json={"name": "Red"})
        assert (status, error["code"]) == (503, "homeserver_unavailable")
        assert "homeserver is unavailable" in error["message"]
        status, error = await _error(api, "POST", "/coalitions/join",
                                     json={"room_id": "!a:b", "wait_seconds": 0})
        assert (status, error["code"]) == (503, "homeserver_unavailable")
        assert (await api.json("GET", "/coalitions", Role.viewer))["coalitions"] == []


class _Recorder:
    """A feature that notes the coalition hooks it is given."""

    name = "recorder"

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []

    def register(self, registry: Registry) -> None:
        async def created(node: Node, coalition: Coalition, now: int) -> None:
            self.heard.append(("created", coalition.coalition_id))

        async def left(node: Node, transport: MatrixTransport, coalition: Coalition) -> None:
            # The hooks run while this node's account is still in the room, to leave the
            # feature's own rooms with the same transport.
            await transport.state_event(coalition.room_id, "m.room.create")
            self.heard.append(("left", coalition.coalition_id))

        registry.coalition_created.append(created)
        registry.coalition_left.append(left)


async def test_the_api_runs_the_features_coalition_hooks(homeserver: Homeserver,
                                                         tmp_path: Path) -> None:
    recorder = _Recorder()
    registry = build_registry([CoalitionsFeature(), recorder])
    config = await create_node(homeserver, tmp_path / "node", "Bantay Katutubo", "PH")
    with _passphrase_env():
        async with open_node(config) as node:
            async with node.store.transaction() as tx:
                token = await tx.tokens.create(USERS[Role.admin], Role.admin)
            app = web.Application()
            mount_api(app, node, registry.endpoints, now=FakeClock())
            async with TestClient(TestServer(app)) as client:
                api = RunningApi(node, client, {Role.admin: token, Role.viewer: token},
                                 FakeClock())
                made = await api.json("POST", "/coalitions", Role.admin, expect=201,
                                      json={"name": "Red de Protección"})
                assert recorder.heard == [("created", made["coalition_id"])]
                await api.json("POST", f"/coalitions/{made['coalition_id']}/leave", Role.admin)
                assert recorder.heard == [("created", made["coalition_id"]),
                                          ("left", made["coalition_id"])]
