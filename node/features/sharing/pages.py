"""The share dialog: choose members and fields, see exactly what each will receive, then send.

Staff may also choose, per recipient, which of the case's files go with it and which copy:
the working copy (identifying metadata removed) unless the original is chosen. Files count as
one more field for the gate (``federation.consent.ATTACHMENTS``), refused where names or places
are; they are sent by :func:`node.features.evidence.share_case_with_files`, which uploads them
only after every check passed and then calls the same sharing path.

A share goes through one coalition (decision 0032): staff pick it when the node is in several
(the form's ``coalition``; "Show its members" lists that coalition's verified members), the
recipients must be its members and the gate counts them as coalition members only if the
case's consent covers that coalition, else the preview shows the refusal.

Nothing is sent from the first form: "Preview" shows, per recipient, the claims that recipient
would verify (the consent gate's own :func:`federation.consent.preview`, the code path a real
send takes) or the gate's refusal naming each refused field. Only a preview with no refusal
offers "Send", which calls :func:`node.core.sharing.share_from_node`, the function the API uses; it
re-checks consent, queues one sealed copy per recipient and writes the audit entry. Retraction
likewise calls :func:`node.core.sharing.retract_from_node`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from federation.consent import (
    ATTACHMENTS,
    ConsentRefused,
    Recipient,
    Refusal,
    UnknownFieldPath,
    allowed_fields,
)
from federation.transport import TransportError
from node.core.rooms import PairRoomError
from node.core.runtime import CoalitionNotChosen
from node.core.sharing import (
    AlreadyRetracted,
    NothingToRetract,
    ShareRefused,
    UnknownRecipient,
    consent_scoped,
    preview_share,
    share_from_node,
    verified_recipients,
)
from node.core.store import InvalidRecordId, Member, RecordNotFound, Role
from node.core.store.coalitions import Coalition
from node.core.web.context import current_visit, form_data, render, see_other, staff_of, web_context
from node.core.web.i18n import N_, Formatter
from node.core.web.labels import FIELD_GROUP_NAMES
from node.core.web.presenters import case_heading, field_name, member_names, payload_facts
from node.core.web.routes import PageRoute
from node.features.cases import ONE, stored_record
from node.features.evidence import (
    Attachment,
    Copy,
    EvidenceDamaged,
    FileChoice,
    FileNotShareable,
    case_attachments,
    human_size,
    share_case_with_files,
)
from node.features.sharing.retraction import retract_case
from schemas.codes import RetractionReasonCode
from schemas.fields import CASE_FIELD_GROUPS, FieldGroup, split_path
from schemas.records import CaseRecord
from schemas.typology import ConsentLevel, Vocabulary, is_code

REASONS: Final[Mapping[str, str]] = {
    "internal": N_("This stays on this node; it is never shared."),
    "none": N_("The people concerned did not consent to any sharing."),
    "nothing": N_("The consent given (%(consent)s) allows nothing for this organisation."),
    "group": N_("The consent given (%(consent)s) does not allow this for this organisation."),
    "risk": N_("At risk level %(risk)s this stays with the partners named in the consent."),
}
NOT_AT_ALL: Final = N_("This case may not go to this organisation at all.")


@dataclass(frozen=True)
class FieldChoice:
    path: str
    label: str
    empty: bool


@dataclass(frozen=True)
class RecipientPreview:
    org_id: str
    name: str
    safety_code: str
    facts: tuple[Any, ...]
    refusals: tuple[tuple[str, str], ...]
    refused: bool
    files: tuple[tuple[str, str], ...] = ()
    """The files it will receive: name, and which copy in words."""


FILE_FIELD: Final = "file"
"""Form fields ``file:<org id>:<attachment id>``, valued ``working``, ``original`` or empty."""
COPY_NAMES: Final[Mapping[Copy, str]] = {
    Copy.WORKING: N_("working copy, identifying metadata removed"),
    Copy.ORIGINAL: N_("original, exactly as collected"),
}
Chosen = dict[str, list[FileChoice]]


def chosen_files(posted: Any, recipients: Sequence[str],
                 attachments: Sequence[Attachment]) -> Chosen:
    """Per chosen recipient, the files chosen for it (choices for organisations not chosen as
    recipients, or for files not attached to this case, are not files to send)."""
    known = {a.attachment_id for a in attachments}
    chosen: Chosen = {}
    for org_id in recipients:
        for attachment_id in sorted(known):
            value = posted.get(f"{FILE_FIELD}:{org_id}:{attachment_id}", "")
            if value in (Copy.WORKING.value, Copy.ORIGINAL.value):
                chosen.setdefault(org_id, []).append(FileChoice(attachment_id, Copy(value)))
    return chosen


async def _record(request: web.Request) -> CaseRecord:
    ctx = web_context(request)
    try:
        async with ctx.node.store.read() as tx:
            return stored_record(await tx.cases.get(request.match_info["record_id"]))
    except (RecordNotFound, InvalidRecordId):
        raise web.HTTPNotFound() from None


async def _members(request: web.Request, coalition: Coalition | None) -> list[Member]:
    """The verified members of ``coalition`` (none when the node is in no coalition)."""
    if coalition is None:
        return []
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        return [m for m in await tx.orgs.members(verified_only=True,
                                                 coalition_id=coalition.coalition_id)
                if m.org_id != ctx.node.org_id]


async def _coalition(request: web.Request, record: CaseRecord,
                     named: str | None) -> Coalition | None:
    """The coalition the dialog shares through: the one named in the form, else the node's
    only one, else (several, none named yet) the first its consent covers. None when the
    node is in no coalition; :class:`CoalitionNotChosen` when the one named is unknown."""
    node = web_context(request).node
    if named:
        return await node.coalition(named)
    coalitions = await node.coalitions()
    covered = record.payload.consent_coalitions or ()
    return next((c for c in coalitions if c.coalition_id in covered),
                coalitions[0] if coalitions else None)


def _has_value(payload: Mapping[str, Any], path: str) -> bool:
    name, key = split_path(path)
    value = payload.get(name)
    if key is None:
        return value not in (None, "", [])
    return isinstance(value, list) and any(
        isinstance(e, Mapping) and e.get(key) not in (None, "", []) for e in value)


def field_groups(record: CaseRecord, fmt: Formatter) -> list[tuple[str, list[FieldChoice]]]:
    payload = record.payload.model_dump(mode="json")
    groups: list[tuple[str, list[FieldChoice]]] = []
    for group in FieldGroup:
        choices = [FieldChoice(path, field_name(path, fmt), not _has_value(payload, path))
                   for path, in_group in CASE_FIELD_GROUPS.items() if in_group == group]
        groups.append((fmt.gettext(FIELD_GROUP_NAMES[group]), choices))
    return groups


def _offers(record: CaseRecord, members: Sequence[Member], coalition: Coalition | None,
            fmt: Formatter) -> dict[str, str]:
    """Per member, which field groups consent lets it receive through ``coalition``, in
    words (``record`` with its consent scope spelled out)."""
    offers = {}
    coalition_id = None if coalition is None else coalition.coalition_id
    for member in members:
        allowed = allowed_fields(record.payload, Recipient.member(member.org_id, coalition_id))
        groups = [FIELD_GROUP_NAMES[g] for g in FieldGroup
                  if any(CASE_FIELD_GROUPS[p] == g for p in allowed)]
        offers[member.org_id] = (", ".join(fmt.gettext(g) for g in groups)
                                 or fmt.gettext(N_("nothing")))
    return offers


async def _dialog(request: web.Request, record: CaseRecord, *, recipients: Sequence[str] = (),
                  fields: Sequence[str] = (), errors: Mapping[str, str] | None = None,
                  previews: Sequence[RecipientPreview] = (), status: int = 200,
                  problem: str | None = None, files: Chosen | None = None,
                  coalition: Coalition | None = None) -> web.Response:
    fmt = current_visit(request).fmt
    node = web_context(request).node
    if coalition is None:
        coalition = await _coalition(request, record, None)
    members = await _members(request, coalition)
    async with node.store.read() as tx:
        scoped = await consent_scoped(tx, record)
    names = member_names(members)
    picked = {f"{org_id}:{c.attachment_id}": c.copy.value
              for org_id, chosen in (files or {}).items() for c in chosen}
    return render(
        request, "cases/share.html", status=status, record=record,
        heading=case_heading(record.payload.model_dump(mode="json"), fmt),
        members=sorted(members, key=lambda m: names[m.org_id].casefold()), names=names,
        offers=_offers(scoped, members, coalition, fmt), groups=field_groups(record, fmt),
        coalitions=await node.coalitions(), coalition=coalition,
        uncovered=coalition is not None
        and coalition.coalition_id not in (scoped.payload.consent_coalitions or ()),
        chosen_recipients=set(recipients), chosen_fields=set(fields), errors=errors or {},
        previews=previews, problem=problem, file_field=FILE_FIELD, picked=picked,
        attachments=await case_attachments(web_context(request).node, record.record_id),
        human_size=human_size,
        consent=fmt.term(Vocabulary.CONSENT_LEVEL, record.payload.consent_level.value),
        no_consent=record.payload.consent_level == ConsentLevel.NONE,
        can_send=bool(previews) and not any(p.refused for p in previews),
    )


async def share_page(request: web.Request) -> web.StreamResponse:
    record = await _record(request)
    try:
        coalition = await _coalition(request, record, request.query.get("coalition"))
    except CoalitionNotChosen:
        raise web.HTTPNotFound() from None
    return await _dialog(request, record, coalition=coalition)


def refusal_text(refusal: Refusal, record: CaseRecord, fmt: Formatter) -> str:
    reason = refusal.reason
    values = {"consent": fmt.term(Vocabulary.CONSENT_LEVEL, record.payload.consent_level.value),
              "risk": fmt.term(Vocabulary.RISK_LEVEL, record.payload.risk_level.value)}
    if reason.startswith("internal"):
        key = "internal"
    elif "'none' allows no disclosure" in reason:
        key = "none"
    elif "allows nothing" in reason:
        key = "nothing"
    elif reason.startswith("risk level"):
        key = "risk"
    else:
        key = "group"
    return fmt.gettext(REASONS[key]) % values


def _refusals(refused: ConsentRefused, record: CaseRecord,
              fmt: Formatter) -> tuple[tuple[str, str], ...]:
    if not refused.refusals:
        return ((fmt.gettext(N_("The whole case")), fmt.gettext(NOT_AT_ALL)),)
    return tuple((field_name(r.path, fmt), refusal_text(r, record, fmt))
                 for r in refused.refusals)


def _file_lines(chosen: Sequence[FileChoice], attachments: Mapping[str, Attachment],
                fmt: Formatter) -> tuple[tuple[str, str], ...]:
    return tuple((attachments[c.attachment_id].name, fmt.gettext(COPY_NAMES[c.copy]))
                 for c in chosen if c.attachment_id in attachments)


def previews_of(record: CaseRecord, answers: Mapping[str, dict[str, Any] | ConsentRefused],
                members: Mapping[str, Member], fmt: Formatter, files: Chosen | None = None,
                attachments: Sequence[Attachment] = ()) -> list[RecipientPreview]:
    names = member_names(members.values())
    by_id = {a.attachment_id: a for a in attachments}
    result = []
    for org_id, answer in answers.items():
        member = members.get(org_id)
        code = member.safety_code if member is not None else ""
        if isinstance(answer, ConsentRefused):
            result.append(RecipientPreview(org_id, names.get(org_id, org_id), code, (),
                                           _refusals(answer, record, fmt), True))
        else:
            result.append(RecipientPreview(
                org_id, names.get(org_id, org_id), code, payload_facts(answer, fmt), (), False,
                _file_lines((files or {}).get(org_id, ()), by_id, fmt)))
    return result


async def share(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    record = await _record(request)
    posted = await form_data(request)
    recipients = list(dict.fromkeys(posted.getall("recipients", [])))
    fields = list(dict.fromkeys(posted.getall("fields", [])))
    attachments = await case_attachments(ctx.node, record.record_id)
    files = chosen_files(posted, recipients, attachments)
    try:
        coalition = await _coalition(request, record, posted.get("coalition") or None)
    except CoalitionNotChosen:
        return await _dialog(request, record, recipients=recipients, fields=fields, status=422,
                             files=files, errors={"coalition": visit.gettext(
                                 N_("Choose one of this node's coalitions."))})
    if posted.get("step") == "coalition":
        # Another coalition was picked: its members, nothing chosen from the former one.
        return await _dialog(request, record, fields=fields, coalition=coalition)
    if coalition is None:
        return await _dialog(request, record, status=409)
    errors = {}
    if not recipients:
        errors["recipients"] = visit.gettext(N_("Choose at least one organisation."))
    if not fields:
        errors["fields"] = visit.gettext(N_("Choose at least one field."))
    if errors:
        return await _dialog(request, record, recipients=recipients, fields=fields,
                             errors=errors, status=422, files=files, coalition=coalition)
    stale = posted.get("version") not in (None, str(record.version))
    if posted.get("step") == "send" and not stale:
        return await _send(request, record, recipients, fields, files, coalition)
    try:
        async with ctx.node.store.read() as tx:
            chosen = await verified_recipients(tx, ctx.node.org_id, recipients,
                                               coalition.coalition_id)
            members = {m.org_id: m for m in await tx.orgs.members()}
            scoped = await consent_scoped(tx, record)
        answers: dict[str, dict[str, Any] | ConsentRefused] = {}
        for recipient in chosen:
            wanted = [*fields, ATTACHMENTS] if files.get(recipient.org_id) else fields
            answers.update(preview_share(scoped, [recipient], wanted, issued_at=ctx.now()))
    except UnknownRecipient:
        return await _dialog(request, record, fields=fields, status=422, files=files,
                             coalition=coalition, errors={"recipients": visit.gettext(
                                 N_("Choose only verified members of this coalition."))})
    except UnknownFieldPath:
        raise web.HTTPBadRequest() from None
    problem = (visit.gettext(N_("The case changed since the preview; check the new preview."))
               if stale else None)
    return await _dialog(request, record, recipients=recipients, fields=fields,
                         previews=previews_of(record, answers, members, visit.fmt, files,
                                              attachments),
                         problem=problem, files=files, coalition=coalition)


async def _send(request: web.Request, record: CaseRecord, recipients: Sequence[str],
                fields: Sequence[str], files: Chosen, coalition: Coalition) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    actor = staff_of(request).username
    try:
        if files:
            await share_case_with_files(ctx.node, record, recipients, fields, files,
                                        actor=actor, now=ctx.now(),
                                        coalition_id=coalition.coalition_id)
        else:
            await share_from_node(ctx.node, record, recipients, fields, actor=actor,
                                  issued_at=ctx.now(), coalition_id=coalition.coalition_id)
    except ShareRefused as refused:
        async with ctx.node.store.read() as tx:
            members = {m.org_id: m for m in await tx.orgs.members()}
        answers: dict[str, dict[str, Any] | ConsentRefused] = dict(refused.refusals)
        return await _dialog(request, record, recipients=recipients, fields=fields,
                             previews=previews_of(record, answers, members, visit.fmt),
                             status=409, files=files, coalition=coalition)
    except (UnknownRecipient, UnknownFieldPath, FileNotShareable):
        raise web.HTTPBadRequest() from None
    except EvidenceDamaged:
        return await _dialog(request, record, recipients=recipients, fields=fields, status=409,
                             files=files, coalition=coalition, problem=visit.gettext(N_(
                                 "A stored file no longer matches its fingerprint, so it was"
                                 " not sent. Nothing was sent; check the file's evidence"
                                 " package.")))
    except TransportError:
        return await _dialog(request, record, recipients=recipients, fields=fields, status=503,
                             files=files, coalition=coalition, problem=visit.gettext(N_(
                                 "The homeserver did not take the files. Nothing was sent;"
                                 " try again later.")))
    except AlreadyRetracted:
        return await _dialog(request, record, status=409, problem=visit.gettext(
            N_("This case was retracted; it is not shared again.")))
    except PairRoomError:
        return await _dialog(request, record, recipients=recipients, fields=fields, status=503,
                             coalition=coalition, problem=visit.gettext(N_(
                                 "The homeserver cannot be reached to set up the room with"
                                 " this organisation. Nothing was sent; try again later.")))
    return see_other(f"/cases/{record.record_id}", done="shared")


async def retract(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    record = await _record(request)
    posted = await form_data(request)
    reason = posted.get("reason", "")
    if not is_code(Vocabulary.RETRACTION_REASON, reason):
        raise web.HTTPBadRequest()
    code: RetractionReasonCode = reason
    try:
        await retract_case(ctx.node, record, reason=code, note=None,
                           actor=staff_of(request).username, issued_at=ctx.now())
    except (NothingToRetract, AlreadyRetracted, PairRoomError):
        raise web.HTTPConflict() from None
    return see_other(f"/cases/{record.record_id}", done="retracted")


ROUTES: Final = [
    PageRoute("GET", ONE + "/share", share_page, Role.editor),
    PageRoute("POST", ONE + "/share", share, Role.editor),
    PageRoute("POST", ONE + "/retract", retract, Role.editor),
]
