"""The admin's keys page: the offline revocation key, rotation, revocations, "Lock now"."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.core.lock import lock_node, passphrase_warning
from node.core.store import Role
from node.core.web.context import render, staff_of, web_context
from node.core.web.routes import PageRoute

ADMIN: Final = Role.admin


async def keys_page(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    return render(request, "keys/index.html", org_id=node.org_id,
                  safety_code=node.keys.public().safety_code(),
                  signing_kid=node.keys.signing_kid,
                  holds_revocation_key=node.keys.revocation is not None)


async def lock_now(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    await lock_node(node, actor=staff_of(request).username)
    warning = passphrase_warning(node.config.node.passphrase_file)
    return render(request, "keys/locked.html", passphrase_file_warning=warning is not None)


ROUTES: Final = [
    PageRoute("GET", "/admin/keys", keys_page, ADMIN),
    PageRoute("POST", "/admin/keys/lock", lock_now, ADMIN),
]
