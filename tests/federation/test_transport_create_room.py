"""Creating a room is asked once: a homeserver too slow to answer gets no second request
(each would make another room, inviting everyone again) and the caller gets a TransportError,
not a bare timeout (M15: a 50-member alert room took Synapse minutes under load)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation.transport import MatrixLogin, MatrixTransport, TransportError


async def test_a_slow_create_room_is_asked_once_and_fails_as_a_transport_error() -> None:
    asked: list[str] = []
    release = asyncio.Event()

    async def create_room(request: web.Request) -> web.Response:
        asked.append(request.path)
        await release.wait()  # never answers in time
        return web.json_response({"room_id": "!late:hs"})

    app = web.Application()
    app.router.add_post("/_matrix/client/v3/createRoom", create_room)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    login = MatrixLogin(str(server.make_url("")).rstrip("/"), "@node:hs", "DEVICE", "token")
    transport = MatrixTransport(login, request_timeout=0.3, max_retries=3)
    try:
        with pytest.raises(TransportError, match="create room"):
            await transport.create_room(invite=[f"@member{n}:hs" for n in range(49)])
        await asyncio.sleep(1.0)  # a retry would have come by now
        assert asked == ["/_matrix/client/v3/createRoom"]
    finally:
        release.set()
        await transport.close()
        await server.close()
