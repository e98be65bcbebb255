"""The node's HTTP API: every endpoint under ``/api/v1`` and token authentication.

    app = web.Application()
    mount_api(app, node, registry.endpoints)

No global state: the endpoints close over the node they are built for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aiohttp import web

from node.core.api.framework import Api, Authenticator, Endpoint, Principal
from node.core.api.status import NodeEndpoints
from node.core.runtime import Node

API_TITLE = "Minga node API"
API_VERSION = "1"

EndpointGroup = Callable[[Node, Callable[[], int]], Sequence[Endpoint]]
"""A feature's endpoints for one node; the clock gives the issue time of records."""


def unix_now() -> int:
    return int(time.time())


def build_api(node: Node, groups: Sequence[EndpointGroup], *,
              now: Callable[[], int] = unix_now) -> Api:
    """All endpoints of ``node``: the core's, then each feature's; ``now`` gives the issue time
    of new record versions."""
    api = Api(title=API_TITLE, version=API_VERSION)
    for endpoint in NodeEndpoints(node).endpoints():
        api.add(endpoint)
    for group in groups:
        for endpoint in group(node, now):
            api.add(endpoint)
    return api


def token_authenticator(node: Node) -> Authenticator:
    """Bearer tokens checked against the node's hashed API tokens."""

    async def authenticate(token: str) -> Principal | None:
        if node.locked:  # stopping after a lock: nobody is let in any more
            return None
        async with node.store.lookup() as tx:  # asked on every call: one statement
            owner = await tx.tokens.verify(token)
        return None if owner is None else Principal(owner.user, owner.role)

    return authenticate


def mount_api(
    app: web.Application, node: Node, groups: Sequence[EndpointGroup], *,
    now: Callable[[], int] = unix_now,
) -> None:
    build_api(node, groups, now=now).mount(app, token_authenticator(node))
