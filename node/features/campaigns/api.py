"""Joint campaigns over HTTP (M7): ``/proposals``, ``/campaigns`` (see
:mod:`node.features.campaigns.service`).

- ``POST /proposals/check`` answers the campaign check (overlapping campaigns and proposals this
  node knows) for a draft, before it is posted; ``POST /proposals`` posts it to one coalition
  (``coalition``: required when the node is in several, decision 0032). Every proposal and
  letter shows its ``coalition`` (id, label, and whether this node left it).
- ``GET /proposals`` and ``GET /proposals/{issuer}/{record_id}``: status (open, launching,
  expired, active, closed), tally and every response.
- ``POST /proposals/{issuer}/{record_id}/responses``: join (roles, staff Matrix accounts to
  invite), endorse or decline (reason); again to change it, until the deadline (409 after).
- ``POST /proposals/{record_id}/launch``: the proposer's early launch.
- ``GET /campaigns``, ``GET /campaigns/{issuer}/{record_id}`` (the proposal's ids): participants,
  updates, tasks, key messages, timeline. ``POST .../posts``, ``POST .../leave``,
  ``POST .../close`` (the proposer closes; another participant's call is its vote).
- ``POST /letters`` (title, text, deadline, optional campaign, or else ``coalition``),
  ``GET /letters``,
  ``GET /letters/{issuer}/{record_id}`` (signatories live), ``POST .../signatures`` (409 after the
  deadline), ``GET .../export?format=text|html|json`` (signatory list and verification appendix).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Literal

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
    invalid,
)
from node.core.api.organisations import OrganisationNames, known_names, named
from node.core.api.times import Time, TimeInput
from node.core.rooms import PairRoomError
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import SharingError
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.features.campaigns.check import CampaignDraft, Overlap, check_against_node
from node.features.campaigns.letters import (
    LateSignature,
    LetterNotFound,
    LetterState,
    all_letters,
    appendix_entries,
    create_letter,
    export_data,
    export_html,
    export_text,
    letter_of,
    sign_letter,
    verify_letter_appendix,
)
from node.features.campaigns.service import (
    CampaignError,
    CampaignNotFound,
    NotAllowed,
    Post,
    ProposalState,
    ResponsesClosed,
    all_proposals,
    close,
    launch,
    leave,
    post,
    propose,
    respond,
    state_of,
)
from schemas.codes import CampaignPostTypeCode, CampaignRoleCode, ProposalResponseCode
from schemas.common import (
    CoalitionId,
    LongText,
    MatrixUserId,
    Name,
    NoDuplicates,
    OrgId,
    RecordRef,
    ShortText,
)
from schemas.dates import PartialDateText
from schemas.payloads import Proposal

TAGS = ("campaigns",)
RECORD = {"issuer": "issuer", "record_id": "record_id"}
"""Link parameters to a record from an answer naming it (its issuer and record id)."""


class ResponseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response: ProposalResponseCode
    roles: Annotated[list[CampaignRoleCode], NoDuplicates] = Field(default_factory=list)
    reason: ShortText | None = None
    contacts: list[MatrixUserId] = Field(
        default_factory=list, max_length=20,
        description="staff Matrix accounts to invite to the campaign room")


class PostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_type: CampaignPostTypeCode
    title: ShortText | None = None
    text: LongText | None = None
    owner: OrgId | None = None
    due: PartialDateText | None = None
    targets: list[Name] = Field(default_factory=list, max_length=50)


_COALITION_FIELD = Field(
    default=None, description="the coalition it goes to (decision 0032); needed only when this "
    "node is in several")


class ProposalRequest(Proposal):
    """A proposal as the API takes it: the deadline as an ISO 8601 time, and the coalition."""

    model_config = ConfigDict(extra="forbid")

    deadline: TimeInput
    coalition: CoalitionId | None = _COALITION_FIELD

    def proposal(self) -> Proposal:
        return Proposal.model_validate(self.model_dump(mode="python", exclude={"coalition"}))


class CoalitionView(BaseModel):
    """The coalition a proposal or letter went through."""

    coalition_id: str
    label: str
    left: bool = Field(description="this node has left that coalition")


def coalition_view(coalition_id: str | None, known: Mapping[str, Coalition]
                   ) -> CoalitionView | None:
    if coalition_id is None:
        return None
    found = known.get(coalition_id)
    return CoalitionView(coalition_id=coalition_id,
                         label=found.label if found else coalition_id,
                         left=found is None or not found.active)


async def known_coalitions(node: Node) -> dict[str, Coalition]:
    """Every coalition this node is or was in, by id."""
    async with node.store.read() as tx:
        return {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}


class ProposalShown(Proposal):
    """A proposal as the API shows it: the deadline as an ISO 8601 time."""

    deadline: Time


class ResponseView(BaseModel):
    org_id: str
    response: str
    roles: list[str]
    reason: str | None
    contacts: list[str]
    version: int
    issued_at: Time


class PostView(BaseModel):
    issuer: str
    record_id: str
    post_type: str
    title: str | None
    text: str | None
    owner: str | None
    due: str | None
    targets: list[str]
    issued_at: Time


class Tally(BaseModel):
    join: int
    endorse: int
    decline: int
    participants: int = Field(description="the proposer and every organisation that joined")
    minimum: int


class ProposalView(BaseModel):
    issuer: str
    record_id: str
    issued_at: Time
    status: str = Field(description="open, launching, expired, active or closed")
    proposal: ProposalShown
    tally: Tally
    responses: list[ResponseView]
    joined: list[str]
    participants: list[str] = Field(description="of the campaign, once it is launched")
    left: list[str]
    close_votes: list[str]
    room_id: str | None
    posts: list[PostView] = Field(description="campaign room content, oldest first")
    coalition: CoalitionView | None = None
    organisations: OrganisationNames = {}


class ProposalList(BaseModel):
    items: list[ProposalView]


class OverlapView(BaseModel):
    kind: str
    issuer: str
    record_id: str
    title: str
    score: int = Field(description="0-100")
    reasons: list[str]


class CheckResult(BaseModel):
    overlaps: list[OverlapView]


def _post_view(item: Post) -> PostView:
    return PostView(issuer=item.issuer, record_id=item.record_id, post_type=item.post_type,
                    title=item.title, text=item.text, owner=item.owner, due=item.due,
                    targets=list(item.targets), issued_at=item.issued_at)


def _proposal_orgs(state: ProposalState) -> Iterator[str]:
    yield state.issuer
    yield from (r.org_id for r in state.responses)
    yield from (*state.joined, *state.participants, *state.left, *state.close_votes)
    for item in state.posts:
        yield from (item.issuer, *([item.owner] if item.owner else []))


def proposal_view(state: ProposalState, known: Mapping[str, str],
                  coalitions: Mapping[str, Coalition] | None = None) -> ProposalView:
    tally = Tally(join=state.count("join"), endorse=state.count("endorse"),
                  decline=state.count("decline"), participants=len(state.joined),
                  minimum=state.proposal.min_organisations)
    return ProposalView(
        issuer=state.issuer, record_id=state.record_id, issued_at=state.issued_at,
        status=state.status,
        proposal=ProposalShown.model_validate(state.proposal.model_dump(mode="python")),
        tally=tally,
        responses=[ResponseView(org_id=r.org_id, response=r.response, roles=list(r.roles),
                                reason=r.reason, contacts=list(r.contacts), version=r.version,
                                issued_at=r.issued_at) for r in state.responses],
        joined=list(state.joined), participants=list(state.participants), left=list(state.left),
        close_votes=list(state.close_votes),
        room_id=state.campaign.room_id if state.campaign else None,
        posts=[_post_view(p) for p in state.posts],
        coalition=coalition_view(state.coalition_id, coalitions or {}),
        organisations=named(_proposal_orgs(state), known))


def _overlap_view(overlap: Overlap) -> OverlapView:
    return OverlapView(kind=overlap.kind, issuer=overlap.issuer, record_id=overlap.record_id,
                       title=overlap.title, score=overlap.score, reasons=list(overlap.reasons))


@contextmanager
def campaign_answers() -> Iterator[None]:
    """Campaign refusals as API errors (ids and rules only, never content)."""
    try:
        yield
    except CoalitionNotChosen as error:
        raise invalid([FieldProblem(field="body.coalition", problem=str(error))],
                      str(error)) from None
    except LateSignature as error:
        raise ApiError(409, "deadline_passed", str(error)) from None
    except (CampaignNotFound, LetterNotFound) as error:
        raise ApiError(404, "not_found", str(error)) from None
    except ResponsesClosed as error:
        raise ApiError(409, "deadline_passed", str(error)) from None
    except NotAllowed as error:
        raise ApiError(409, "not_allowed", str(error)) from None
    except CampaignError as error:
        raise ApiError(409, "campaign_refused", str(error)) from None
    except (SharingError, PairRoomError) as error:
        raise ApiError(503, "not_sent", str(error)) from None


class CampaignEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def _view(self, state: ProposalState) -> ProposalView:
        return proposal_view(state, await known_names(self._node),
                             await known_coalitions(self._node))

    async def check(self, call: Call[CampaignDraft, NoQuery]) -> CheckResult:
        overlaps = await check_against_node(self._node, call.body, self._now())
        return CheckResult(overlaps=[_overlap_view(o) for o in overlaps])

    async def create(self, call: Call[ProposalRequest, NoQuery]) -> ProposalView:
        with campaign_answers():
            state = await propose(self._node, call.body.proposal(), actor=call.principal.user,
                                  now=self._now(), coalition_id=call.body.coalition)
        return await self._view(state)

    async def list_proposals(self, call: Call[NoBody, NoQuery]) -> ProposalList:
        known, coalitions = await known_names(self._node), await known_coalitions(self._node)
        return ProposalList(items=[proposal_view(s, known, coalitions)
                                   for s in await all_proposals(self._node, self._now())])

    async def one(self, call: Call[NoBody, NoQuery]) -> ProposalView:
        with campaign_answers():
            state = await state_of(self._node, call.path["issuer"], call.path["record_id"],
                                   self._now())
        return await self._view(state)

    async def respond(self, call: Call[ResponseRequest, NoQuery]) -> ProposalView:
        body = call.body
        with campaign_answers():
            state = await respond(self._node, call.path["issuer"], call.path["record_id"],
                                  body.response, roles=body.roles, reason=body.reason,
                                  contacts=body.contacts, actor=call.principal.user,
                                  now=self._now())
        return await self._view(state)

    async def launch(self, call: Call[NoBody, NoQuery]) -> ProposalView:
        with campaign_answers():
            state = await launch(self._node, call.path["record_id"], now=self._now())
        return await self._view(state)

    async def list_campaigns(self, call: Call[NoBody, NoQuery]) -> ProposalList:
        states = await all_proposals(self._node, self._now())
        known, coalitions = await known_names(self._node), await known_coalitions(self._node)
        return ProposalList(items=[proposal_view(s, known, coalitions) for s in states
                                   if s.campaign is not None])

    async def add_post(self, call: Call[PostRequest, NoQuery]) -> ProposalView:
        body = call.body
        with campaign_answers():
            state = await post(self._node, call.path["issuer"], call.path["record_id"],
                               body.post_type, title=body.title, text=body.text,
                               owner=body.owner, due=body.due, targets=body.targets,
                               actor=call.principal.user, now=self._now())
        return await self._view(state)

    async def leave(self, call: Call[NoBody, NoQuery]) -> ProposalView:
        with campaign_answers():
            state = await leave(self._node, call.path["issuer"], call.path["record_id"],
                                actor=call.principal.user, now=self._now())
        return await self._view(state)

    async def close(self, call: Call[NoBody, NoQuery]) -> ProposalView:
        with campaign_answers():
            state = await close(self._node, call.path["issuer"], call.path["record_id"],
                                actor=call.principal.user, now=self._now())
        return await self._view(state)

    def endpoints(self) -> list[Endpoint]:
        one = "/proposals/{issuer}/{record_id}"
        campaign = "/campaigns/{issuer}/{record_id}"
        errors = (404, 409, 503)
        return [
            Endpoint("POST", "/proposals/check", self.check,
                     "The campaign check: known campaigns and proposals that overlap a draft",
                     body=CampaignDraft, response=CheckResult, tags=TAGS),
            Endpoint("POST", "/proposals", self.create,
                     "Post a joint campaign proposal to a coalition", Role.editor,
                     body=ProposalRequest, response=ProposalView, status=201,
                     errors=(*errors, 422),
                     tags=TAGS, links=(
                         Link("GetProposal", "GET", one, RECORD),
                         Link("Respond", "POST", one + "/responses", RECORD),
                         Link("Launch", "POST", "/proposals/{record_id}/launch",
                              {"record_id": "record_id"}))),
            Endpoint("GET", "/proposals", self.list_proposals,
                     "Every proposal this node knows, with status and tally",
                     response=ProposalList, tags=TAGS),
            Endpoint("GET", one, self.one, "One proposal: status, tally, responses",
                     response=ProposalView, errors=(404,), tags=TAGS),
            Endpoint("POST", one + "/responses", self.respond,
                     "Join, endorse or decline (again to change it, until the deadline)",
                     Role.editor, body=ResponseRequest, response=ProposalView, errors=errors,
                     tags=TAGS),
            Endpoint("POST", "/proposals/{record_id}/launch", self.launch,
                     "Launch this node's proposal now: create the campaign room",
                     Role.editor, response=ProposalView, status=202, errors=errors, tags=TAGS),
            Endpoint("GET", "/campaigns", self.list_campaigns,
                     "Launched campaigns (active and closed)", response=ProposalList, tags=TAGS),
            Endpoint("GET", campaign, self.one,
                     "One campaign: participants, updates, tasks, key messages, timeline",
                     response=ProposalView, errors=(404,), tags=TAGS),
            Endpoint("POST", campaign + "/posts", self.add_post,
                     "Post an update, task, key message or timeline entry to the participants",
                     Role.editor, body=PostRequest, response=ProposalView, status=201,
                     errors=errors, tags=TAGS),
            Endpoint("POST", campaign + "/leave", self.leave,
                     "Leave the campaign (not the proposer)", Role.editor,
                     response=ProposalView, errors=errors, tags=TAGS),
            Endpoint("POST", campaign + "/close", self.close,
                     "Close the campaign (proposer) or vote to close (other participants)",
                     Role.editor, response=ProposalView, errors=errors, tags=TAGS),
        ]


# --- letters ----------------------------------------------------------------------------------


class LetterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: ShortText
    text: LongText
    deadline: TimeInput
    campaign: RecordRef | None = Field(
        default=None, description="the campaign (its proposal's ids) whose participants sign; "
        "none: the whole coalition")
    coalition: CoalitionId | None = Field(
        default=None, description="without a campaign: the coalition whose members sign "
        "(decision 0032); needed only when this node is in several")


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signatory_name: Name
    signatory_role: ShortText | None = None


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["text", "html", "json"] = "text"


class SignatoryView(BaseModel):
    org_id: str
    organisation: str
    signatory_name: str
    signatory_role: str | None
    signed_at: Time


class LetterView(BaseModel):
    issuer: str
    record_id: str
    version: int
    title: str
    text: str
    deadline: Time
    open: bool = Field(description="false once the deadline passed")
    campaign: RecordRef | None
    sha256: str
    signatories: list[SignatoryView]
    late: list[str] = Field(description="organisations whose signature came after the deadline")
    coalition: CoalitionView | None = None
    organisations: OrganisationNames = {}


class LetterList(BaseModel):
    items: list[LetterView]


APPENDIX_VALID_HEADER = "Minga-Appendix-Valid"
"""On an exported letter: ``true`` when its appendix verifies (verify_letter_appendix)."""
_LETTER_FILES = {"text": ("text/plain; charset=utf-8", "txt"),
                 "html": ("text/html; charset=utf-8", "html"),
                 "json": ("application/json", "json")}


def letter_view(state: LetterState, known: Mapping[str, str],
                coalitions: Mapping[str, Coalition] | None = None) -> LetterView:
    return LetterView(
        issuer=state.issuer, record_id=state.record_id, version=state.version,
        title=state.letter.title, text=state.letter.text, deadline=state.letter.deadline,
        open=state.open, campaign=state.letter.campaign, sha256=state.sha256,
        signatories=[SignatoryView(org_id=s.org_id,
                                   organisation=str(s.statement["organisation"]),
                                   signatory_name=s.signatory_name,
                                   signatory_role=s.statement.get("signatory_role"),
                                   signed_at=s.issued_at) for s in state.signatures],
        late=list(state.late),
        coalition=coalition_view(state.coalition_id, coalitions or {}),
        organisations=named([state.issuer, *(s.org_id for s in state.signatures), *state.late],
                            known))


class LetterEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def create(self, call: Call[LetterRequest, NoQuery]) -> LetterView:
        body = call.body
        with campaign_answers():
            state = await create_letter(self._node, body.title, body.text, body.deadline,
                                        body.campaign, actor=call.principal.user,
                                        now=self._now(), coalition_id=body.coalition)
        return letter_view(state, await known_names(self._node),
                           await known_coalitions(self._node))

    async def list_letters(self, call: Call[NoBody, NoQuery]) -> LetterList:
        known, coalitions = await known_names(self._node), await known_coalitions(self._node)
        return LetterList(items=[letter_view(s, known, coalitions)
                                 for s in await all_letters(self._node, self._now())])

    async def one(self, call: Call[NoBody, NoQuery]) -> LetterView:
        with campaign_answers():
            state = await letter_of(self._node, call.path["issuer"], call.path["record_id"],
                                    self._now())
        return letter_view(state, await known_names(self._node),
                           await known_coalitions(self._node))

    async def sign(self, call: Call[SignRequest, NoQuery]) -> LetterView:
        with campaign_answers():
            state = await sign_letter(self._node, call.path["issuer"], call.path["record_id"],
                                      call.body.signatory_name, call.body.signatory_role,
                                      actor=call.principal.user, now=self._now())
        return letter_view(state, await known_names(self._node),
                           await known_coalitions(self._node))

    async def export(self, call: Call[NoBody, ExportQuery]) -> FileAnswer:
        with campaign_answers():
            state = await letter_of(self._node, call.path["issuer"], call.path["record_id"],
                                    self._now())
        entries = await appendix_entries(self._node, state)
        data = export_data(state, entries)
        valid = verify_letter_appendix(data).valid
        chosen = call.query.format
        if chosen == "json":
            content = json.dumps(data, ensure_ascii=False, indent=2)
        else:
            content = (export_html if chosen == "html" else export_text)(state, entries)
        media_type, extension = _LETTER_FILES[chosen]
        return FileAnswer(content.encode(), media_type, f"letter-{state.record_id}.{extension}",
                          headers={APPENDIX_VALID_HEADER: str(valid).lower()})

    def endpoints(self) -> list[Endpoint]:
        one = "/letters/{issuer}/{record_id}"
        tags = ("letters",)
        errors = (404, 409, 503)
        return [
            Endpoint("POST", "/letters", self.create,
                     "Post a sign-on letter to a coalition or a campaign's participants",
                     Role.editor, body=LetterRequest, response=LetterView, status=201,
                     errors=(*errors, 422), tags=tags, links=(
                         Link("GetLetter", "GET", one, RECORD),
                         Link("Sign", "POST", one + "/signatures", RECORD),
                         Link("Export", "GET", one + "/export", RECORD))),
            Endpoint("GET", "/letters", self.list_letters, "Every letter this node knows",
                     response=LetterList, tags=tags),
            Endpoint("GET", one, self.one, "A letter and its signatories",
                     response=LetterView, errors=(404,), tags=tags),
            Endpoint("POST", one + "/signatures", self.sign,
                     "Sign the letter for this organisation (until the deadline)", Role.editor,
                     body=SignRequest, response=LetterView, errors=errors, tags=tags),
            Endpoint("GET", one + "/export", self.export,
                     "The letter with its signatories and verification appendix",
                     query=ExportQuery, files=tuple(t for t, _ in _LETTER_FILES.values()),
                     file_headers=(APPENDIX_VALID_HEADER,), errors=(404,), tags=tags),
        ]
