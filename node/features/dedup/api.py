"""De-duplication checks over HTTP (M6).

- ``POST /dedup/checks`` with ``{"kind": "case"|"campaign", "draft": {...}}`` starts a check and
  returns its id: a case check sends a query to every member of one coalition (``coalition``,
  needed when the node is in several; answers arrive later), a campaign check is a local
  search, complete at once.
- ``GET /dedup/checks/{check_id}``: who was asked, who answered, the possible matches (and, for
  a campaign check, the overlapping campaigns and proposals with their reasons).
- ``POST /dedup/checks/{check_id}/contact`` with a handle asks the matching member to connect.
- ``GET /dedup/contacts`` and ``POST /dedup/contacts/{request_id}`` (accept or decline): contact
  requests other members sent us.
- ``GET|PUT /dedup/settings`` (admins): the per-organisation rate limit and our contact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.core.api.answers import sharing_answers
from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    Link,
    NoBody,
    NoQuery,
    field_problems,
    invalid,
    setting_endpoints,
)
from node.core.api.organisations import OrganisationNames, known_names, named
from node.core.api.times import Time
from node.core.runtime import Node
from node.core.store import Role
from node.features.campaigns import CampaignDraft
from node.features.dedup.service import (
    CaseDraft,
    CheckState,
    CoalitionLeft,
    ContactRequest,
    DedupError,
    DedupSettings,
    NoCoalition,
    NoLinkageKey,
    UnknownCheck,
    UnknownContact,
    check_coalition,
    contact_coalition,
    contact_requests,
    decide_contact,
    dedup_settings,
    get_check,
    request_contact,
    set_dedup_settings,
    start_campaign_check,
    start_case_check,
)
from schemas.common import CoalitionId, Token

TAGS = ("dedup",)
T = TypeVar("T", bound=BaseModel)


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["case", "campaign"]
    draft: dict[str, Any] = Field(description="the draft case (victims, incident_date, country, "
                                  "place) or campaign (title, targets, countries, themes)")
    coalition: CoalitionId | None = Field(
        default=None, description="the coalition a case check asks (its id); needed only when "
        "this node is in several")


class CheckCreated(BaseModel):
    check_id: str


class MatchView(BaseModel):
    org_id: str
    score_band: str = Field(description="low, medium or high")
    handle: str = Field(description="opaque; name it to ask for contact")
    contact: str | None = None
    contact_status: str | None = Field(description="requested, accepted or declined")


class CampaignMatchView(BaseModel):
    org_id: str
    record_id: str
    kind: str
    title: str
    score_band: str
    reasons: list[str]


class CheckView(BaseModel):
    check_id: str
    kind: str
    coalition: str | None = Field(description="the coalition asked (none for a campaign check)")
    status: str = Field(description="pending until every asked member answered, then complete")
    asked: list[str]
    answered: list[str]
    matches: list[MatchView]
    refused: dict[str, str] = Field(description="members that refused the query, and why")
    campaigns: list[CampaignMatchView]
    organisations: OrganisationNames = {}


class ContactBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: Token


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: bool


class ContactRequestView(BaseModel):
    request_id: str
    querier: str
    score_band: str
    status: str
    arrived_at: Time
    decided_by: str | None
    pair_room: str | None
    matched_case: str | None = Field(
        description="the record id of our case that matched (never sent to the asker)")
    coalition: str | None = Field(description="the coalition the request came through")
    organisations: OrganisationNames = {}


class ContactRequestList(BaseModel):
    items: list[ContactRequestView]


def check_view(check: CheckState, known: Mapping[str, str],
               coalition: str | None = None) -> CheckView:
    contacts = {c.handle: c for c in check.contacts}
    matches = []
    for answer in sorted(check.answers, key=lambda a: a.org_id):
        if answer.handle is None or answer.score_band == "none":
            continue
        ask = contacts.get(answer.handle)
        matches.append(MatchView(
            org_id=answer.org_id, score_band=answer.score_band, handle=answer.handle,
            contact=ask.contact if ask and ask.contact else answer.contact,
            contact_status=ask.status if ask else None))
    for found in check.campaign_matches:
        matches.append(MatchView(org_id=found.org_id, score_band=found.score_band,
                                 handle=found.record_id, contact=None, contact_status=None))
    return CheckView(
        check_id=check.check_id, kind=check.kind, coalition=coalition or check.coalition_id,
        status=check.status, asked=check.asked,
        answered=check.answered, matches=matches,
        refused={a.org_id: a.refused for a in check.answers if a.refused},
        campaigns=[CampaignMatchView(org_id=c.org_id, record_id=c.record_id, kind=c.kind,
                                     title=c.title, score_band=c.score_band, reasons=c.reasons)
                   for c in check.campaign_matches],
        organisations=named([*check.asked, *check.answered,
                             *(c.org_id for c in check.campaign_matches)], known))


def contact_view(request: ContactRequest, known: Mapping[str, str],
                 coalition: str | None = None) -> ContactRequestView:
    return ContactRequestView(request_id=request.request_id, querier=request.querier,
                              score_band=request.score_band, status=request.status,
                              arrived_at=request.arrived_at, decided_by=request.decided_by,
                              pair_room=request.pair_room, matched_case=request.matched_case,
                              coalition=coalition or request.coalition_id,
                              organisations=named([request.querier], known))


@contextmanager
def dedup_answers() -> Iterator[None]:
    """Check and handshake refusals as API errors (ids and field names only)."""
    with sharing_answers():
        try:
            yield
        except (UnknownCheck, UnknownContact) as error:
            raise ApiError(404, "not_found", str(error)) from None
        except NoLinkageKey as error:
            raise ApiError(409, "no_linkage_key", str(error)) from None
        except NoCoalition as error:
            raise ApiError(409, "no_coalition", str(error)) from None
        except CoalitionLeft as error:
            raise invalid([FieldProblem(field="body.coalition", problem=str(error))],
                          str(error)) from None
        except DedupError as error:
            raise invalid([FieldProblem(field="body", problem=str(error))], str(error)) \
                from None


def _draft(model: type[T], draft: dict[str, Any]) -> T:
    try:
        return model.model_validate(draft)
    except ValidationError as error:
        raise invalid(field_problems(error, "body.draft")) from None


class DedupEndpoints:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def check_start(self, call: Call[CheckRequest, NoQuery]) -> CheckCreated:
        now = int(time.time())
        with dedup_answers():
            if call.body.kind == "case":
                check = await start_case_check(self._node, _draft(CaseDraft, call.body.draft),
                                               actor=call.principal.user, now=now,
                                               coalition_id=call.body.coalition)
            else:
                check = await start_campaign_check(
                    self._node, _draft(CampaignDraft, call.body.draft), now=now)
        return CheckCreated(check_id=check.check_id)

    async def _check_view(self, check: CheckState) -> CheckView:
        async with self._node.store.read() as tx:
            coalition = await check_coalition(tx, check)
        return check_view(check, await known_names(self._node), coalition)

    async def check_get(self, call: Call[NoBody, NoQuery]) -> CheckView:
        with dedup_answers():
            check = await get_check(self._node, call.path["check_id"])
        return await self._check_view(check)

    async def check_contact(self, call: Call[ContactBody, NoQuery]) -> CheckView:
        with dedup_answers():
            check = await request_contact(self._node, call.path["check_id"], call.body.handle,
                                          actor=call.principal.user, now=int(time.time()))
        return await self._check_view(check)

    async def contact_list(self, call: Call[NoBody, NoQuery]) -> ContactRequestList:
        known = await known_names(self._node)
        return ContactRequestList(items=[
            contact_view(r, known, await contact_coalition(self._node, r))
            for r in await contact_requests(self._node)])

    async def contact_decide(self, call: Call[DecisionBody, NoQuery]) -> ContactRequestView:
        with dedup_answers():
            request = await decide_contact(self._node, call.path["request_id"],
                                           accept=call.body.accept, actor=call.principal.user,
                                           now=int(time.time()))
        return contact_view(request, await known_names(self._node),
                            await contact_coalition(self._node, request))

    def endpoints(self) -> list[Endpoint]:
        one = "/dedup/checks/{check_id}"
        return [
            Endpoint("POST", "/dedup/checks", self.check_start,
                     "Check the coalition for a draft case (query) or campaign (local search)",
                     Role.editor, body=CheckRequest, response=CheckCreated, status=201,
                     errors=(409,), tags=TAGS, links=(
                         Link("GetCheck", "GET", one, {"check_id": "check_id"}),
                         Link("AskContact", "POST", one + "/contact", {"check_id": "check_id"}))),
            Endpoint("GET", one, self.check_get,
                     "A check: who was asked, who answered, possible matches",
                     response=CheckView, errors=(404,), tags=TAGS),
            Endpoint("POST", one + "/contact", self.check_contact,
                     "Ask the member that answered with this handle to connect", Role.editor,
                     body=ContactBody, response=CheckView, errors=(404, 409), tags=TAGS),
            Endpoint("GET", "/dedup/contacts", self.contact_list,
                     "Contact requests other members sent us, pending first",
                     response=ContactRequestList, tags=TAGS),
            Endpoint("POST", "/dedup/contacts/{request_id}", self.contact_decide,
                     "Accept (a pair room is made) or decline a contact request", Role.editor,
                     body=DecisionBody, response=ContactRequestView, errors=(404, 503),
                     tags=TAGS),
            *setting_endpoints(
                "/dedup/settings", DedupSettings, lambda: dedup_settings(self._node),
                lambda chosen, _actor: set_dedup_settings(self._node, chosen),
                read="Rate limit per organisation and our contact",
                change="Change the rate limit and our contact", tags=TAGS),
        ]
