"""Logging in and out, and choosing the language (also before logging in).

One form asks for the user name, the password and — for accounts with two-step login — the
6-digit code. A refusal does not say which of the three was wrong. Failures are throttled per
account name and per address (:mod:`node.core.web.throttle`) and audited when the account exists.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from node.core.store import StaffUser, staff_users
from node.core.web.context import (
    WebContext,
    current_visit,
    form_data,
    render,
    see_other,
    web_context,
)
from node.core.web.i18n import N_, available_languages
from node.core.web.routes import PageRoute
from node.core.web.sessions import (
    clear_session_cookie,
    set_language_cookie,
    set_session_cookie,
    start_session,
)
from node.features.accounts.passwords import MalformedPasswordHash, hash_password, verify_password
from node.features.accounts.totp import accepted_step

LOGIN: Final = "user.login"
LOGIN_FAILED: Final = "user.login_failed"
LOGOUT: Final = "user.logout"
USER_LANGUAGE: Final = "user.language"
MAX_FIELD = 1024

WRONG_CREDENTIALS: Final = N_(
    "The user name, password or code is not right. Accounts with two-step login need the"
    " 6-digit code from the authenticator app too."
)
THROTTLED: Final = N_(
    "Too many failed attempts. For your safety, logging in is paused for %(minutes)s"
    " minutes for this account or this network."
)


def safe_next(target: str | None) -> str:
    """Only a path on this node: never another site (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class _Decoy:
    """A password hash to verify against when the user does not exist, so the answer takes
    as long as for a real account and does not tell which names exist."""

    def __init__(self) -> None:
        self._stored: dict[str, object] | None = None

    def stored(self, ctx: WebContext) -> dict[str, object]:
        if self._stored is None:
            self._stored = hash_password("decoy password never used", ctx.settings.password_params)
        return self._stored


_DECOY = _Decoy()


async def _password_ok(ctx: WebContext, user: StaffUser | None, password: str) -> bool:
    stored = user.password if user is not None else _DECOY.stored(ctx)
    try:
        matches = await asyncio.to_thread(verify_password, password, stored)
    except MalformedPasswordHash:
        return False
    return matches and user is not None and not user.disabled


async def _second_factor(ctx: WebContext, user: StaffUser, code: str) -> bool:
    if user.totp_secret is None:
        return True
    step = accepted_step(user.totp_secret, code, ctx.totp_time(), user.totp_last_step)
    if step is None:
        return False
    async with ctx.node.store.transaction() as tx:
        await staff_users(tx).use_totp_step(user.user_id, step)
    return True


async def login_page(request: web.Request) -> web.StreamResponse:
    if current_visit(request).staff is not None:
        return see_other(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")),
                  username="", error=None)


def _refused(request: web.Request, username: str, target: str, error: str,
             status: int) -> web.Response:
    return render(request, "login.html", status=status, next=target, username=username,
                  error=error)


async def login(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    form = await form_data(request)
    username = form.get("username", "")[:MAX_FIELD].strip()
    password = form.get("password", "")[: MAX_FIELD + 1]
    code = form.get("code", "")[:MAX_FIELD]
    target = safe_next(form.get("next"))
    wait = ctx.throttle.wait_seconds(username, request.remote)
    if wait:
        minutes = str(max(1, -(-wait // 60)))
        return _refused(request, username, target, visit.gettext(THROTTLED, minutes=minutes), 429)
    async with ctx.node.store.read() as tx:
        user = await staff_users(tx).by_username(username) if username else None
    password_ok = await _password_ok(ctx, user, password)
    if not (password_ok and user is not None and await _second_factor(ctx, user, code)):
        ctx.throttle.failed(username, request.remote)
        if user is not None:
            async with ctx.node.store.transaction() as tx:
                await tx.audit.append(user.username, LOGIN_FAILED, target=user.user_id,
                                      details={"step": "code" if password_ok else "password"})
        return _refused(request, username, target, visit.gettext(WRONG_CREDENTIALS), 401)
    ctx.throttle.succeeded(username)
    token = await start_session(ctx, user)
    async with ctx.node.store.transaction() as tx:
        await tx.audit.append(user.username, LOGIN, target=user.user_id)
    response = see_other(target)
    set_session_cookie(response, request, token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    if visit.staff is not None and visit.session_hash is not None:
        async with ctx.node.store.transaction() as tx:
            await staff_users(tx).end_session(visit.session_hash)
            await tx.audit.append(visit.staff.username, LOGOUT, target=visit.staff.user_id)
    response = see_other("/login", done="logged_out")
    clear_session_cookie(response)
    return response


async def choose_language(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    language = form.get("language", "")
    if language not in available_languages():
        raise web.HTTPNotFound()
    visit = current_visit(request)
    if visit.staff is not None:
        ctx = web_context(request)
        async with ctx.node.store.transaction() as tx:
            await staff_users(tx).set_language(visit.staff.user_id, language)
            await tx.audit.append(visit.staff.username, USER_LANGUAGE,
                                  target=visit.staff.user_id, details={"language": language})
    response = see_other(safe_next(form.get("next")))
    set_language_cookie(response, request, language)
    return response


ROUTES: Final = [
    PageRoute("GET", "/login", login_page, None),
    PageRoute("POST", "/login", login, None),
    PageRoute("POST", "/logout", logout),
    PageRoute("POST", "/language", choose_language, None),
]
