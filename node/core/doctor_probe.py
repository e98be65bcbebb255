"""Gathering the facts ``minga doctor`` judges (:mod:`node.core.doctor`): thin, async, no rules.

Every request is bounded by a timeout; a failure becomes an :class:`Answer` with no status, never
an exception. The node's access token is sent only to its own homeserver and never printed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from node.core.config import ConfigError, NodeConfig, load_config
from node.core.doctor import (
    Answer,
    CoalitionFacts,
    DeploymentFacts,
    Finding,
    HomeserverFacts,
    judge,
)
from node.core.runtime import Node, NodeNotReady, config_path, open_node

REQUEST_TIMEOUT = 20.0
VERSIONS = "/_matrix/client/versions"
WHOAMI = "/_matrix/client/v3/account/whoami"
CAPABILITIES = "/_matrix/client/v3/capabilities"
OVERRIDE_RATELIMIT = "/_synapse/admin/v1/users/{user}/override_ratelimit"
JOINED_MEMBERS = "/_matrix/client/v3/rooms/{room}/joined_members"
PROFILE = "/_matrix/client/v3/profile/{user}"

DoctorCheck = Callable[[NodeConfig, float], Awaitable[list[Finding]]]
"""A feature's own doctor check: gathers its facts, judges them with pure rules."""


def _server_name(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


class _Homeserver:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self.session, self.url, self.token = session, url.rstrip("/"), token

    async def get(self, path: str, *, auth: bool = True) -> tuple[Answer, str | None]:
        """The answer and its ``Date`` header. (A refused token fails even requests that need
        none, so those go without it.)"""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and auth else {}
        try:
            async with self.session.get(self.url + path, headers=headers) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                body = body if isinstance(body, dict) else {}
                errcode, error = body.get("errcode"), body.get("error")
                return Answer(status=response.status,
                              errcode=errcode if isinstance(errcode, str) else None,
                              error=error if isinstance(error, str) else None,
                              body=body), response.headers.get("Date")
        except aiohttp.ClientConnectorCertificateError as failure:
            return Answer(error=str(failure.certificate_error), tls_failed=True), None
        except (aiohttp.ClientSSLError, ssl.SSLError) as failure:
            return Answer(error=type(failure).__name__, tls_failed=True), None
        except (TimeoutError, aiohttp.ClientError, OSError) as failure:
            return Answer(error=type(failure).__name__), None

    async def answer(self, path: str) -> Answer:
        return (await self.get(path))[0]


def _unix(date_header: str | None) -> float | None:
    if not date_header:
        return None
    try:
        return parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None


async def gather_homeserver(url: str, configured_user: str | None, token: str | None,
                            coalition_rooms: Sequence[tuple[str, str]] = (),
                            clock: Callable[[], float] = time.time) -> HomeserverFacts:
    """The facts about the homeserver at ``url``, and about each coalition room
    ``coalition_rooms`` names (coalition id, room id) when logged in with ``token``."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        server = _Homeserver(session, url, token)
        before = clock()
        versions, date = await server.get(VERSIONS, auth=False)
        local_time = (before + clock()) / 2
        facts: dict[str, Any] = {"url": url, "versions": versions, "server_time": _unix(date),
                                 "local_time": local_time, "configured_user": configured_user}
        if token is None or not versions.ok:
            return HomeserverFacts(**facts)
        facts["whoami"] = whoami = await server.answer(WHOAMI)
        if not whoami.ok:
            return HomeserverFacts(**facts)
        user = str(whoami.body.get("user_id") or configured_user)
        facts["capabilities"], facts["rate_limit"] = await asyncio.gather(
            server.answer(CAPABILITIES),
            server.answer(OVERRIDE_RATELIMIT.format(user=quote(user, safe=""))))
        probed: dict[str, Answer] = {}  # a server in several coalitions is asked once
        facts["coalitions"] = [await _coalition_facts(server, coalition_id, room, user, probed)
                               for coalition_id, room in coalition_rooms]
        return HomeserverFacts(**facts)


async def _coalition_facts(server: _Homeserver, coalition_id: str, room: str, own: str,
                           probed: dict[str, Answer]) -> CoalitionFacts:
    members = await server.answer(JOINED_MEMBERS.format(room=quote(room, safe="")))
    return CoalitionFacts(coalition_id=coalition_id, room=room, members=members,
                          member_servers=await _member_servers(server, members, own, probed))


async def _member_servers(server: _Homeserver, members: Answer, own: str,
                          probed: dict[str, Answer]) -> dict[str, Answer]:
    """One account per other server in the coalition room, its profile fetched by our
    homeserver over federation (Synapse asks the member's server every time); servers in
    ``probed`` were asked already (for another coalition)."""
    joined = members.body.get("joined") if members.ok else None
    by_server: dict[str, str] = {}
    for user in sorted(joined if isinstance(joined, dict) else {}):
        name = _server_name(user)
        if name and name != _server_name(own):
            by_server.setdefault(name, user)
    asked = [name for name in by_server if name not in probed]
    answers = await asyncio.gather(*(server.answer(PROFILE.format(
        user=quote(by_server[name], safe=""))) for name in asked))
    probed.update(zip(asked, answers, strict=True))
    return {name: probed[name] for name in by_server}


async def _node_facts(node: Node, clock: Callable[[], float] = time.time) -> HomeserverFacts:
    login = await node.matrix_login()
    rooms = [(c.coalition_id, c.room_id) for c in await node.coalitions()]
    return await gather_homeserver(login.homeserver_url, node.config.homeserver.user_id,
                                   login.access_token, rooms, clock)


async def homeserver_findings(node: Node) -> list[Finding]:
    """What is wrong between an open node and its homeserver (``minga run`` logs these)."""
    facts = DeploymentFacts(config_file="node.toml", homeserver=await _node_facts(node))
    return judge(facts)


async def run_doctor(config: str | Path | None, checks: Sequence[DoctorCheck],
                     clock: Callable[[], float] = time.time) -> list[Finding]:
    """Gather every fact about the deployment configured in ``config`` and judge them."""
    path = config_path(config)
    try:
        node_config = load_config(path)
    except ConfigError as error:
        return judge(DeploymentFacts(config_file=str(path), config_error=str(error)))
    store_error = None
    try:
        async with open_node(path) as node:
            homeserver = await _node_facts(node, clock)
    except NodeNotReady as error:
        store_error = str(error)
        homeserver = await gather_homeserver(
            str(node_config.homeserver.url), node_config.homeserver.user_id, None, (), clock)
    findings = judge(DeploymentFacts(config_file=str(path), store_error=store_error,
                                     homeserver=homeserver))
    for check in checks:
        findings.extend(await check(node_config, clock()))
    return findings
