"""Who is visiting: the session cookie resolved to a staff user, the language, the CSRF token.

Sessions live in the store (``staff_sessions``), so logging out everywhere, disabling a user or
resetting a password ends them at once. A session ends after ``session_idle`` without a request
and ``session_lifetime`` after login, whichever comes first. The cookie is HttpOnly,
SameSite=Strict, Secure when the page came over TLS (directly or through a trusted proxy: decision
0028), and lives only as long as the browser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from node.core.store import StaffSession, StaffUser, staff_users
from node.core.web.context import Visit, WebContext
from node.core.web.csrf import PRE_SESSION_COOKIE, SESSION_COOKIE, new_pre_session_secret, token_for
from node.core.web.i18n import choose_language, formatter

LANGUAGE_COOKIE: Final = "minga_lang"


def _expired(session: StaffSession, ctx: WebContext, now: datetime) -> bool:
    settings = ctx.settings
    return (now - session.last_seen_at > settings.session_idle
            or now - session.created_at > settings.session_lifetime)


async def _session(ctx: WebContext, token: str) -> StaffSession | None:
    async with ctx.node.store.read() as tx:
        session = await staff_users(tx).session(token)
    if session is None:
        return None
    now = datetime.now(UTC)
    if session.user.disabled or _expired(session, ctx, now):
        async with ctx.node.store.transaction() as tx:
            await staff_users(tx).end_session(session.token_hash)
        return None
    if now - session.last_seen_at > ctx.settings.session_touch:
        async with ctx.node.store.transaction() as tx:
            await staff_users(tx).touch_session(session.token_hash)
    return session


async def resolve_visit(request: web.Request, ctx: WebContext) -> Visit:
    token = request.cookies.get(SESSION_COOKIE)
    # A locked node is stopping: no session is honoured any more.
    session = await _session(ctx, token) if token and not ctx.node.locked else None
    if session is not None and token is not None:
        language = choose_language(session.user.language)
        return Visit(session.user, session.token_hash, token_for(token), formatter(language))
    language = choose_language(request.cookies.get(LANGUAGE_COOKIE),
                               request.headers.get("Accept-Language"))
    pre_session = request.cookies.get(PRE_SESSION_COOKIE)
    fresh = None if pre_session else new_pre_session_secret()
    return Visit(None, None, token_for(pre_session or fresh or ""), formatter(language),
                 new_pre_session=fresh)


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str,
            *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict",
                        secure=request.secure, max_age=max_age)


def set_pre_session_cookie(response: web.StreamResponse, request: web.Request,
                           secret: str) -> None:
    _cookie(response, request, PRE_SESSION_COOKIE, secret)


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    _cookie(response, request, SESSION_COOKIE, token)


def set_language_cookie(response: web.StreamResponse, request: web.Request,
                        language: str) -> None:
    _cookie(response, request, LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600)


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


async def start_session(ctx: WebContext, user: StaffUser) -> str:
    """A new session (a new cookie value: no session fixation) for ``user``."""
    async with ctx.node.store.transaction() as tx:
        return await staff_users(tx).start_session(user.user_id)
