"""A page of the web interface (method, path, handler, the role it needs), and what features
add to the web interface: pages, templates, static files, dashboard sections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from node.core.store import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageRoute:
    method: str
    path: str
    handler: Handler
    role: Role | None = Role.viewer
    """The role the page needs; ``None``: anyone, logged in or not (the login page)."""
    streams_body: bool = False
    """A POST whose handler reads a multipart body itself, piece by piece (a file upload too
    large to hold): its CSRF token comes in the query string (``?csrf=``), so checking it does
    not read the body."""


@dataclass(frozen=True)
class DashboardPanel:
    """A section a feature adds at the top of the dashboard: ``template`` rendered with
    ``panel`` set to what ``values`` returns, skipped when that is ``None``."""

    template: str
    values: Callable[[web.Request], Awaitable[Mapping[str, Any] | None]]


@dataclass
class WebExtensions:
    """What the features add to the core's web interface (``Registry.web``)."""

    pages: list[PageRoute] = field(default_factory=list)
    template_dirs: list[Path] = field(default_factory=list)
    static_dirs: list[Path] = field(default_factory=list)
    """Each served under ``/static/<feature>/`` (the name of the folder holding it)."""
    dashboard_panels: list[DashboardPanel] = field(default_factory=list)
