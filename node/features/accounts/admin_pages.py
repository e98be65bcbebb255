"""Administration: staff accounts, API tokens, the audit log and the node's status.

Every change to an account or a token goes through :mod:`node.features.accounts.accounts` or the
token
repository and is audited with the acting admin's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from node.core.status import node_status
from node.core.store import RecordNotFound, Role, StaffUser, UsernameTaken, staff_users
from node.core.web.context import current_visit, form_data, render, see_other, staff_of, web_context
from node.core.web.i18n import N_, available_languages
from node.core.web.labels import ROLE_HINTS
from node.core.web.presenters import member_names
from node.core.web.routes import PageRoute
from node.features.accounts.accounts import (
    AccountError,
    create_account,
    log_out_everywhere,
    remove_totp,
    reset_password,
    set_disabled,
    set_role,
)
from node.features.accounts.passwords import WeakPassword
from sync.quarantine import list_quarantined

TOKEN_CREATED: Final = "token.create"
TOKEN_REVOKED: Final = "token.revoke"
AUDIT_PAGE: Final = 50
QUARANTINE_SHOWN: Final = 20
MAX_NAME: Final = 100
ADMIN: Final = Role.admin


def _role(value: str | None) -> Role | None:
    return Role(value) if value in {r.value for r in Role} else None


async def admin_index(request: web.Request) -> web.StreamResponse:
    return render(request, "admin/index.html")


# --- users ------------------------------------------------------------------------------------


async def _users_page(request: web.Request, errors: Mapping[str, str] | None = None,
                      values: Mapping[str, str] | None = None,
                      status: int = 200) -> web.Response:
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        users = await staff_users(tx).all()
    return render(request, "admin/users.html", status=status, users=users, errors=errors or {},
                  values=values or {}, role_hints=ROLE_HINTS)


async def users_page(request: web.Request) -> web.StreamResponse:
    return await _users_page(request)


async def create_user(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    form = await form_data(request)
    username = form.get("username", "").strip()
    role = _role(form.get("role"))
    language = form.get("language", "en")
    errors = {}
    if not username or len(username) > MAX_NAME:
        errors["username"] = visit.gettext(N_("Give a user name of at most %(n)s characters.")
                                           ) % {"n": MAX_NAME}
    if role is None:
        errors["role"] = visit.gettext(N_("Choose a role."))
    if language not in available_languages():
        language = "en"
    if not errors and role is not None:
        try:
            async with ctx.node.store.transaction() as tx:
                issued = await create_account(tx, username, role, actor=staff_of(request).username,
                                              language=language,
                                              params=ctx.settings.password_params)
        except UsernameTaken:
            errors["username"] = visit.gettext(N_("Another account already has this name."))
        else:
            return render(request, "admin/credentials.html", user=issued.user,
                          password=issued.password, created=True)
    return await _users_page(request, errors, dict(form), status=422)


async def _user(request: web.Request) -> StaffUser:
    ctx = web_context(request)
    try:
        async with ctx.node.store.read() as tx:
            return await staff_users(tx).get(request.match_info["user_id"])
    except RecordNotFound:
        raise web.HTTPNotFound() from None


async def user_page(request: web.Request) -> web.StreamResponse:
    return render(request, "admin/user.html", user=await _user(request), problem=None,
                  role_hints=ROLE_HINTS)


async def change_user(request: web.Request) -> web.StreamResponse:
    """One form per change: role, disable, enable, remove second factor, log out everywhere,
    reset password (shows the new password once)."""
    ctx = web_context(request)
    visit = current_visit(request)
    user = await _user(request)
    form = await form_data(request)
    change = request.match_info["change"]
    actor = staff_of(request).username
    try:
        async with ctx.node.store.transaction() as tx:
            if change == "role":
                role = _role(form.get("role"))
                if role is None:
                    raise web.HTTPBadRequest()
                await set_role(tx, user, role, actor=actor)
            elif change in ("disable", "enable"):
                await set_disabled(tx, user, change == "disable", actor=actor)
            elif change == "two-step":
                await remove_totp(tx, user, actor=actor)
            elif change == "sessions":
                await log_out_everywhere(tx, user, actor=actor)
            elif change == "reset":
                issued = await reset_password(tx, user, actor=actor,
                                              params=ctx.settings.password_params)
                return render(request, "admin/credentials.html", user=issued.user,
                              password=issued.password, created=False)
            else:
                raise web.HTTPNotFound()
    except AccountError:
        return render(request, "admin/user.html", status=409, user=user, role_hints=ROLE_HINTS,
                      problem=visit.gettext(N_("This is the last active admin. Make another"
                                               " account admin first.")))
    except WeakPassword:  # cannot happen with generated passwords; kept for safety
        raise web.HTTPBadRequest() from None
    if staff_of(request).user_id == user.user_id and change in ("sessions", "disable"):
        return see_other("/login", done="logged_out_everywhere")
    return see_other(f"/admin/users/{user.user_id}", done="user_updated")


# --- API tokens -------------------------------------------------------------------------------


async def _tokens_page(request: web.Request, *, new_token: str | None = None,
                       errors: Mapping[str, str] | None = None, status: int = 200) -> web.Response:
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        tokens = await tx.tokens.list()
    return render(request, "admin/tokens.html", status=status, tokens=list(reversed(tokens)),
                  new_token=new_token, errors=errors or {})


async def tokens_page(request: web.Request) -> web.StreamResponse:
    return await _tokens_page(request)


async def create_token(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    form = await form_data(request)
    user = form.get("user", "").strip()
    role = _role(form.get("role"))
    if not user or len(user) > MAX_NAME or role is None:
        return await _tokens_page(request, status=422, errors={
            "user": visit.gettext(N_("Say who or what the token is for, and choose a role."))})
    async with ctx.node.store.transaction() as tx:
        token = await tx.tokens.create(user, role)
        await tx.audit.append(staff_of(request).username, TOKEN_CREATED,
                              details={"role": role.value, "for": user})
    return await _tokens_page(request, new_token=token)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    token_id = request.match_info["token_id"]
    try:
        async with ctx.node.store.transaction() as tx:
            await tx.tokens.revoke(token_id)
            await tx.audit.append(staff_of(request).username, TOKEN_REVOKED, target=token_id)
    except RecordNotFound:
        raise web.HTTPNotFound() from None
    return see_other("/admin/tokens", done="token_revoked")


# --- audit log and status ---------------------------------------------------------------------


def _detail_text(details: Mapping[str, Any]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in details.items())


async def audit_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    before = request.query.get("before", "")
    async with ctx.node.store.read() as tx:
        events = await tx.audit.recent(limit=AUDIT_PAGE + 1,
                                       before_id=int(before) if before.isdigit() else None)
    page = events[:AUDIT_PAGE]
    rows = [(e.id, fmt.datetime(e.at), e.actor, e.action, e.target or "",
             _detail_text(e.details)) for e in page]
    return render(request, "admin/audit.html", rows=rows,
                  older=page[-1].id if len(events) > AUDIT_PAGE else None)


async def status_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    status = await node_status(ctx.node)
    async with ctx.node.store.read() as tx:
        quarantined = await list_quarantined(tx.session, limit=QUARANTINE_SHOWN)
        names = member_names(await tx.orgs.members())
    entries = [(fmt.datetime(datetime.fromtimestamp(e.at_ms / 1000, UTC)), e.sender, e.reason,
                e.detail, e.room_id) for e in quarantined]
    return render(request, "admin/status.html", node=status, quarantined=entries,
                  names=names, sync=status.get("sync"))


ROUTES: Final = [
    PageRoute("GET", "/admin", admin_index, ADMIN),
    PageRoute("GET", "/admin/users", users_page, ADMIN),
    PageRoute("POST", "/admin/users", create_user, ADMIN),
    PageRoute("GET", "/admin/users/{user_id:[0-9a-f]{32}}", user_page, ADMIN),
    PageRoute("POST", "/admin/users/{user_id:[0-9a-f]{32}}/{change}", change_user, ADMIN),
    PageRoute("GET", "/admin/tokens", tokens_page, ADMIN),
    PageRoute("POST", "/admin/tokens", create_token, ADMIN),
    PageRoute("POST", "/admin/tokens/{token_id:[0-9a-f]{16}}/revoke", revoke_token, ADMIN),
    PageRoute("GET", "/admin/audit", audit_page, ADMIN),
    PageRoute("GET", "/admin/status", status_page, ADMIN),
]
