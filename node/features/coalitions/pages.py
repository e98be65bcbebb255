"""The admin's coalitions page: the coalitions this node is and was in with their members,
and forms to create one, join one this node was invited to, invite another organisation's
node, and leave one (decision 0032). Works without JavaScript."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Final

from aiohttp import web

from node.core.registry import Registry
from node.core.store import Role
from node.core.web.context import current_visit, form_data, render, see_other, web_context
from node.core.web.i18n import N_
from node.core.web.presenters import when
from node.core.web.routes import Handler, PageRoute
from node.features.coalitions import actions
from node.features.coalitions.actions import CoalitionRefused, Refusal
from node.features.coalitions.rules import (
    MAX_NAME,
    clean_name,
    matrix_user_ok,
    name_ok,
    room_id_ok,
)

PAGE: Final = "/admin/coalitions"
JOIN_WAIT_SECONDS: Final = 15.0
"""How long joining waits for the invite to arrive before saying it did not."""
DONE: Final = frozenset({"created", "joined", "invited", "left"})

# Form fields, and the paths their errors are filed under (unique on the page).
INVITE_COALITION: Final = "invite.coalition"
LEAVE_COALITION: Final = "leave.coalition"


async def _page(request: web.Request, *, errors: Mapping[str, str] | None = None,
                values: Mapping[str, str] | None = None, problem: str | None = None,
                status: int = 200) -> web.Response:
    node = web_context(request).node
    fmt = current_visit(request).fmt
    views, names = await actions.overview(node)
    cards = [{
        "id": view.coalition.coalition_id, "label": view.coalition.label,
        "room_id": view.coalition.room_id, "active": view.coalition.active,
        "joined": when(view.coalition.joined_at, fmt),
        "left": when(view.coalition.left_at, fmt) if view.coalition.left_at else None,
        "members": [names.get(org_id, org_id) for org_id in view.members],
    } for view in views]
    done = request.query.get("done")
    return render(request, "coalitions/index.html", status=status, coalitions=cards,
                  active=[(c["id"], c["label"]) for c in cards if c["active"]],
                  account=await actions.own_matrix_account(node), errors=errors or {},
                  values=values or {}, problem=problem,
                  done=done if done in DONE else None, max_name=MAX_NAME)


async def coalitions_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


def _refused(request: web.Request, refused: CoalitionRefused, field: str,
             values: Mapping[str, str]) -> Awaitable[web.Response]:
    visit = current_visit(request)
    if refused.refusal is Refusal.UNAVAILABLE:
        return _page(request, values=values, status=503, problem=visit.gettext(N_(
            "The homeserver cannot be reached now. Try again later.")))
    if refused.refusal is Refusal.UNKNOWN:
        return _page(request, values=values, status=422, errors={field: visit.gettext(N_(
            "Choose a coalition this node is in."))})
    if refused.refusal is Refusal.NOT_INVITED:
        return _page(request, values=values, status=409, errors={field: visit.gettext(N_(
            "This node's account was not invited to this room yet, or it is no coalition"
            " room. Ask a member of the coalition to invite it, then try again."))})
    return _page(request, values=values, status=409, problem=visit.gettext(
        N_("The homeserver refused: %(reason)s"), reason=refused.detail))


def _create(registry: Registry) -> Handler:
    async def create(request: web.Request) -> web.StreamResponse:
        visit = current_visit(request)
        form = await form_data(request)
        name = form.get("name", "")
        if not name_ok(name):
            return await _page(request, values=form, status=422, errors={"name": visit.gettext(
                N_("Give the coalition a name of at most %(n)s characters."), n=MAX_NAME)})
        try:
            await actions.create(web_context(request).node, registry, clean_name(name))
        except CoalitionRefused as refused:
            return await _refused(request, refused, "name", form)
        return see_other(PAGE, done="created")
    return create


async def join(request: web.Request) -> web.StreamResponse:
    visit = current_visit(request)
    form = await form_data(request)
    room_id = form.get("room_id", "").strip()
    if not room_id_ok(room_id):
        return await _page(request, values=form, status=422, errors={"room_id": visit.gettext(
            N_("Give the id of the coalition room this node was invited to, like"
               " !abc:server."))})
    try:
        await actions.join(web_context(request).node, room_id, wait_seconds=JOIN_WAIT_SECONDS)
    except CoalitionRefused as refused:
        return await _refused(request, refused, "room_id", form)
    return see_other(PAGE, done="joined")


async def invite(request: web.Request) -> web.StreamResponse:
    visit = current_visit(request)
    form = await form_data(request)
    account = form.get("matrix_user_id", "").strip()
    errors = {}
    if not matrix_user_ok(account):
        errors["matrix_user_id"] = visit.gettext(N_(
            "Give the Matrix account of the other organisation's node, like @node:server."))
    coalition_id = form.get("coalition", "")
    if not coalition_id:
        errors[INVITE_COALITION] = visit.gettext(N_("Choose a coalition this node is in."))
    if errors:
        return await _page(request, values=form, status=422, errors=errors)
    try:
        await actions.invite(web_context(request).node, coalition_id, account)
    except CoalitionRefused as refused:
        return await _refused(request, refused, INVITE_COALITION, form)
    return see_other(PAGE, done="invited")


def _leave(registry: Registry) -> Handler:
    async def leave(request: web.Request) -> web.StreamResponse:
        visit = current_visit(request)
        form = await form_data(request)
        coalition_id = form.get("coalition", "")
        errors = {}
        if not coalition_id:
            errors[LEAVE_COALITION] = visit.gettext(N_("Choose a coalition this node is in."))
        if form.get("confirm") != "yes":
            errors["confirm"] = visit.gettext(N_(
                "Tick the box to confirm that you understand what leaving does."))
        if errors:
            return await _page(request, values=form, status=422, errors=errors)
        try:
            await actions.leave(web_context(request).node, registry, coalition_id)
        except CoalitionRefused as refused:
            return await _refused(request, refused, LEAVE_COALITION, form)
        return see_other(PAGE, done="left")
    return leave


def routes(registry: Registry) -> list[PageRoute]:
    """The page's routes, acting with ``registry``'s coalition hooks."""
    return [
        PageRoute("GET", PAGE, coalitions_page, Role.admin),
        PageRoute("POST", PAGE, _create(registry), Role.admin),
        PageRoute("POST", PAGE + "/join", join, Role.admin),
        PageRoute("POST", PAGE + "/invite", invite, Role.admin),
        PageRoute("POST", PAGE + "/leave", _leave(registry), Role.admin),
    ]
