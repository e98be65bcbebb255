"""What every page handler works with: the node's web context and the current visit.

    ctx = web_context(request)      # the node, settings, templates, throttle
    visit = current_visit(request)  # who is asking (or nobody), language, CSRF token
    return render(request, "dashboard.html", recent=...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from multidict import MultiDict

from federation.secretbox import DEFAULT_PARAMS, Argon2Params
from node.core.runtime import Node
from node.core.store import Role, StaffUser
from node.core.web.csrf import FIELD as CSRF_FIELD
from node.core.web.i18n import (
    LANGUAGE_NAMES,
    Formatter,
    available_languages,
    formatter,
    translations,
)
from node.core.web.labels import FLASH_MESSAGES, ROLE_NAMES
from node.core.web.presenters import field_name
from node.core.web.routes import DashboardPanel
from node.core.web.throttle import LoginThrottle

TEMPLATE_DIR: Final = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"


@dataclass(frozen=True)
class WebSettings:
    password_params: Argon2Params = DEFAULT_PARAMS
    session_idle: timedelta = timedelta(hours=4)
    session_lifetime: timedelta = timedelta(hours=24)
    session_touch: timedelta = timedelta(minutes=1)


def field_id(path: str) -> str:
    """HTML id of the input for a schema path: ``victims[1].name`` -> ``f-victims-1-name``."""
    return "f-" + path.replace("[", "-").replace("]", "").replace(".", "-")


class Templates:
    """One Jinja2 environment per language, with gettext installed (new-style, autoescaped)."""

    def __init__(self, directories: Sequence[Path] = (TEMPLATE_DIR,)) -> None:
        self._directories = list(directories)
        self._environments: dict[str, Environment] = {}

    def environment(self, language: str) -> Environment:
        if language not in self._environments:
            environment = Environment(
                loader=FileSystemLoader(self._directories),
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            fmt = formatter(language)
            environment.filters["field_id"] = field_id
            environment.filters["field_label"] = lambda path: field_name(path, fmt)
            environment.install_gettext_translations(  # type: ignore[attr-defined]
                translations(language), newstyle=True
            )
            self._environments[language] = environment
        return self._environments[language]

    def render(self, name: str, language: str, values: Mapping[str, Any]) -> str:
        return self.environment(language).get_template(name).render(values)


@dataclass
class WebContext:
    node: Node
    now: Callable[[], int]
    """Unix seconds: the issue time of record versions (the API's clock)."""
    settings: WebSettings = field(default_factory=WebSettings)
    wall_clock: Callable[[], float] = time.time
    """Real time: TOTP codes and login throttling."""
    templates: Templates = field(default_factory=Templates)
    dashboard_panels: tuple[DashboardPanel, ...] = ()
    """What the features add at the top of the dashboard (``Registry.web.dashboard_panels``)."""
    throttle: LoginThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = LoginThrottle(self.wall_clock)

    def totp_time(self) -> int:
        return int(self.wall_clock())


@dataclass
class Visit:
    """The person behind a request: a staff user with a session, or nobody yet."""

    staff: StaffUser | None
    session_hash: str | None
    csrf_token: str
    fmt: Formatter
    new_pre_session: str | None = None
    """A pre-session cookie to set on the answer (anonymous visitors without one)."""

    @property
    def language(self) -> str:
        return self.fmt.language

    def may(self, role: Role) -> bool:
        return self.staff is not None and self.staff.role.allows(role)

    def gettext(self, message: str, **values: Any) -> str:
        text = self.fmt.gettext(message)
        return text % values if values else text


WEB: Final = web.AppKey("minga_web", WebContext)
VISIT: Final = web.RequestKey("minga_visit", Visit)


def web_context(request: web.Request) -> WebContext:
    return request.app[WEB]


def current_visit(request: web.Request) -> Visit:
    return request[VISIT]


def staff_of(request: web.Request) -> StaffUser:
    """The logged-in user (handlers behind a role guard always have one)."""
    staff = current_visit(request).staff
    assert staff is not None, "guarded handlers always have a user"
    return staff


def render(request: web.Request, template: str, *, status: int = 200,
           **values: Any) -> web.Response:
    visit = current_visit(request)
    ctx = web_context(request)
    page = {
        "visit": visit, "fmt": visit.fmt, "staff": visit.staff, "Role": Role,
        "csrf_field": CSRF_FIELD, "csrf_token": visit.csrf_token, "org": ctx.node.own,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in available_languages()],
        "path": request.path, "path_qs": request.path_qs, "message": _flash(request),
        "role_names": {code: visit.gettext(name) for code, name in ROLE_NAMES.items()},
        **values,
    }
    body = ctx.templates.render(template, visit.language, page)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _flash(request: web.Request) -> str | None:
    key = request.query.get("done")
    message = FLASH_MESSAGES.get(key) if key else None  # ``?done=<key>`` after a redirect
    return current_visit(request).gettext(message) if message else None


def see_other(location: str, **query: str) -> web.Response:
    """A redirect after a form post (303), optionally with query parameters.

    Returned, not raised, so the answer can carry cookies.
    """
    if query:
        location += ("&" if "?" in location else "?") + urlencode(query)
    return web.Response(status=303, headers={"Location": location})


async def form_data(request: web.Request) -> MultiDict[str]:
    """The posted form fields as text (file uploads are ignored)."""
    posted = await request.post()
    return MultiDict((key, value) for key, value in posted.items() if isinstance(value, str))
