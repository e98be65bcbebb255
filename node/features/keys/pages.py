"""The admin's keys page: the offline revocation key, rotation, revocations, "Lock now"."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from aiohttp.web_request import FileField

from federation.expulsion import ExpulsionError
from federation.transport import TransportError
from node.core.expulsion import approve_expulsion, propose_expulsion
from node.core.keys import (
    RevocationRefused,
    own_rotations,
    publish_revocation,
    rotate_own_keys,
)
from node.core.lock import lock_node, passphrase_warning
from node.core.runtime import CoalitionNotChosen, NodeNotReady
from node.core.store import Role
from node.core.web.context import (
    current_visit,
    form_data,
    render,
    see_other,
    staff_of,
    web_context,
)
from node.core.web.i18n import N_, Formatter
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


MAX_REVOCATION_BYTES: Final = 64 * 1024


def _statement(posted: Mapping[str, Any], fmt: Formatter) -> dict[str, Any]:
    chosen = posted.get("file")
    if not (isinstance(chosen, FileField) and chosen.filename):
        raise RevocationRefused(fmt.gettext(N_("Choose the revocation file to publish.")))
    data = chosen.file.read(MAX_REVOCATION_BYTES + 1)
    try:
        if len(data) > MAX_REVOCATION_BYTES:
            raise ValueError
        statement = json.loads(data)
    except ValueError:
        raise RevocationRefused(fmt.gettext(N_(
            "This file is not a revocation made by minga keys revoke."))) from None
    if not isinstance(statement, dict):
        raise RevocationRefused(fmt.gettext(N_(
            "This file is not a revocation made by minga keys revoke.")))
    return statement


async def publish_revocation_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    try:
        statement = _statement(await request.post(), fmt)
        await publish_revocation(ctx.node, statement, actor=staff_of(request).username)
    except RevocationRefused as error:
        return render(request, "keys/revocation.html", status=422, error=str(error))
    except (NodeNotReady, TransportError) as error:
        return render(request, "keys/revocation.html", status=409, error=str(error))
    return see_other("/members", done="revocation")


async def propose_expulsion_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    now = ctx.now()
    try:
        await propose_expulsion(ctx.node, form.get("org_id", ""), form.get("reason", ""), now,
                                now, actor=staff_of(request).username,
                                coalition_id=form.get("coalition") or None)
    except ExpulsionError as error:
        return render(request, "keys/expulsion.html", status=422, error=str(error))
    except CoalitionNotChosen as error:
        # the coalition is not named or not this node's (422), or it is in none (409)
        return render(request, "keys/expulsion.html",
                      status=422 if await ctx.node.coalitions() else 409, error=str(error))
    except (NodeNotReady, TransportError) as error:
        return render(request, "keys/expulsion.html", status=409, error=str(error))
    return see_other("/members", done="expulsion")


async def approve_expulsion_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    try:
        await approve_expulsion(ctx.node, form.get("proposal", ""),
                                actor=staff_of(request).username)
    except ExpulsionError as error:
        return render(request, "keys/expulsion.html", status=422, error=str(error))
    except (NodeNotReady, TransportError) as error:
        return render(request, "keys/expulsion.html", status=409, error=str(error))
    return see_other("/members", done="expulsion")


ROUTES: Final = [
    PageRoute("GET", "/admin/keys", keys_page, ADMIN),
    PageRoute("POST", "/admin/keys/lock", lock_now, ADMIN),
    PageRoute("POST", "/admin/keys/rotate", rotate, ADMIN),
    PageRoute("POST", "/members/revocations", publish_revocation_page, ADMIN),
    PageRoute("POST", "/members/expulsions", propose_expulsion_page, ADMIN),
    PageRoute("POST", "/members/expulsions/approve", approve_expulsion_page, ADMIN),
]
