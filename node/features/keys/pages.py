"""The admin's keys page: the offline revocation key, rotation, revocations, "Lock now"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from node.core.keys import own_rotations, rotate_own_keys
from node.core.lock import lock_node, passphrase_warning
from node.core.store import Role
from node.core.web.context import current_visit, render, see_other, staff_of, web_context
from node.core.web.i18n import Formatter
from node.core.web.routes import PageRoute

ADMIN: Final = Role.admin


def _when(fmt: Formatter, unix: int) -> str:
    return fmt.datetime(datetime.fromtimestamp(unix, UTC))


async def keys_page(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    fmt = current_visit(request).fmt
    rotations = [(_when(fmt, r.effective_at), r.previous_kid, r.kid)
                 for r in reversed(own_rotations(node.keys))]
    return render(request, "keys/index.html", org_id=node.org_id,
                  safety_code=node.keys.public().safety_code(),
                  signing_kid=node.keys.signing_kid,
                  holds_revocation_key=node.keys.revocation is not None,
                  rotations=rotations, done=request.query.get("done"))


async def rotate(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    await rotate_own_keys(ctx.node, ctx.now, actor=staff_of(request).username)
    return see_other("/admin/keys", done="rotated")


async def lock_now(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    await lock_node(node, actor=staff_of(request).username)
    warning = passphrase_warning(node.config.node.passphrase_file)
    return render(request, "keys/locked.html", passphrase_file_warning=warning is not None)


ROUTES: Final = [
    PageRoute("GET", "/admin/keys", keys_page, ADMIN),
    PageRoute("POST", "/admin/keys/lock", lock_now, ADMIN),
    PageRoute("POST", "/admin/keys/rotate", rotate, ADMIN),
]
