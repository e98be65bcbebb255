"""Received files on the received record's page: type, size, SHA-256, state of the transfer, a
preview of images and a download, both served by this node (no script) and both audited.

The type shown is the one the issuer's signed record names; a preview is only served for the
image types a browser shows as images, and only when the file's first bytes are that type, so a
file that claims to be an image is never rendered as anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from federation.consent import ATTACHMENTS
from node.core.api.framework import content_disposition
from node.core.runtime import Node
from node.core.web.context import staff_of, web_context
from node.core.web.routes import PageRoute
from node.features.evidence.received_files import ReceivedFile, ReceivedFiles
from node.features.evidence.receiving import open_received
from node.features.evidence.sniff import sniff
from node.features.evidence.transfer import Status

ONE_RECEIVED: Final = "/received-files/{file_id}"
AUDIT_DOWNLOAD: Final = "evidence.received-download"
AUDIT_PREVIEW: Final = "evidence.received-preview"
PREVIEW_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
SHOWN_KEYS: Final = ("name", "media_type", "size", "sha256", "copy")


@dataclass(frozen=True)
class ReceivedFileView:
    file_id: str
    version: int
    name: str
    media_type: str
    size: int
    sha256: str
    copy: str
    status: str
    reason: str
    parts_done: int
    parts: int
    previewable: bool


def _view(received: ReceivedFile) -> ReceivedFileView | None:
    shared = received.shared
    if received.status is Status.REMOVED:
        return None
    return ReceivedFileView(
        file_id=received.file_id, version=received.version,
        name=shared.name if shared is not None else "",
        media_type=shared.media_type if shared is not None else "",
        size=received.size, sha256=shared.sha256 if shared is not None else "",
        copy=shared.copy_kind if shared is not None else "",
        status=received.status.value, reason=received.reason or "",
        parts_done=received.parts_done, parts=len(shared.parts) if shared is not None else 0,
        previewable=(received.status is Status.STORED and shared is not None
                     and shared.media_type in PREVIEW_TYPES))


async def received_files_of(node: Node, issuer: str, record_id: str) -> list[ReceivedFileView]:
    """Every file received with any version of a record and not removed, oldest first."""
    async with node.store.read() as tx:
        files = await ReceivedFiles(tx.session, tx.cipher).of_record(issuer, record_id)
    return [view for view in map(_view, files) if view is not None]


def public_claims(claims: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Received claims as shown to staff and API clients: each file described without the key
    that opens it in transit and without its addresses."""
    if claims is None or not isinstance(claims.get(ATTACHMENTS), list):
        return None if claims is None else dict(claims)
    files = [{key: item.get(key) for key in SHOWN_KEYS} if isinstance(item, Mapping) else {}
             for item in claims[ATTACHMENTS]]
    return {**claims, ATTACHMENTS: files}


async def _stored(request: web.Request) -> ReceivedFile:
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        received = await ReceivedFiles(tx.session, tx.cipher).get(request.match_info["file_id"])
    if received is None or received.status is not Status.STORED or received.shared is None:
        raise web.HTTPNotFound()
    return received


async def _serve(request: web.Request, received: ReceivedFile, *, inline: bool,
                 action: str) -> web.StreamResponse:
    ctx = web_context(request)
    shared = received.shared
    assert shared is not None
    async with ctx.node.store.transaction() as tx:
        await tx.audit.append(staff_of(request).username, action, target=received.record_id,
                              details={"issuer": received.issuer, "file": received.file_id})
    media_type = shared.media_type if inline else "application/octet-stream"
    disposition = "inline" if inline else content_disposition(shared.name)
    response = web.StreamResponse(headers={"Content-Type": media_type,
                                           "Content-Disposition": disposition,
                                           "Cache-Control": "no-store"})
    response.content_length = received.size
    await response.prepare(request)
    async for chunk in open_received(ctx.node, received):
        await response.write(chunk)
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    return await _serve(request, await _stored(request), inline=False, action=AUDIT_DOWNLOAD)


async def preview(request: web.Request) -> web.StreamResponse:
    received = await _stored(request)
    shared = received.shared
    assert shared is not None
    if shared.media_type not in PREVIEW_TYPES:
        raise web.HTTPNotFound()
    head = b""
    async with aclosing(open_received(web_context(request).node, received)) as chunks:
        async for chunk in chunks:
            head = chunk
            break
    if sniff(head).media_type != shared.media_type:
        raise web.HTTPNotFound()
    return await _serve(request, received, inline=True, action=AUDIT_PREVIEW)


ROUTES: Final = [
    PageRoute("GET", ONE_RECEIVED, download),
    PageRoute("GET", ONE_RECEIVED + "/preview", preview),
]
