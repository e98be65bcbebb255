"""``/api/v1/status`` and ``/api/v1/members``: what the node is and whom it knows.

Nothing here is case content. Outbox and inbox counters join the status when sync exists (M4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from node.core.api.framework import ApiError, Call, Endpoint, NoBody, NoQuery
from node.core.api.times import OptionalTime, Time
from node.core.coalition import SafetyCodeChange, safety_code_changes, safety_code_compared
from node.core.runtime import Node
from node.core.status import node_status
from node.core.store import Member, Role

TAGS = ("node",)


class RejectedRosterEntry(BaseModel):
    state_key: str
    sender: str
    reason: str


class SyncCounters(BaseModel):
    outbox_queued: int = Field(description="records queued, not yet sealed into an event")
    outbox_unsent_frames: int = Field(description="sealed events the homeserver has not taken")
    outbox_sent_frames: int
    outbox_pending_resends: int = Field(description="re-posts other members asked for")
    outbox_error: str | None = Field(description="why the oldest unsent event is waiting")
    quarantined: int = Field(description="received events that failed a check")
    quarantine_by_reason: dict[str, int]
    held_rooms: list[str] = Field(
        default_factory=list,
        description="rooms a node restored elsewhere waits to be let back into with its new"
                    " account (rooms its old account made are replaced instead, and then no"
                    " longer listed); nothing is sent there until then")


class CoalitionView(BaseModel):
    coalition_id: str = Field(description="the id the coalition's members all name it by")
    room_id: str
    name: str | None
    joined_at: Time
    left_at: OptionalTime = Field(
        default=None, description="when this node left the coalition; null while a member")
    member_count: int = Field(description="its verified members, this node included")


class NodeStatus(BaseModel):
    org_id: str
    org_name: str
    country: str
    safety_code: str = Field(description="compare it with the other members out of band")
    holds_revocation_key: bool = Field(
        description="whether this node still holds the organisation's revocation key (it"
                    " should not: `minga keys export-revocation` moves it offline)")
    homeserver: str
    matrix_user_id: str
    coalition_room_id: str | None = Field(
        description="the room of this node's first coalition (see coalitions)")
    coalition_name: str | None = Field(description="the name of this node's first coalition")
    coalition_moved_from: str | None = Field(
        default=None, description="no longer known (always null): the coalitions' ids stay"
        " the same when their rooms move (decision 0032)")
    coalitions: list[CoalitionView] = Field(
        default_factory=list, description="every coalition this node is or was in, oldest"
        " first (decision 0032)")
    member_count: int
    case_count: int
    received_record_count: int
    rejected_roster_entries: list[RejectedRosterEntry] = Field(
        description="roster entries this node ignored, with the reason"
    )
    sync: SyncCounters


class MemberView(BaseModel):
    org_id: str
    name: str | None
    country: str | None
    capabilities: list[str]
    safety_code: str
    verified: bool = Field(description="the entry's signature and keys checked out")
    matrix_user_id: str | None
    updated_at: datetime
    safety_code_changed_at: OptionalTime = Field(
        default=None, description="when the safety code changed (a key rotation) and nobody"
        " has compared it again yet; null when there is nothing to compare")
    previous_safety_code: str | None = Field(
        default=None, description="the code before that change")
    revoked_at: OptionalTime = Field(
        default=None, description="from when this member's keys are revoked (its node was"
        " seized): nothing they sign from then on is accepted, nothing is sent to them")


class MemberList(BaseModel):
    members: list[MemberView]


class SafetyCodeCompared(BaseModel):
    org_id: str
    safety_code: str


def member_view(member: Member, change: SafetyCodeChange | None = None) -> MemberView:
    profile: Any = member.entry.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    capabilities = profile.get("capabilities")
    return MemberView(
        org_id=member.org_id,
        name=_text_or_none(profile.get("name")),
        country=_text_or_none(profile.get("country")),
        capabilities=[c for c in capabilities if isinstance(c, str)]
        if isinstance(capabilities, list) else [],
        safety_code=member.safety_code,
        verified=member.verified,
        matrix_user_id=member.matrix_user_id,
        updated_at=member.updated_at,
        safety_code_changed_at=change.at if change else None,
        previous_safety_code=change.previous if change else None,
        revoked_at=member.revoked_at,
    )


def _unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class NodeEndpoints:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def get_status(self, call: Call[NoBody, NoQuery]) -> NodeStatus:
        status = await node_status(self._node)
        coalition = status["coalition"] if isinstance(status["coalition"], dict) else {}
        return NodeStatus(
            org_id=status["org_id"],
            org_name=status["name"],
            country=status["country"],
            safety_code=status["safety_code"],
            holds_revocation_key=status["holds_revocation_key"],
            homeserver=status["homeserver"],
            matrix_user_id=status["matrix_user_id"],
            coalition_room_id=coalition.get("room_id"),
            coalition_name=coalition.get("name"),
            coalitions=[CoalitionView(
                coalition_id=c["coalition_id"], room_id=c["room_id"], name=c["name"],
                joined_at=_unix(c["joined_at"]), left_at=_unix(c["left_at"]) if c["left_at"]
                else None, member_count=c["members"])
                for c in status["coalitions"]],
            member_count=len(status["members"]),
            case_count=status["cases"],
            received_record_count=status["received_records"],
            rejected_roster_entries=status["rejected_roster_entries"],
            sync=SyncCounters(**status["sync"]),
        )

    async def list_members(self, call: Call[NoBody, NoQuery]) -> MemberList:
        async with self._node.store.read() as tx:
            members = await tx.orgs.members()
        changes = await safety_code_changes(self._node)
        return MemberList(members=[member_view(member, changes.get(member.org_id))
                                   for member in members])

    async def safety_code_compared(self, call: Call[NoBody, NoQuery]) -> SafetyCodeCompared:
        org_id = call.path["org_id"]
        if not await safety_code_compared(self._node, org_id, actor=call.principal.user):
            raise ApiError(404, "not_found", "no changed safety code of this member is waiting"
                           " to be compared")
        async with self._node.store.read() as tx:
            member = await tx.orgs.member(org_id)
        return SafetyCodeCompared(org_id=org_id, safety_code=member.safety_code)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/status", self.get_status, "This node: organisation, safety code,"
                     " homeserver, coalition and counters", response=NodeStatus, tags=TAGS),
            Endpoint("GET", "/members", self.list_members,
                     "The coalition roster as this node knows it", response=MemberList,
                     tags=TAGS),
            Endpoint("POST", "/members/{org_id}/safety-code-compared", self.safety_code_compared,
                     "Say that people compared a member's changed safety code out of band",
                     role=Role.editor, response=SafetyCodeCompared, errors=(404,), tags=TAGS),
        ]
