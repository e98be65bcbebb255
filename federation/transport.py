"""The one thin wrapper around matrix-nio (docs/architecture.md §7), so the client library could be
swapped.

Everything above this module speaks in plain dicts and :class:`TimelineEvent`s. Retries and
timeouts are bounded explicitly: a homeserver that is down or rate-limits us produces a
:class:`TransportError` after a few attempts instead of hanging the caller forever. Event
content is never logged here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import nio

R = TypeVar("R")

DEFAULT_REQUEST_TIMEOUT = 30.0
ROOM_VERSION = "12"
SYNC_TIMELINE_LIMIT = 200
# Synapse 1.163 serves media only to authenticated clients (MSC3916); nio 0.26 would upload
# and download without any request timeout, so these two calls use aiohttp directly.
UPLOAD_PATH = "/_matrix/media/v3/upload"
CREATE_PATH = "/_matrix/media/v1/create"
DOWNLOAD_PATH = "/_matrix/client/v1/media/download"
WAIT_FOR_UPLOAD_MS = 20_000
"""How long a download asks the homeservers to wait for media reserved but not yet uploaded
(the spec's default; Synapse allows at most 60 s)."""


class TransportError(RuntimeError):
    """A homeserver request failed; the message names the operation and the server's answer."""

    def __init__(self, operation: str, detail: str, *, status: str | None = None) -> None:
        super().__init__(f"{operation} failed: {detail}")
        self.operation = operation
        self.status = status


@dataclass(frozen=True)
class MatrixLogin:
    homeserver_url: str
    user_id: str
    device_id: str
    access_token: str


@dataclass(frozen=True)
class TimelineEvent:
    room_id: str
    event_id: str
    sender: str
    type: str
    content: dict[str, Any]
    origin_server_ts: int
    state_key: str | None = None

    @classmethod
    def from_source(cls, room_id: str, source: dict[str, Any]) -> TimelineEvent:
        content = source.get("content")
        return cls(
            room_id=room_id,
            event_id=str(source.get("event_id", "")),
            sender=str(source.get("sender", "")),
            type=str(source.get("type", "")),
            content=content if isinstance(content, dict) else {},
            origin_server_ts=int(source.get("origin_server_ts", 0)),
            state_key=source.get("state_key"),
        )


@dataclass
class RoomUpdate:
    """What one sync said about one joined room."""

    room_id: str
    events: list[TimelineEvent] = field(default_factory=list)
    state: list[TimelineEvent] = field(default_factory=list)
    limited: bool = False
    prev_batch: str | None = None


@dataclass
class SyncBatch:
    next_batch: str
    rooms: dict[str, RoomUpdate] = field(default_factory=dict)
    invites: dict[str, str | None] = field(default_factory=dict)
    """Rooms this account is invited to, each with the inviting account (None: not said)."""


def _inviter(invite_state: list[Any], user_id: str) -> str | None:
    """The account that sent our invite, from an invited room's stripped state."""
    for event in invite_state:
        if (isinstance(event, nio.InviteMemberEvent) and event.state_key == user_id
                and event.membership == "invite"):
            return str(event.sender)
    return None


def _sync_filter(timeline_limit: int) -> dict[str, Any]:
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": timeline_limit},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }


RATE_LIMITED = "M_LIMIT_EXCEEDED"
RATE_LIMIT_FIX = (
    "the homeserver rate-limits this node's account; its admin lifts that with"
    " POST /_synapse/admin/v1/users/<node account>/override_ratelimit"
    ' {"messages_per_second": 0, "burst_count": 0}')


def _fail(operation: str, response: object) -> TransportError:
    message = getattr(response, "message", None) or type(response).__name__
    status = getattr(response, "status_code", None)
    if status == RATE_LIMITED:
        message = f"{message} ({RATE_LIMIT_FIX})"
    return TransportError(operation, f"{status or ''} {message}".strip(), status=status)


class MatrixTransport:
    """A logged-in Matrix account, with bounded retries, speaking plain dicts."""

    def __init__(
        self,
        login: MatrixLogin,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_retries: int = 3,
    ) -> None:
        config = nio.AsyncClientConfig(
            max_limit_exceeded=max_retries,
            max_timeouts=max_retries,
            request_timeout=request_timeout,
            max_timeout_retry_wait_time=10,
        )
        self.login = login
        self._request_timeout = request_timeout
        self._client = nio.AsyncClient(login.homeserver_url, login.user_id, config=config)
        self._client.restore_login(login.user_id, login.device_id, login.access_token)
        self._media: aiohttp.ClientSession | None = None

    @property
    def user_id(self) -> str:
        return self.login.user_id

    async def close(self) -> None:
        await self._client.close()
        if self._media is not None:
            await self._media.close()
            self._media = None

    async def __aenter__(self) -> MatrixTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @staticmethod
    async def password_login(
        homeserver_url: str, user_id: str, password: str, device_name: str
    ) -> MatrixLogin:
        client = nio.AsyncClient(homeserver_url, user_id)
        try:
            response = await client.login(password=password, device_name=device_name)
            if not isinstance(response, nio.LoginResponse):
                raise _fail("login", response)
            return MatrixLogin(homeserver_url, response.user_id, response.device_id,
                               response.access_token)
        finally:
            await client.close()

    @staticmethod
    async def token_login(homeserver_url: str, access_token: str) -> MatrixLogin:
        """The login behind an access token issued elsewhere (Matrix Authentication Service,
        SSO, an admin's login-as-user): the account and device come from ``whoami``."""
        client = nio.AsyncClient(homeserver_url, config=nio.AsyncClientConfig(
            max_timeouts=0, request_timeout=DEFAULT_REQUEST_TIMEOUT))
        client.access_token = access_token
        try:
            response = await client.whoami()
            if not isinstance(response, nio.WhoamiResponse):
                raise _fail("whoami", response)
            if not response.device_id:
                raise TransportError("whoami", "the token belongs to no device",
                                     status="M_UNKNOWN_TOKEN")
            return MatrixLogin(homeserver_url, str(response.user_id), str(response.device_id),
                               access_token)
        finally:
            await client.close()

    async def whoami(self) -> str:
        response = await self._asked("whoami", self._client.whoami())
        if not isinstance(response, nio.WhoamiResponse):
            raise _fail("whoami", response)
        return str(response.user_id)

    @staticmethod
    async def _asked(operation: str, request: Awaitable[R]) -> R:
        """A homeserver that does not answer (nio gave up retrying, or the connection failed)
        is a :class:`TransportError` without a status, like every other failure here (the sync
        loop reads that as "unreachable, wait and try again", :func:`sync.retry.is_unreachable`)."""
        try:
            return await request
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as error:
            raise TransportError(operation, f"no answer ({type(error).__name__})") from None

    # ----- rooms --------------------------------------------------------------------------

    async def create_room(
        self,
        *,
        name: str | None = None,
        invite: list[str] | None = None,
        initial_state: list[dict[str, Any]] | None = None,
        power_levels: dict[str, Any] | None = None,
    ) -> str:
        """A new room. Asked once, never retried: creating a room is not idempotent, and a
        homeserver slow to invite many members would otherwise make a room per retry. A
        homeserver that does not answer in time is a :class:`TransportError`."""
        once = nio.AsyncClient(self.login.homeserver_url, self.login.user_id,
                               config=nio.AsyncClientConfig(
                                   max_timeouts=0, request_timeout=self._request_timeout))
        once.restore_login(self.login.user_id, self.login.device_id, self.login.access_token)
        try:
            response = await self._asked("create room", once.room_create(
                name=name,
                room_version=ROOM_VERSION,
                invite=invite or [],
                initial_state=initial_state or [],
                power_level_override=power_levels,
            ))
        finally:
            await once.close()
        if not isinstance(response, nio.RoomCreateResponse):
            raise _fail("create room", response)
        return str(response.room_id)

    async def invite(self, room_id: str, user_id: str) -> None:
        response = await self._asked("invite", self._client.room_invite(room_id, user_id))
        if not isinstance(response, nio.RoomInviteResponse):
            raise _fail("invite", response)

    async def join(self, room_id: str) -> str:
        response = await self._asked("join", self._client.join(room_id))
        if not isinstance(response, nio.JoinResponse):
            raise _fail("join", response)
        return str(response.room_id)

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        response = await self._asked("kick", self._client.room_kick(room_id, user_id, reason))
        if not isinstance(response, nio.RoomKickResponse):
            raise _fail("kick", response)

    async def leave(self, room_id: str) -> None:
        response = await self._asked("leave", self._client.room_leave(room_id))
        if not isinstance(response, nio.RoomLeaveResponse):
            raise _fail("leave", response)

    async def joined_rooms(self) -> list[str]:
        response = await self._asked("joined rooms", self._client.joined_rooms())
        if not isinstance(response, nio.JoinedRoomsResponse):
            raise _fail("joined rooms", response)
        return list(response.rooms)

    # ----- events -------------------------------------------------------------------------

    async def send(
        self, room_id: str, event_type: str, content: dict[str, Any], txn_id: str
    ) -> str:
        """Send a timeline event; the same ``txn_id`` never produces a second event."""
        response = await self._asked(
            "send", self._client.room_send(room_id, event_type, content, tx_id=txn_id))
        if not isinstance(response, nio.RoomSendResponse):
            raise _fail(f"send {event_type}", response)
        return str(response.event_id)

    async def put_state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> str:
        response = await self._asked(
            "put state", self._client.room_put_state(room_id, event_type, content, state_key))
        if not isinstance(response, nio.RoomPutStateResponse):
            raise _fail(f"put state {event_type}", response)
        return str(response.event_id)

    async def room_state(self, room_id: str) -> list[TimelineEvent]:
        response = await self._asked("get room state", self._client.room_get_state(room_id))
        if not isinstance(response, nio.RoomGetStateResponse):
            raise _fail("get room state", response)
        return [TimelineEvent.from_source(room_id, event) for event in response.events]

    async def state_event(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any]:
        response = await self._asked(
            "get state event",
            self._client.room_get_state_event(room_id, event_type, state_key))
        if not isinstance(response, nio.RoomGetStateEventResponse):
            raise _fail(f"get state {event_type}", response)
        content: dict[str, Any] = response.content
        return content

    async def messages(
        self, room_id: str, start: str | None, *, backwards: bool = True, limit: int = 100
    ) -> tuple[list[TimelineEvent], str | None]:
        """One page of a room's timeline from ``start``, oldest event first, and the next token."""
        direction = nio.MessageDirection.back if backwards else nio.MessageDirection.front
        response = await self._asked("messages", self._client.room_messages(
            room_id, start=start, direction=direction, limit=limit
        ))
        if not isinstance(response, nio.RoomMessagesResponse):
            raise _fail("messages", response)
        events = [TimelineEvent.from_source(room_id, event.source) for event in response.chunk]
        if backwards:
            events.reverse()
        return events, response.end

    # ----- sync ---------------------------------------------------------------------------

    async def sync(
        self, since: str | None, *, timeout_ms: int = 0, timeline_limit: int = SYNC_TIMELINE_LIMIT
    ) -> SyncBatch:
        """One sync from ``since`` (None: an initial sync, whatever this client synced before;
        nio would otherwise continue from the last batch it saw, which the caller may never
        have stored)."""
        if since is None:
            self._client.next_batch = ""
            self._client.loaded_sync_token = ""
        response = await self._asked("sync", self._client.sync(
            timeout=timeout_ms, since=since, sync_filter=_sync_filter(timeline_limit)
        ))
        if not isinstance(response, nio.SyncResponse):
            raise _fail("sync", response)
        batch = SyncBatch(next_batch=response.next_batch)
        for room_id, room in response.rooms.join.items():
            batch.rooms[room_id] = RoomUpdate(
                room_id=room_id,
                events=[TimelineEvent.from_source(room_id, e.source) for e in room.timeline.events],
                state=[TimelineEvent.from_source(room_id, e.source) for e in room.state],
                limited=bool(room.timeline.limited),
                prev_batch=room.timeline.prev_batch,
            )
        batch.invites = {room_id: _inviter(info.invite_state, self.user_id)
                         for room_id, info in response.rooms.invite.items()}
        return batch

    # ----- media --------------------------------------------------------------------------

    def _media_session(self) -> aiohttp.ClientSession:
        if self._media is None:
            self._media = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.login.access_token}"},
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            )
        return self._media

    async def upload(self, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Put ``data`` in the media repository; returns its ``mxc://`` URI."""
        url = self.login.homeserver_url.rstrip("/") + UPLOAD_PATH
        answer = await self._media_call("POST", url, "upload", data=data,
                                        headers={"Content-Type": content_type})
        uri = answer.get("content_uri")
        if not isinstance(uri, str) or not uri.startswith("mxc://"):
            raise TransportError("upload", "the answer has no content_uri")
        return uri

    async def create_media(self) -> str:
        """Reserve an ``mxc://`` URI to upload to later (:meth:`upload_to`; asynchronous
        uploads, Matrix 1.7). A homeserver lets an account hold only a few reserved at once
        (Synapse: 5), and refuses more with ``M_LIMIT_EXCEEDED``."""
        url = self.login.homeserver_url.rstrip("/") + CREATE_PATH
        answer = await self._media_call("POST", url, "create media", json={})
        uri = answer.get("content_uri")
        if not isinstance(uri, str):
            raise TransportError("create media", "the answer has no content_uri")
        _split_mxc(uri, "create media")
        return uri

    async def upload_to(self, mxc: str, data: bytes,
                        content_type: str = "application/octet-stream") -> None:
        """Put ``data`` behind an ``mxc://`` URI reserved with :meth:`create_media`. An upload
        that reached the server before (its answer lost) is not overwritten:
        ``M_CANNOT_OVERWRITE_MEDIA``."""
        server, media_id = _split_mxc(mxc, "upload")
        url = (f"{self.login.homeserver_url.rstrip('/')}{UPLOAD_PATH}/"
               f"{quote(server, safe=':')}/{quote(media_id, safe='')}")
        await self._media_call("PUT", url, "upload", data=data,
                               headers={"Content-Type": content_type})

    async def _media_call(self, method: str, url: str, what: str,
                          **request: Any) -> dict[str, Any]:
        """One request to the media repository; its JSON answer, or :class:`TransportError`
        naming ``what`` and the reason."""
        try:
            async with self._media_session().request(method, url, **request) as response:
                answer = await _json_answer(response)
                if response.status != 200:
                    raise _media_fail(what, response.status, answer)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise TransportError(what, type(error).__name__) from None
        return answer

    async def download(self, mxc: str, *, max_bytes: int) -> bytes:
        """The bytes behind an ``mxc://`` URI (from any federated server), at most ``max_bytes``;
        media reserved but not yet uploaded is waited for (:data:`WAIT_FOR_UPLOAD_MS`)."""
        server, media_id = _split_mxc(mxc, "download")
        url = (f"{self.login.homeserver_url.rstrip('/')}{DOWNLOAD_PATH}/"
               f"{quote(server, safe=':')}/{quote(media_id, safe='')}"
               f"?timeout_ms={WAIT_FOR_UPLOAD_MS}")
        try:
            async with self._media_session().get(url) as response:
                if response.status != 200:
                    raise _media_fail("download", response.status, await _json_answer(response))
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise TransportError("download", "the media is larger than allowed",
                                             status="M_TOO_LARGE")
        except (TimeoutError, aiohttp.ClientError) as error:
            raise TransportError("download", type(error).__name__) from None
        return bytes(data)


def _split_mxc(mxc: str, operation: str) -> tuple[str, str]:
    parts = urlsplit(mxc)
    media_id = parts.path.lstrip("/")
    if parts.scheme != "mxc" or not parts.netloc or not media_id or "/" in media_id:
        raise TransportError(operation, "not an mxc:// URI", status="M_INVALID_PARAM")
    return parts.netloc, media_id


async def _json_answer(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        answer = await response.json(content_type=None)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _media_fail(operation: str, http_status: int, answer: dict[str, Any]) -> TransportError:
    errcode = answer.get("errcode")
    status = errcode if isinstance(errcode, str) else None
    return TransportError(operation, f"{http_status} {status or ''}".strip(), status=status)
