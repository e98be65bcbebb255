"""The evidence page of a case: its files, what their working copies lost, their custody logs,
the upload form (works without JavaScript), downloads and evidence packages.

The upload streams: the page route reads the multipart body piece by piece
(``PageRoute.streams_body``; the CSRF token comes in the form's action URL), so a large file
never sits in memory. Every download and export is a custody entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import BodyPartReader, web

from node.core.api.framework import content_disposition
from node.core.rooms import PairRoomError
from node.core.sharing import UnknownRecipient
from node.core.store import InvalidRecordId, RecordDeleted, RecordNotFound, Role
from node.core.web.context import (
    current_visit,
    form_data,
    render,
    see_other,
    staff_of,
    web_context,
)
from node.core.web.routes import PageRoute
from node.features.evidence.api import UPLOAD_FIELD, BadUpload, next_part, pieces_of
from node.features.evidence.attachments import AttachmentNotFound
from node.features.evidence.countersign import request_countersignature
from node.features.evidence.custody import Action, Copy
from node.features.evidence.package import PACKAGE_MEDIA_TYPE, export_package
from node.features.evidence.service import (
    CaseNotAttachable,
    EvidenceError,
    FileTooLarge,
    attach_file,
    case_attachments,
    custody_log,
    get_attachment,
    open_copy,
)

CASE_EVIDENCE: Final = "/cases/{record_id}/evidence"
UPLOAD_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The evidence page runs this node's upload script (progress), which sends the form itself."""
ONE_FILE: Final = "/evidence/{attachment_id}"


def human_size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


async def _page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    ctx = web_context(request)
    record_id = request.match_info["record_id"]
    async with ctx.node.store.read() as tx:
        try:
            await tx.cases.get(record_id)
        except (RecordNotFound, RecordDeleted, InvalidRecordId):
            raise web.HTTPNotFound() from None
    attachments = await case_attachments(ctx.node, record_id)
    logs = {a.attachment_id: await custody_log(ctx.node, a.attachment_id) for a in attachments}
    async with ctx.node.store.read() as tx:
        members = [m for m in await tx.orgs.members(verified_only=True)
                   if m.org_id != ctx.node.org_id]
    page = render(request, "evidence/case.html", status=status, record_id=record_id,
                  attachments=attachments, logs=logs, human_size=human_size, error=error,
                  members=sorted(members, key=lambda m: m.name.casefold()),
                  member_names={m.org_id: m.name for m in members},
                  when=lambda at: current_visit(request).fmt.datetime(
                      datetime.fromtimestamp(at, UTC)),
                  limit_mb=ctx.node.config.evidence.max_file_mb, upload_field=UPLOAD_FIELD)
    page.headers["Content-Security-Policy"] = UPLOAD_POLICY
    return page


async def evidence_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def upload(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    record_id = request.match_info["record_id"]
    visit = current_visit(request)
    count = 0
    try:
        reader = await request.multipart()
        while (part := await next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader) or part.name != UPLOAD_FIELD \
                    or not part.filename:
                continue

            await attach_file(ctx.node, record_id, part.filename, pieces_of(part),
                              actor=staff_of(request).username, now=ctx.now())
            count += 1
    except FileTooLarge:
        return await _page(request, status=413, error=visit.gettext(
            "The file is larger than this node accepts (%(limit)s MB). Nothing was kept.",
            limit=ctx.node.config.evidence.max_file_mb))
    except CaseNotAttachable:
        raise web.HTTPNotFound() from None
    except (BadUpload, ValueError):
        raise web.HTTPBadRequest() from None
    if count == 0:
        return await _page(request, status=422, error=visit.gettext("Choose a file to attach."))
    return see_other(CASE_EVIDENCE.format(record_id=record_id) + "#files")


async def download(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    try:
        copy = Copy(request.query.get("copy", Copy.WORKING.value))
    except (BadUpload, ValueError):
        raise web.HTTPBadRequest() from None
    staff = staff_of(request)
    if copy is Copy.ORIGINAL and not staff.role.allows(Role.editor):
        raise web.HTTPForbidden()
    try:
        opened = await open_copy(ctx.node, request.match_info["attachment_id"], copy,
                                 Action.DOWNLOAD, actor=staff.username, now=ctx.now())
    except AttachmentNotFound:
        raise web.HTTPNotFound() from None
    except EvidenceError:
        raise web.HTTPConflict() from None
    response = web.StreamResponse(headers={
        "Content-Type": opened.media_type,
        "Content-Disposition": content_disposition(opened.file_name)})
    response.content_length = opened.size
    await response.prepare(request)
    async for chunk in opened.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def package(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    try:
        exported = await export_package(ctx.node, request.match_info["attachment_id"],
                                        actor=staff_of(request).username, now=ctx.now())
    except AttachmentNotFound:
        raise web.HTTPNotFound() from None
    return web.Response(body=exported.content, headers={
        "Content-Type": PACKAGE_MEDIA_TYPE,
        "Content-Disposition": content_disposition(exported.file_name)})


async def countersign(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    attachment_id = request.match_info["attachment_id"]
    posted = await form_data(request)
    try:
        attachment = await get_attachment(ctx.node, attachment_id)
        await request_countersignature(ctx.node, attachment_id, posted.get("witness", ""),
                                       actor=staff_of(request).username, now=ctx.now())
    except (AttachmentNotFound, UnknownRecipient):
        raise web.HTTPBadRequest() from None
    except PairRoomError:
        raise web.HTTPServiceUnavailable() from None
    return see_other(CASE_EVIDENCE.format(record_id=attachment.record_id), done="countersign")


ROUTES: Final = [
    PageRoute("GET", CASE_EVIDENCE, evidence_page),
    PageRoute("POST", CASE_EVIDENCE, upload, Role.editor, streams_body=True),
    PageRoute("GET", ONE_FILE + "/file", download),
    PageRoute("GET", ONE_FILE + "/package", package, Role.editor),
    PageRoute("POST", ONE_FILE + "/countersign", countersign, Role.editor),
]
