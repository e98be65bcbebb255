"""A page of the web interface: method, path, handler and the role it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
