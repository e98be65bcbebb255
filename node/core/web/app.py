"""The web interface on the node's aiohttp application, next to the API.

    app = web.Application()
    mount_api(app, node)
    mount_web(app, node)

Every page goes through :func:`_pages`: it resolves the visit (session, language), refuses a
form post without a valid CSRF token (403), renders errors as pages, and adds the security
headers (no asset from another host may load: ``default-src 'none'``; no framing; no referrer;
no caching of pages that show case content). The role each page needs is declared with it
(:class:`PageRoute`) and checked in :func:`_guarded`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Final
from urllib.parse import quote

from aiohttp import web

from node.core.api.app import unix_now
from node.core.api.framework import API_PREFIX
from node.core.runtime import Node
from node.core.store import Role
from node.core.web.context import (
    STATIC_DIR,
    TEMPLATE_DIR,
    VISIT,
    WEB,
    Templates,
    WebContext,
    WebSettings,
    current_visit,
    form_data,
    render,
    see_other,
)
from node.core.web.csrf import FIELD as CSRF_FIELD
from node.core.web.dashboard import CORE_PAGES
from node.core.web.i18n import N_
from node.core.web.routes import Handler, PageRoute, WebExtensions
from node.core.web.sessions import resolve_visit, set_pre_session_cookie

log = logging.getLogger("minga.web")

STATIC_PREFIX: Final = "/static/"
PASSWORD_PAGE: Final = "/account/password"
TWO_STEP_PAGE: Final = "/account/two-step"
_ALWAYS_ALLOWED: Final = frozenset({"/logout", "/account/language"})
STREAMED: Final = web.AppKey("minga_streamed_pages", set[Handler])
"""The handlers of pages that stream their body (``PageRoute.streams_body``)."""
BARE_PATHS: Final = web.AppKey("minga_bare_paths", set[str])
"""Paths served outside the web interface: no session, no CSRF, no error page (``/health``)."""


def bare_paths(app: web.Application) -> set[str]:
    """The app's :data:`BARE_PATHS`, made on first use (mounting order does not matter)."""
    if BARE_PATHS not in app:
        app[BARE_PATHS] = set()
    return app[BARE_PATHS]

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
                               " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

ERROR_TEXTS: Final = {
    400: (N_("Not understood"), N_("The node could not understand this request.")),
    403: (N_("Not allowed"), N_("Your account does not have the role this page needs.")),
    404: (N_("Not found"), N_("There is no page here. It may have been deleted.")),
    405: (N_("Not allowed"), N_("This page cannot be used that way.")),
    409: (N_("Not possible now"),
          N_("This cannot be done in the record's current state. Reload it and try again.")),
    500: (N_("Something went wrong"),
          N_("The node could not complete this. Nothing was changed; the node's log says more.")),
}
CSRF_REFUSED: Final = (
    N_("The form has expired"),
    N_("This form did not come from this node's pages, or your session changed. Go back,"
       " reload the page, and try again."),
)


def error_page(request: web.Request, status: int,
               texts: tuple[str, str] | None = None) -> web.Response:
    title, explanation = texts or ERROR_TEXTS.get(status, ERROR_TEXTS[500])
    return render(request, "error.html", status=status, title=title, explanation=explanation)


def _login_redirect(request: web.Request) -> web.Response:
    target = request.path_qs if request.method == "GET" else "/"
    return see_other("/login?next=" + quote(target, safe="/"))


def _guarded(route: PageRoute) -> Handler:
    needed = route.role

    async def handle(request: web.Request) -> web.StreamResponse:
        if needed is None:
            return await route.handler(request)
        staff = current_visit(request).staff
        if staff is None:
            return _login_redirect(request)
        if request.path not in _ALWAYS_ALLOWED:
            if staff.must_change_password and request.path != PASSWORD_PAGE:
                return see_other(PASSWORD_PAGE)
            needs_two_step = staff.role == Role.admin and not staff.has_totp
            if needs_two_step and request.path not in (TWO_STEP_PAGE, PASSWORD_PAGE):
                return see_other(TWO_STEP_PAGE)
        if not staff.role.allows(needed):
            return error_page(request, 403)
        return await route.handler(request)

    return handle


async def _csrf_ok(request: web.Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    visit = current_visit(request)
    if visit.new_pre_session is not None:  # the browser sent no cookie to check against
        return False
    if request.match_info.handler in request.app[STREAMED]:
        submitted = request.query.get(CSRF_FIELD, "")
    else:
        submitted = (await form_data(request)).get(CSRF_FIELD, "")
    return hmac.compare_digest(visit.csrf_token, submitted)


def _secure(response: web.StreamResponse, *, cache: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not cache:
        response.headers.update(NO_STORE)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not await _csrf_ok(request):
        return error_page(request, 403, CSRF_REFUSED)
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_page(request, error.status)
    except Exception as error:  # a page must never show a traceback or content in an error
        log.error("internal error in %s %s: %s", request.method, request.rel_url.path,
                  type(error).__name__)
        return error_page(request, 500)


@web.middleware
async def _pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API_PREFIX) or request.path in bare_paths(request.app):
        return await handler(request)
    if request.path.startswith(STATIC_PREFIX):
        response = await handler(request)
        _secure(response, cache=True)
        return response
    visit = await resolve_visit(request, request.app[WEB])
    request[VISIT] = visit
    response = await _answer(request, handler)
    if visit.new_pre_session is not None:
        set_pre_session_cookie(response, request, visit.new_pre_session)
    _secure(response)
    return response


def mount_web(
    app: web.Application,
    node: Node,
    extensions: WebExtensions,
    *,
    now: Callable[[], int] = unix_now,
    settings: WebSettings | None = None,
    context: WebContext | None = None,
) -> WebContext:
    """Serve the staff pages of ``node`` (the core's and the features' ``extensions``) on
    ``app``; returns the web context (tests use it)."""
    ctx = context or WebContext(node, now, settings or WebSettings(),
                                templates=Templates([TEMPLATE_DIR, *extensions.template_dirs]),
                                dashboard_panels=tuple(extensions.dashboard_panels))
    app[WEB] = ctx
    app[STREAMED] = streamed = set()
    bare_paths(app)
    for route in [*CORE_PAGES, *extensions.pages]:
        handler = _guarded(route)
        app.router.add_route(route.method, route.path, handler)
        if route.streams_body:
            streamed.add(handler)
    for directory in extensions.static_dirs:
        app.router.add_static(f"{STATIC_PREFIX}{directory.parent.name}/", directory,
                              append_version=True)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, append_version=True)
    app.middlewares.append(_pages)
    return ctx
