"""The node behind a reverse proxy: the real client's address and scheme, and HSTS.

``mount_proxy(app, http)`` must run before anything else adds middleware, so that every later
middleware and handler (login throttling, cookies' ``Secure``) sees the request as the client
made it. Forwarded headers count only from ``[http] trusted_proxies``
(:mod:`node.core.forwarded`, decision 0028); from anyone else they are ignored.
``Strict-Transport-Security`` goes on every answer to a request that came over HTTPS, directly
or through a trusted proxy (also on streamed answers and errors: it is set when the answer is
prepared).
"""

from __future__ import annotations

from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from node.core.config import HttpSection
from node.core.forwarded import (
    Hop,
    Network,
    ProxyHeader,
    forwarded_origin,
    hops_from_forwarded,
    hops_from_x_forwarded,
)
from node.core.web.routes import Handler

HSTS: Final = "max-age=31536000"
"""One year; no ``includeSubDomains``: other hosts of the organisation's domain are not ours."""

_CAME_OVER_HTTPS: Final = web.RequestKey("minga_came_over_https", bool)


def _hops(request: web.Request, header: ProxyHeader) -> list[Hop]:
    if header == ProxyHeader.forwarded:
        return hops_from_forwarded(request.forwarded)
    return hops_from_x_forwarded(request.headers.getall(hdrs.X_FORWARDED_FOR, []),
                                 request.headers.getall(hdrs.X_FORWARDED_PROTO, []))


def proxy_middleware(trusted: tuple[Network, ...], header: ProxyHeader) -> Middleware:
    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = (forwarded_origin(request.remote, _hops(request, header), trusted)
                  if trusted else None)
        if origin is not None:
            scheme = origin.scheme or request.scheme
            request[_CAME_OVER_HTTPS] = scheme == "https"  # kept by clone(), seen when prepared
            request = request.clone(remote=origin.remote, scheme=scheme)
        return await handler(request)

    return forwarded


async def _strict_transport(request: web.Request, response: web.StreamResponse) -> None:
    if request.secure or request.get(_CAME_OVER_HTTPS, False):
        response.headers.setdefault(hdrs.STRICT_TRANSPORT_SECURITY, HSTS)


def mount_proxy(app: web.Application, http: HttpSection) -> None:
    """Take the client from trusted proxies' headers; send HSTS over HTTPS."""
    app.middlewares.insert(0, proxy_middleware(http.trusted_networks, http.proxy_header))
    app.on_response_prepare.append(_strict_transport)
