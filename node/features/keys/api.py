"""``/api/v1/keys/...`` and ``/api/v1/node/lock``: the same services as the keys page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from federation.expulsion import MAX_REASON, ExpulsionError
from federation.identity import RevocationSummary, read_revocation
from federation.transport import TransportError
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
from node.core.api.times import Time, TimeInput
from node.core.expulsion import (
    PendingExpulsion,
    approve_expulsion,
    pending_expulsions,
    propose_expulsion,
)
from node.core.keys import RevocationRefused, own_rotations, publish_revocation, rotate_own_keys
from node.core.lock import lock_node
from node.core.runtime import CoalitionNotChosen, Node, NodeNotReady
from node.core.store import Role
from schemas.common import CoalitionId, OrgId

TAGS = ("keys",)


class LockAnswer(BaseModel):
    locked: bool
    sessions_ended: int = Field(description="staff sessions ended by the lock")


class RotationItem(BaseModel):
    previous_kid: str
    kid: str
    effective_at: Time


class KeysView(BaseModel):
    org_id: str
    signing_kid: str
    encryption_kid: str
    safety_code: str
    holds_revocation_key: bool = Field(
        description="whether this node still holds the revocation key (it should not)")
    rotations: list[RotationItem] = Field(description="key rotations, oldest first")


class RotationAnswer(BaseModel):
    previous_kid: str
    kid: str
    effective_at: Time
    safety_code: str = Field(description="the new safety code: members compare it again")
    published: bool = Field(description="whether the rotation reached the coalition room")


class PublishRevocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: dict[str, Any] = Field(
        description="the signed minga.key-revocation/1 statement, as `minga keys revoke`"
        " wrote it")


class RevocationItem(BaseModel):
    org_id: str
    revoked_kids: list[str]
    revoked_at: Time = Field(description="from when the keys are refused")
    issued_at: Time
    applied_at: datetime | None = Field(default=None,
                                        description="when this node applied it")
    expulsion: bool = Field(default=False, description="signed by other members (a quorum),"
                            " not by the organisation's own revocation key")
    reason: str | None = Field(default=None, description="why the members expelled it")


class ProposeExpulsion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: OrgId
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)]
    since: TimeInput | None = Field(default=None, description="from when its keys are"
                                    " refused (default: now)")
    coalition: CoalitionId | None = Field(
        default=None, description="the coalition whose members decide; needed only when this"
        " node is in several")


class ApproveExpulsion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="the proposal's key, as GET /expulsions lists it")


class ExpulsionView(BaseModel):
    proposal: str
    org_id: str
    reason: str
    proposer: str
    signers: list[str] = Field(description="members whose approval counts so far")
    threshold: int = Field(description="approvals needed (a coalition setting; default: a"
                           " majority of the other members, at least two)")
    revoked_at: Time


class ExpulsionAnswer(BaseModel):
    proposal: str
    applied: bool = Field(description="the threshold was reached: the member is expelled")
    pending: ExpulsionView | None


class ExpulsionList(BaseModel):
    expulsions: list[ExpulsionView]
    organisations: OrganisationNames = {}


def _expulsion(pending: PendingExpulsion) -> ExpulsionView:
    return ExpulsionView(proposal=pending.key, org_id=pending.target, reason=pending.reason,
                         proposer=pending.proposer, signers=pending.signers,
                         threshold=pending.threshold, revoked_at=pending.revoked_at)


class RevocationList(BaseModel):
    revocations: list[RevocationItem]
    organisations: OrganisationNames = {}


def _item(summary: RevocationSummary, applied_at: datetime | None = None,
          reason: str | None = None) -> RevocationItem:
    return RevocationItem(org_id=summary.org_id, revoked_kids=list(summary.revoked_kids),
                          revoked_at=summary.revoked_at, issued_at=summary.issued_at,
                          applied_at=applied_at, expulsion=reason is not None, reason=reason)


class KeysEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def get_keys(self, call: Call[NoBody, NoQuery]) -> KeysView:
        keys = self._node.keys
        return KeysView(
            org_id=keys.org_id, signing_kid=keys.signing_kid, encryption_kid=keys.encryption_kid,
            safety_code=keys.public().safety_code(),
            holds_revocation_key=keys.revocation is not None,
            rotations=[RotationItem(previous_kid=r.previous_kid, kid=r.kid,
                                    effective_at=r.effective_at)
                       for r in own_rotations(keys)])

    async def rotate(self, call: Call[NoBody, NoQuery]) -> RotationAnswer:
        try:
            done = await rotate_own_keys(self._node, self._now, actor=call.principal.user)
        except TransportError as error:
            raise ApiError(503, "homeserver_unavailable",
                           f"the keys were rotated but not yet announced: {error}") from None
        return RotationAnswer(previous_kid=done.previous_kid, kid=done.kid,
                              effective_at=done.effective_at, safety_code=done.safety_code,
                              published=done.published)

    async def publish(self, call: Call[PublishRevocation, NoQuery]) -> RevocationItem:
        try:
            summary = await publish_revocation(self._node, call.body.statement,
                                               actor=call.principal.user)
        except RevocationRefused as error:
            raise invalid([FieldProblem(field="statement", problem=str(error))],
                          "the revocation does not verify or apply") from None
        except NodeNotReady as error:
            raise ApiError(409, "no_coalition", str(error)) from None
        except TransportError as error:
            raise ApiError(503, "homeserver_unavailable", str(error)) from None
        return _item(summary)

    async def revocations(self, call: Call[NoBody, NoQuery]) -> RevocationList:
        async with self._node.store.read() as tx:
            applied = await tx.orgs.revocations()
        items = [_item(read_revocation(r.statement), r.applied_at, r.reason) for r in applied]
        return RevocationList(revocations=items, organisations=named(
            (item.org_id for item in items), await known_names(self._node)))

    async def propose(self, call: Call[ProposeExpulsion, NoQuery]) -> ExpulsionAnswer:
        body = call.body
        now = self._now()
        try:
            pending = await propose_expulsion(
                self._node, body.org_id, body.reason, now if body.since is None else body.since,
                now, actor=call.principal.user, coalition_id=body.coalition)
        except ExpulsionError as error:
            raise _expulsion_problem(error) from None
        except CoalitionNotChosen as error:
            if not await self._node.coalitions():
                raise ApiError(409, "no_coalition", str(error)) from None
            raise invalid([FieldProblem(field="body.coalition", problem=str(error))],
                          str(error)) from None
        except NodeNotReady as error:
            raise ApiError(409, "no_coalition", str(error)) from None
        except TransportError as error:
            raise ApiError(503, "homeserver_unavailable", str(error)) from None
        return ExpulsionAnswer(proposal=pending.key if pending else "", applied=pending is None,
                               pending=_expulsion(pending) if pending else None)

    async def approve(self, call: Call[ApproveExpulsion, NoQuery]) -> ExpulsionAnswer:
        try:
            pending = await approve_expulsion(self._node, call.body.proposal,
                                              actor=call.principal.user)
        except ExpulsionError as error:
            raise _expulsion_problem(error) from None
        except NodeNotReady as error:
            raise ApiError(409, "no_coalition", str(error)) from None
        except TransportError as error:
            raise ApiError(503, "homeserver_unavailable", str(error)) from None
        return ExpulsionAnswer(proposal=call.body.proposal, applied=pending is None,
                               pending=_expulsion(pending) if pending else None)

    async def expulsions(self, call: Call[NoBody, NoQuery]) -> ExpulsionList:
        pending = [_expulsion(p) for p in await pending_expulsions(self._node)]
        return ExpulsionList(expulsions=pending, organisations=named(
            {p.org_id for p in pending} | {p.proposer for p in pending},
            await known_names(self._node)))

    async def lock(self, call: Call[NoBody, NoQuery]) -> LockAnswer:
        ended = await lock_node(self._node, actor=call.principal.user)
        return LockAnswer(locked=True, sessions_ended=ended)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/keys", self.get_keys,
                     "This organisation's key ids, safety code, rotations, and whether the node"
                     " still holds the revocation key", role=Role.admin, response=KeysView,
                     tags=TAGS),
            Endpoint("POST", "/keys/rotate", self.rotate,
                     "Rotate the signing and encryption keys and announce the rotation in the"
                     " roster", role=Role.admin, response=RotationAnswer, errors=(503,),
                     tags=TAGS),
            Endpoint("POST", "/revocations", self.publish,
                     "Publish a member's signed key revocation (after a seizure) for the"
                     " coalition; every node then refuses what the revoked keys sign",
                     role=Role.admin, body=PublishRevocation, response=RevocationItem,
                     status=201, errors=(409, 422, 503), tags=TAGS),
            Endpoint("GET", "/revocations", self.revocations,
                     "The key revocations this node applied", response=RevocationList,
                     tags=TAGS),
            Endpoint("POST", "/expulsions", self.propose,
                     "Propose to expel a member (its keys revoked by a quorum of the others),"
                     " with a reason; this node's signature is the first approval",
                     role=Role.admin, body=ProposeExpulsion, response=ExpulsionAnswer,
                     status=201, errors=(409, 422, 503), tags=TAGS),
            Endpoint("POST", "/expulsions/approve", self.approve,
                     "Approve a pending expulsion; at the threshold every node applies it",
                     role=Role.admin, body=ApproveExpulsion, response=ExpulsionAnswer,
                     errors=(409, 422, 503), tags=TAGS),
            Endpoint("GET", "/expulsions", self.expulsions,
                     "Expulsion proposals waiting for approvals", response=ExpulsionList,
                     tags=TAGS),
            Endpoint("POST", "/node/lock", self.lock,
                     "Lock the node now: stop serving, end every session, drop the keys from"
                     " memory (a restart needs the passphrase)", role=Role.admin,
                     response=LockAnswer, tags=TAGS),
        ]


def _expulsion_problem(error: ExpulsionError) -> ApiError:
    field, _, problem = str(error).partition(": ")
    if not problem:
        field, problem = "(body)", str(error)
    return invalid([FieldProblem(field=field, problem=problem)],
                   "the expulsion cannot be proposed or approved")


def keys_endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return KeysEndpoints(node, now).endpoints()
