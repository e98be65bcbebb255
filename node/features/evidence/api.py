"""Evidence over HTTP (issue M14).

- ``POST /cases/{record_id}/attachments``: multipart/form-data, one or more files in the field
  ``files``, each streamed to disk sealed as it arrives (never read whole into memory).
- ``GET /cases/{record_id}/attachments``: a case's files.
- ``GET /attachments/{attachment_id}``: one file, its working copy and its custody log.
- ``GET /attachments/{attachment_id}/file?copy=working|original``: the file itself (the
  original needs the editor role); every download is a custody entry.
- ``GET /attachments/{attachment_id}/package``: the evidence package (a ZIP to check offline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from aiohttp import BodyPartReader, MultipartReader, web
from pydantic import BaseModel, ConfigDict, Field

from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    FileAnswer,
    Link,
    NoBody,
    NoQuery,
    StreamedFile,
    invalid,
)
from node.core.api.times import Time
from node.core.rooms import PairRoomError
from node.core.runtime import Node
from node.core.sharing import UnknownRecipient
from node.core.store import Role
from node.features.evidence.attachments import Attachment, AttachmentNotFound
from node.features.evidence.countersign import request_countersignature
from node.features.evidence.credentials import Problem, Verdict
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
from schemas.common import OrgId

TAGS: Final = ("evidence",)
UPLOAD_FIELD: Final = "files"
READ_BYTES: Final = 256 * 1024


class WorkingCopyView(BaseModel):
    made: bool = Field(description="false when mat2 could not clean this kind of file")
    sha256: str
    size: int
    removed: list[str] = Field(description="names of the identifying metadata fields removed")
    reason: str = Field(description="why there is no working copy: unsupported, failed or"
                                    " unavailable; empty when made")


class ContentCredentialsView(BaseModel):
    verdict: Verdict = Field(description="none: no C2PA manifest (or a ZIP that is no ProofMode"
                                         " bundle); valid: its signature and the hashes binding"
                                         " it to the file verify (ProofMode: each media file's"
                                         " SHA-256 matches its proof and the OpenPGP signatures"
                                         " over both verify with the bundle's key); invalid:"
                                         " they do not (see problems); unreadable: a manifest"
                                         " or bundle is there but could not be read or lacks"
                                         " parts (see codes)")
    signer_trusted: bool = Field(description="the signer's certificate chains to a trust list;"
                                             " false for a valid manifest from a self-signed or"
                                             " unknown signer (this node has no trust list);"
                                             " always false for ProofMode (a device's own key)")
    problems: list[Problem] = Field(description="why an invalid manifest fails: altered (a hash"
                                                " does not match: changed after signing),"
                                                " signature, expired, revoked, other")
    codes: list[str] = Field(description="the C2PA library's validation status codes (the C2PA"
                                         " specification's), e.g. assertion.dataHash.mismatch,"
                                         " signingCredential.untrusted; for ProofMode this"
                                         " node's, e.g. media.hashMismatch,"
                                         " mediaSignature.bad, proofSignature.unknownKey,"
                                         " mediaSignature.missing, pubkey.missing")
    claim_generator: str = Field(description="the tool that made the claim, as it names itself")
    signer: str = Field(description="the signing certificate's subject common name; for"
                                    " ProofMode the OpenPGP fingerprint of the bundle's key")
    issuer: str = Field(description="the organisation the signature information names")
    signed_at: str = Field(description="time from a trusted timestamp, if the manifest has one")


class AttachmentView(BaseModel):
    attachment_id: str
    record_id: str
    name: str
    media_type: str = Field(description="recognised from the content, not the name")
    size: int
    sha256: str = Field(description="SHA-256 of the original, taken as it arrived")
    attached_at: Time
    working_copy: WorkingCopyView | None
    manifest: str = Field(description="a provenance manifest the original carries and keeps:"
                                      " c2pa or proofmode (a ProofMode bundle), both checked"
                                      " (content_credentials); empty if none")
    content_credentials: ContentCredentialsView | None = Field(
        description="the check of the original's manifest when it was attached (the C2PA"
                    " library's, or gpg's for a ProofMode bundle: see manifest); null when not"
                    " checked (a kind of file neither reads, or attached before this node"
                    " checked them)")


class AttachmentList(BaseModel):
    items: list[AttachmentView]


class CustodyEntryView(BaseModel):
    seq: int
    at: Time
    action: str
    details: dict[str, Any]
    signature: str


class AttachmentDetail(AttachmentView):
    custody: list[CustodyEntryView]


class CountersignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    witness: OrgId = Field(description="org id of the verified member asked to attest that the"
                                       " file exists now; it sees only a salted commitment")


class CountersignAnswer(BaseModel):
    request_id: str = Field(description="the countersign-request record sent to the witness")
    witness: str


class CopyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    copy_: Copy = Field(default=Copy.WORKING, alias="copy")


def attachment_view(attachment: Attachment) -> AttachmentView:
    working = attachment.working
    return AttachmentView(
        attachment_id=attachment.attachment_id, record_id=attachment.record_id,
        name=attachment.name, media_type=attachment.media_type, size=attachment.size,
        sha256=attachment.sha256, attached_at=attachment.created_at,
        working_copy=None if working is None else WorkingCopyView(
            made=working.made, sha256=working.sha256, size=working.size,
            removed=list(working.removed), reason=working.reason),
        manifest=attachment.manifest,
        content_credentials=None if attachment.credentials is None else ContentCredentialsView(
            verdict=attachment.credentials.verdict,
            signer_trusted=attachment.credentials.signer_trusted,
            problems=list(attachment.credentials.problems),
            codes=list(attachment.credentials.codes),
            claim_generator=attachment.credentials.claim_generator,
            signer=attachment.credentials.signer, issuer=attachment.credentials.issuer,
            signed_at=attachment.credentials.signed_at))


class BadUpload(EvidenceError):
    """The multipart body could not be read (malformed, cut off)."""


async def pieces_of(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        try:
            piece = await part.read_chunk(READ_BYTES)
        except Exception:  # aiohttp's parser refuses malformed input with assorted errors
            raise BadUpload("the multipart body could not be read") from None
        if not piece:
            return
        yield piece


async def next_part(reader: MultipartReader) -> Any:
    try:
        return await reader.next()
    except Exception:  # as above: only the parsing of what the client sent is caught here
        raise BadUpload("the multipart body could not be read") from None


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"there is no {what} here")


class EvidenceEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def attach(self, call: Call[NoBody, NoQuery]) -> AttachmentList:
        request, record_id = call.request, call.path["record_id"]
        problem = FieldProblem(field="body", problem="must be multipart/form-data with the"
                                                     f" files in the field {UPLOAD_FIELD!r}")
        if not request.content_type.startswith("multipart/form-data"):
            raise ApiError(415, "not_multipart", problem.problem, [problem])
        attached = []
        try:
            reader = await request.multipart()
            while (part := await next_part(reader)) is not None:
                if not isinstance(part, BodyPartReader) or part.name != UPLOAD_FIELD \
                        or not part.filename:
                    raise invalid([problem])
                attached.append(await attach_file(
                    self._node, record_id, part.filename, pieces_of(part),
                    actor=call.principal.user, now=self._now()))
        except FileTooLarge as error:
            raise ApiError(413, "too_large", str(error)) from None
        except CaseNotAttachable:
            raise _not_found("case") from None
        except BadUpload as error:
            raise ApiError(400, "bad_multipart", str(error), [problem]) from None
        except (ValueError, web.HTTPException):  # request.multipart(): no boundary, ...
            raise ApiError(400, "bad_multipart", "the multipart body could not be read",
                           [problem]) from None
        if not attached:
            raise invalid([FieldProblem(field=f"body.{UPLOAD_FIELD}", problem="no file sent")])
        return AttachmentList(items=[attachment_view(a) for a in attached])

    async def list_for_case(self, call: Call[NoBody, NoQuery]) -> AttachmentList:
        found = await case_attachments(self._node, call.path["record_id"])
        return AttachmentList(items=[attachment_view(a) for a in found])

    async def detail(self, call: Call[NoBody, NoQuery]) -> AttachmentDetail:
        attachment_id = call.path["attachment_id"]
        try:
            attachment = await get_attachment(self._node, attachment_id)
        except AttachmentNotFound:
            raise _not_found("file") from None
        entries = await custody_log(self._node, attachment_id)
        return AttachmentDetail(
            **dict(attachment_view(attachment)),
            custody=[CustodyEntryView(seq=e["seq"], at=e["at"], action=e["action"],
                                      details=e["details"], signature=e["signature"])
                     for e in entries])

    async def download(self, call: Call[NoBody, CopyQuery]) -> StreamedFile:
        copy = call.query.copy_
        if copy is Copy.ORIGINAL and not call.principal.role.allows(Role.editor):
            raise ApiError(403, "forbidden", "the original needs the editor role; the working"
                                             " copy is without identifying metadata")
        try:
            opened = await open_copy(self._node, call.path["attachment_id"], copy,
                                     Action.DOWNLOAD, actor=call.principal.user,
                                     now=self._now())
        except AttachmentNotFound:
            raise _not_found("file") from None
        except EvidenceError as error:
            raise ApiError(409, "no_working_copy", str(error)) from None
        return StreamedFile(opened.chunks, opened.size, opened.media_type, opened.file_name)

    async def package(self, call: Call[NoBody, NoQuery]) -> FileAnswer:
        try:
            exported = await export_package(self._node, call.path["attachment_id"],
                                            actor=call.principal.user, now=self._now())
        except AttachmentNotFound:
            raise _not_found("file") from None
        return FileAnswer(exported.content, PACKAGE_MEDIA_TYPE, exported.file_name)

    async def countersign(self, call: Call[CountersignBody, NoQuery]) -> CountersignAnswer:
        witness = call.body.witness
        try:
            request_id = await request_countersignature(
                self._node, call.path["attachment_id"], witness, actor=call.principal.user,
                now=self._now())
        except AttachmentNotFound:
            raise _not_found("file") from None
        except UnknownRecipient as error:
            raise invalid([FieldProblem(field="body.witness", problem=error.reason)]) from None
        except PairRoomError as error:
            raise ApiError(503, "homeserver_unavailable", str(error)) from None
        return CountersignAnswer(request_id=request_id, witness=witness)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("POST", "/cases/{record_id}/attachments", self.attach,
                     "Attach files to a case (multipart, streamed; custody log begins)",
                     Role.editor, response=AttachmentList, status=201, errors=(404, 413, 415),
                     upload=UPLOAD_FIELD, tags=TAGS, links=(
                         Link("GetAttachment", "GET", "/attachments/{attachment_id}",
                              {"attachment_id": "items/0/attachment_id"}),
                         Link("DownloadAttachment", "GET", "/attachments/{attachment_id}/file",
                              {"attachment_id": "items/0/attachment_id"}))),
            Endpoint("GET", "/cases/{record_id}/attachments", self.list_for_case,
                     "The files attached to a case", response=AttachmentList, tags=TAGS),
            Endpoint("GET", "/attachments/{attachment_id}", self.detail,
                     "One attached file, its working copy and its custody log",
                     response=AttachmentDetail, errors=(404,), tags=TAGS),
            Endpoint("GET", "/attachments/{attachment_id}/file", self.download,
                     "Download a copy of an attached file (logged in its custody log)",
                     query=CopyQuery, files=("application/octet-stream",),
                     errors=(404, 409), tags=TAGS),
            Endpoint("POST", "/attachments/{attachment_id}/countersign", self.countersign,
                     "Ask another member to countersign that the file exists now (its answer"
                     " comes into the custody log)", Role.editor, body=CountersignBody,
                     response=CountersignAnswer, status=202, errors=(404, 503), tags=TAGS),
            Endpoint("GET", "/attachments/{attachment_id}/package", self.package,
                     "The evidence package: original, hash, signed custody log, keys, guide",
                     Role.editor, files=(PACKAGE_MEDIA_TYPE,), errors=(404,), tags=TAGS),
        ]


def endpoint_group(node: Node, now: Callable[[], int]) -> list[Endpoint]:
    return EvidenceEndpoints(node, now).endpoints()
