"""A homeserver that does not answer, or cannot be reached, is a TransportError without a
status for every call, never a bare timeout or connection error (which callers outside the
sync loop did not catch: an API call answered 500)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation.transport import MatrixLogin, MatrixTransport, TransportError
from sync.retry import is_unreachable


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_send_never_answered_is_a_transport_error_the_sync_loop_waits_on() -> None:
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    login = MatrixLogin(str(server.make_url("")).rstrip("/"), "@node:hs", "DEVICE", "token")
    transport = MatrixTransport(login, request_timeout=0.3, max_retries=0)
    try:
        with pytest.raises(TransportError, match="send") as raised:
            await transport.send("!room:hs", "org.minga.nudge", {}, "txn-1")
        assert raised.value.status is None and is_unreachable(raised.value)
        with pytest.raises(TransportError, match="get room state"):
            await transport.room_state("!room:hs")
    finally:
        release.set()
        await transport.close()
        await server.close()


async def test_an_unreachable_homeserver_is_a_transport_error() -> None:
    login = MatrixLogin(f"http://127.0.0.1:{_closed_port()}", "@node:hs", "DEVICE", "token")
    transport = MatrixTransport(login, request_timeout=0.3, max_retries=0)
    try:
        with pytest.raises(TransportError, match="invite") as raised:
            await transport.invite("!room:hs", "@other:hs")
        assert is_unreachable(raised.value)
    finally:
        await transport.close()
