"""Sharing over HTTP: share, preview, history and retraction of cases; received records;
quarantined envelopes (M4).

- ``POST /cases/{id}/share`` takes ``{"recipients": [org_id], "fields": [path]}`` and the
  ``coalition`` it goes through (needed only when the node is in several; 422 naming the field
  otherwise). Every recipient must be a verified member of that coalition (422 naming the bad
  one); the case's consent must cover that coalition (decision 0032); the consent gate decides per
  recipient and one refusal refuses the whole share (409 naming each refused field and for whom).
  Nothing is sent to anyone unless everything can be sent. The current version is shared; after
  a ``PATCH``, sharing again sends the new version.
  ``"attachments": {org_id: [{"attachment_id": id, "copy": "working" | "original"}]}`` adds
  files per recipient (the working copy unless the original is chosen); consent refuses files
  where it refuses names or places (409), and a file is uploaded only once every check passed.
- ``POST /cases/{id}/share/preview`` answers, per recipient, exactly the claims it would verify,
  or the refusal.
- ``POST /cases/{id}/retract`` sends a signed retraction to everyone who was sent any version.
- ``GET /received`` and ``GET /received/{issuer}/{record_id}``: what other members shared with
  this node; a retracted record shows only its tombstone. Each names the coalition it came
  through (``coalition_id``, its label, and whether this node left it).
- ``GET /quarantine`` (admins): envelopes that failed verification, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from federation.consent import ATTACHMENTS, ConsentRefused, Recipient, allowed_fields
from federation.transport import TransportError
from node.core.api.answers import sharing_answers
from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    NoBody,
    NoQuery,
    invalid,
)
from node.core.api.organisations import OrganisationNames, known_names, named
from node.core.api.times import OptionalTime
from node.core.keys import signed_after_revocation
from node.core.runtime import Node
from node.core.sharing import (
    ShareReceipt,
    consent_scoped,
    disclosed_fields,
    preview_share,
    share_from_node,
    verified_recipients,
)
from node.core.store import InvalidRecordId, Role, StoreTransaction
from node.core.store.coalitions import Coalition
from node.core.store.received import MAX_PAGE as RECEIVED_MAX_PAGE
from node.core.store.received import ReceivedRecord
from node.core.store.shares import ShareRepository
from node.features.cases import store_answers, stored_record
from node.features.evidence import (
    Copy,
    EvidenceDamaged,
    FileChoice,
    FileNotShareable,
    public_claims,
    share_case_with_files,
)
from node.features.sharing.directory import known_coalitions
from node.features.sharing.retraction import retract_case
from schemas.codes import RetractionReasonCode
from schemas.common import CoalitionId, OrgId, ShortText
from schemas.records import CaseRecord
from sync.quarantine import list_quarantined

TAGS = ("sharing",)
MAX_RECIPIENTS = 50
MAX_FIELDS = 64
MAX_FILES = 50


class FileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attachment_id: Annotated[str, Field(min_length=1, max_length=36)]
    copy_kind: Literal["working", "original"] = Field(
        default="working", alias="copy",
        description="the working copy (identifying metadata removed) unless the original is"
                    " chosen explicitly")


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipients: Annotated[list[OrgId], Field(min_length=1, max_length=MAX_RECIPIENTS)] = Field(
        description="org ids of verified members of the coalition"
    )
    coalition: CoalitionId | None = Field(
        default=None,
        description="the coalition the share goes through; needed only when this node is in"
                    " several (by default its only one)")
    fields: Annotated[list[Annotated[str, Field(max_length=64)]],
                      Field(min_length=1, max_length=MAX_FIELDS)] = Field(
        description="case field paths to disclose, e.g. country, victims.groups"
    )
    attachments: Annotated[dict[OrgId, Annotated[list[FileRequest],
                                                 Field(max_length=MAX_FILES)]],
                           Field(max_length=MAX_RECIPIENTS)] = Field(
        default_factory=dict,
        description="per recipient org id, the case's files to send with it and which copy")

    def choices(self) -> dict[str, list[FileChoice]]:
        return {org_id: [FileChoice(f.attachment_id, Copy(f.copy_kind)) for f in files]
                for org_id, files in self.attachments.items()}

    def fields_for(self, org_id: str) -> list[str]:
        """The paths asked for ``org_id``: the files as one more path when it gets any."""
        return [*self.fields, ATTACHMENTS] if self.attachments.get(org_id) else self.fields


class SentTo(BaseModel):
    org_id: str
    fields: list[str]
    room_id: str


class ShareResult(BaseModel):
    record_id: str
    version: int
    kind: str
    recipients: list[SentTo] = Field(description="queued for delivery, one copy each")
    organisations: OrganisationNames = {}


class RefusedField(BaseModel):
    path: str
    reason: str


class RecipientPreview(BaseModel):
    org_id: str
    allowed: bool = Field(description="false: consent refuses this request for this recipient")
    claims: dict[str, Any] | None = Field(
        description="exactly what the recipient would verify (header and disclosed fields)"
    )
    refused: list[RefusedField]
    allowed_fields: list[str] = Field(description="every path consent allows this recipient")


class PreviewResult(BaseModel):
    record_id: str
    version: int
    recipients: list[RecipientPreview]
    organisations: OrganisationNames = {}


class ShareEntryView(BaseModel):
    version: int
    kind: str
    action: str = Field(description="share or retract")
    recipient: str
    fields: list[str]
    room_id: str = Field(description="the pair room it was sent through")
    shared_at: datetime
    actor: str


class ShareHistory(BaseModel):
    record_id: str
    entries: list[ShareEntryView] = Field(description="oldest first")
    organisations: OrganisationNames = {}


class RetractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RetractionReasonCode
    note: ShortText | None = None


class ReceivedListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, Field(max_length=32)] | None = None
    issuer: OrgId | None = None
    limit: int = Field(default=50, ge=1, le=min(100, RECEIVED_MAX_PAGE))
    offset: int = Field(default=0, ge=0, le=1_000_000)


class ReceivedSummary(BaseModel):
    issuer: str
    record_id: str
    version: int
    kind: str
    disclosed_fields: list[str]
    verification: str
    retracted: bool
    received_at: datetime
    coalition_id: str | None = Field(default=None,
                                     description="the coalition the record came through")
    coalition: str | None = Field(default=None, description="that coalition's name (or id)")
    coalition_left: bool = Field(default=False,
                                 description="this node has left that coalition since")
    signed_after_revocation: bool = Field(
        default=False, description="the issuer's keys were revoked (a seized node) and this"
        " record says it was signed at or after that time: treat it as suspect")
    issuer_revoked_at: OptionalTime = Field(
        default=None, description="since when the issuer's keys are revoked, if they are")


class ReceivedList(BaseModel):
    items: list[ReceivedSummary]
    next_offset: int | None = Field(description="pass as `offset` for the next page")
    organisations: OrganisationNames = {}


class ReceivedView(ReceivedSummary):
    claims: dict[str, Any] | None = Field(description="null once retracted (tombstone)")
    versions: list[int] = Field(description="every version received, oldest first")
    organisations: OrganisationNames = {}


class QuarantineQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    before_id: int | None = Field(default=None, ge=1)


class QuarantinedEvent(BaseModel):
    id: int
    room_id: str
    event_id: str
    sender: str
    reason: str
    detail: str
    at: datetime


class QuarantineList(BaseModel):
    items: list[QuarantinedEvent]


def _summary(record: ReceivedRecord, revoked: Mapping[str, int],
             coalitions: Mapping[str, Coalition]) -> dict[str, Any]:
    revoked_at = revoked.get(record.issuer)
    coalition = coalitions.get(record.coalition_id or "")
    return {
        "issuer": record.issuer, "record_id": record.record_id, "version": record.version,
        "kind": record.kind, "disclosed_fields": disclosed_fields(record.claims),
        "verification": record.verification, "retracted": record.retracted,
        "received_at": record.received_at, "coalition_id": record.coalition_id,
        "coalition": None if coalition is None else coalition.label,
        "coalition_left": coalition is not None and not coalition.active,
        "signed_after_revocation": signed_after_revocation(record.claims, revoked_at),
        "issuer_revoked_at": revoked_at,
    }


async def _revoked(tx: StoreTransaction) -> dict[str, int]:
    return {m.org_id: m.revoked_at for m in await tx.orgs.members() if m.revoked_at is not None}


def _sent(receipt: ShareReceipt) -> list[SentTo]:
    return [SentTo(org_id=item.recipient, fields=list(item.fields),
                   room_id=receipt.rooms[item.recipient]) for item in receipt.recipients]


async def _share_result(node: Node, receipt: ShareReceipt) -> ShareResult:
    return ShareResult(record_id=receipt.record_id, version=receipt.version, kind=receipt.kind,
                       recipients=_sent(receipt),
                       organisations=named((item.recipient for item in receipt.recipients),
                                           await known_names(node)))


class SharingEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def _case(self, record_id: str) -> CaseRecord:
        with store_answers():
            async with self._node.store.read() as tx:
                return stored_record(await tx.cases.get(record_id))

    async def share_case(self, call: Call[ShareRequest, NoQuery]) -> ShareResult:
        record = await self._case(call.path["record_id"])
        with sharing_answers(), _file_answers():
            if call.body.attachments:
                receipt = await share_case_with_files(
                    self._node, record, call.body.recipients, call.body.fields,
                    call.body.choices(), actor=call.principal.user, now=self._now(),
                    coalition_id=call.body.coalition)
            else:
                receipt = await share_from_node(self._node, record, call.body.recipients,
                                                call.body.fields, actor=call.principal.user,
                                                issued_at=self._now(),
                                                coalition_id=call.body.coalition)
        return await _share_result(self._node, receipt)

    async def preview_case_share(self, call: Call[ShareRequest, NoQuery]) -> PreviewResult:
        record = await self._case(call.path["record_id"])
        with sharing_answers():
            coalition = await self._node.chosen_coalition(call.body.coalition)
            async with self._node.store.read() as tx:
                recipients = await verified_recipients(tx, self._node.org_id,
                                                       call.body.recipients,
                                                       coalition.coalition_id)
                record = await consent_scoped(tx, record)
            answers = {}
            for recipient in recipients:
                answers.update(preview_share(record, [recipient],
                                             call.body.fields_for(recipient.org_id),
                                             issued_at=self._now()))
        return PreviewResult(record_id=record.record_id, version=record.version,
                             recipients=[_preview(record, r, answers[r.org_id])
                                         for r in recipients],
                             organisations=named((r.org_id for r in recipients),
                                                 await known_names(self._node)))

    async def case_shares(self, call: Call[NoBody, NoQuery]) -> ShareHistory:
        record = await self._case(call.path["record_id"])
        async with self._node.store.read() as tx:
            entries = await ShareRepository(tx.session, tx.cipher).history(record.record_id)
        return ShareHistory(record_id=record.record_id, entries=[
            ShareEntryView(version=e.version, kind=e.kind, action=e.action, recipient=e.recipient,
                           fields=list(e.fields), room_id=e.room_id, shared_at=e.shared_at,
                           actor=e.actor)
            for e in entries
        ], organisations=named((e.recipient for e in entries), await known_names(self._node)))

    async def retract_case(self, call: Call[RetractRequest, NoQuery]) -> ShareResult:
        record = await self._case(call.path["record_id"])
        with sharing_answers():
            receipt = await retract_case(self._node, record, reason=call.body.reason,
                                         note=call.body.note, actor=call.principal.user,
                                         issued_at=self._now())
        return await _share_result(self._node, receipt)

    async def list_received(self, call: Call[NoBody, ReceivedListQuery]) -> ReceivedList:
        query = call.query
        async with self._node.store.read() as tx:
            records = await tx.received.list_latest(kind=query.kind, issuer=query.issuer,
                                                    limit=query.limit + 1, offset=query.offset)
            revoked = await _revoked(tx)
            coalitions = await known_coalitions(tx)
        page = records[: query.limit]
        more = len(records) > query.limit
        return ReceivedList(items=[ReceivedSummary(**_summary(r, revoked, coalitions))
                                   for r in page],
                            next_offset=query.offset + query.limit if more else None,
                            organisations=named((r.issuer for r in page),
                                                await known_names(self._node)))

    async def get_received(self, call: Call[NoBody, NoQuery]) -> ReceivedView:
        issuer, record_id = call.path["issuer"], call.path["record_id"]
        try:
            async with self._node.store.read() as tx:
                versions = await tx.received.versions(issuer, record_id)
                revoked = await _revoked(tx)
                coalitions = await known_coalitions(tx)
        except InvalidRecordId:
            versions, revoked, coalitions = [], {}, {}
        if not versions:
            raise ApiError(404, "not_found", "no record with this issuer and id was received")
        latest = versions[-1]
        return ReceivedView(**_summary(latest, revoked, coalitions),
                            claims=public_claims(latest.claims),
                            versions=[v.version for v in versions],
                            organisations=named([issuer], await known_names(self._node)))

    async def list_quarantine(self, call: Call[NoBody, QuarantineQuery]) -> QuarantineList:
        async with self._node.store.read() as tx:
            entries = await list_quarantined(tx.session, limit=call.query.limit,
                                             before_id=call.query.before_id)
        return QuarantineList(items=[
            QuarantinedEvent(id=e.id, room_id=e.room_id, event_id=e.event_id, sender=e.sender,
                             reason=e.reason, detail=e.detail,
                             at=datetime.fromtimestamp(e.at_ms / 1000, UTC))
            for e in entries
        ])

    def endpoints(self) -> list[Endpoint]:
        one = "/cases/{record_id}"
        received = ("received",)
        return [
            Endpoint("POST", one + "/share", self.share_case,
                     "Share the current version of a case with members (all or nothing)",
                     Role.editor, body=ShareRequest, response=ShareResult,
                     errors=(404, 409, 503), tags=TAGS),
            Endpoint("POST", one + "/share/preview", self.preview_case_share,
                     "Exactly what each recipient would receive, or the consent refusal",
                     Role.editor, body=ShareRequest, response=PreviewResult, errors=(404,),
                     tags=TAGS),
            Endpoint("GET", one + "/shares", self.case_shares,
                     "Sharing history: who was sent which version with which fields",
                     response=ShareHistory, errors=(404,), tags=TAGS),
            Endpoint("POST", one + "/retract", self.retract_case,
                     "Send a signed retraction to everyone who received the case",
                     Role.editor, body=RetractRequest, response=ShareResult,
                     errors=(404, 409, 503), tags=TAGS),
            Endpoint("GET", "/received", self.list_received,
                     "Records other members shared with this node (latest versions)",
                     query=ReceivedListQuery, response=ReceivedList, tags=received),
            Endpoint("GET", "/received/{issuer}/{record_id}", self.get_received,
                     "The latest version of a received record, or its tombstone",
                     response=ReceivedView, errors=(404,), tags=received),
            Endpoint("GET", "/quarantine", self.list_quarantine,
                     "Envelopes that failed verification, with the reason", Role.admin,
                     query=QuarantineQuery, response=QuarantineList, tags=("sync",)),
        ]


@contextmanager
def _file_answers() -> Iterator[None]:
    """Problems with chosen files, and a homeserver that cannot take them, as answers."""
    try:
        yield
    except FileNotShareable as error:
        raise invalid([FieldProblem(field="body.attachments", problem=str(error))]) from None
    except EvidenceDamaged as error:
        raise ApiError(409, "evidence_damaged", f"{error}; nothing was sent") from None
    except TransportError as error:
        raise ApiError(503, "homeserver_unavailable",
                       f"the files could not be uploaded ({error.operation}); nothing was"
                       " sent") from None


def _preview(
    record: CaseRecord, recipient: Recipient, answer: dict[str, Any] | ConsentRefused
) -> RecipientPreview:
    offer = sorted(allowed_fields(record.payload, recipient))
    if isinstance(answer, ConsentRefused):
        return RecipientPreview(
            org_id=recipient.org_id, allowed=False, claims=None, allowed_fields=offer,
            refused=[RefusedField(path=r.path, reason=r.reason) for r in answer.refusals],
        )
    return RecipientPreview(org_id=recipient.org_id, allowed=True, claims=answer, refused=[],
                            allowed_fields=offer)
