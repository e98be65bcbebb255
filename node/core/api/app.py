"""The node's HTTP API: every endpoint under ``/api/v1`` and token authentication.

    app = web.Application()
    mount_api(app, node)

No global state: the endpoints close over the node they are built for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from node.core.api.framework import Api, Authenticator, Principal
from node.core.api.status import NodeEndpoints
from node.core.runtime import Node
from node.features.alerts.api import AlertEndpoints
from node.features.campaigns.api import CampaignEndpoints, LetterEndpoints
from node.features.cases.api import CaseEndpoints
from node.features.dedup.api import DedupEndpoints
from node.features.figures.api import AdvocacyEndpoints
from node.features.figures.coalition_api import CoalitionViewEndpoints
from node.features.sharing.api import SharingEndpoints

API_TITLE = "Minga node API"
API_VERSION = "1"


def unix_now() -> int:
    return int(time.time())


def build_api(node: Node, *, now: Callable[[], int] = unix_now) -> Api:
    """All endpoints of ``node``; ``now`` gives the issue time of new record versions."""
    api = Api(title=API_TITLE, version=API_VERSION)
    for endpoint in (NodeEndpoints(node).endpoints() + CaseEndpoints(node, now).endpoints()
                     + SharingEndpoints(node, now).endpoints()
                     + AdvocacyEndpoints(node, now).endpoints()
                     + CoalitionViewEndpoints(node, now).endpoints()
                     + AlertEndpoints(node).endpoints()
                     + CampaignEndpoints(node, now).endpoints()
                     + LetterEndpoints(node, now).endpoints()
                     + DedupEndpoints(node).endpoints()):
        api.add(endpoint)
    return api


def token_authenticator(node: Node) -> Authenticator:
    """Bearer tokens checked against the node's hashed API tokens."""

    async def authenticate(token: str) -> Principal | None:
        async with node.store.lookup() as tx:  # asked on every call: one statement
            owner = await tx.tokens.verify(token)
        return None if owner is None else Principal(owner.user, owner.role)

    return authenticate


def mount_api(
    app: web.Application, node: Node, *, now: Callable[[], int] = unix_now
) -> None:
    build_api(node, now=now).mount(app, token_authenticator(node))
