"""``/api/v1/coalitions``: the coalitions this node is in and was in, and creating, joining,
inviting into and leaving one (decision 0032); the same actions as the coalitions page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from node.core.api.framework import ApiError, Call, Endpoint, Link, NoBody, NoQuery
from node.core.api.organisations import OrganisationNames, named
from node.core.registry import Registry
from node.core.runtime import Node
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.features.coalitions import actions
from node.features.coalitions.actions import CoalitionRefused, Refusal
from node.features.coalitions.rules import (
    MAX_NAME,
    clean_name,
    matrix_user_ok,
    name_ok,
    room_id_ok,
)

TAGS: Final = ("coalitions",)
MAX_JOIN_WAIT: Final = 60.0
JOIN_WAIT: Final = 20.0


def _name(value: str) -> str:
    if not name_ok(value):
        raise ValueError(f"give the coalition a name of 1 to {MAX_NAME} characters")
    return clean_name(value)


def _matrix_user(value: str) -> str:
    if not matrix_user_ok(value):
        raise ValueError("not a Matrix user id like @node:server")
    return value


def _room(value: str) -> str:
    if not room_id_ok(value):
        raise ValueError("not a Matrix room id like !abc:server")
    return value


class CreateCoalition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, AfterValidator(_name)] = Field(
        description="the coalition's name, as its members see it")


class JoinCoalition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: Annotated[StrictStr, AfterValidator(_room)] = Field(
        description="the coalition room this node's account was invited to")
    wait_seconds: float = Field(default=JOIN_WAIT, ge=0, le=MAX_JOIN_WAIT,
                                description="how long to wait for the invite to arrive")


class InviteMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matrix_user_id: Annotated[StrictStr, AfterValidator(_matrix_user)] = Field(
        description="the Matrix account of the other organisation's node (@node:server)")


class CoalitionItem(BaseModel):
    coalition_id: str = Field(description="the id of the room it was made in")
    name: str | None
    room_id: str = Field(description="the room it is in now; invited nodes join it")
    joined_at: datetime = Field(description="when this node created or joined it")
    left_at: datetime | None = Field(description="when this node left it")
    active: bool = Field(description="this node is in it (it did not leave)")
    members: list[str] = Field(
        description="org ids of its verified members, this organisation included")


class CoalitionList(BaseModel):
    coalitions: list[CoalitionItem] = Field(
        description="the coalitions this node is in, then those it left")
    organisations: OrganisationNames = {}


class Invited(BaseModel):
    coalition_id: str
    matrix_user_id: str
    room_id: str = Field(description="the room the invited node joins (POST /coalitions/join)")


def _item(coalition: Coalition, members: list[str]) -> CoalitionItem:
    return CoalitionItem(coalition_id=coalition.coalition_id, name=coalition.name,
                         room_id=coalition.room_id, joined_at=coalition.joined_at,
                         left_at=coalition.left_at, active=coalition.active, members=members)


def _error(refused: CoalitionRefused) -> ApiError:
    if refused.refusal is Refusal.UNKNOWN:
        return ApiError(404, "unknown_coalition", refused.detail)
    if refused.refusal is Refusal.NOT_INVITED:
        return ApiError(409, "not_invited", "this node's account was not invited to the room"
                        f" (or it is no coalition room): {refused.detail}")
    if refused.refusal is Refusal.REFUSED:
        return ApiError(409, "homeserver_refused", refused.detail)
    return ApiError(503, "homeserver_unavailable", refused.detail)


class CoalitionEndpoints:
    def __init__(self, node: Node, registry: Registry) -> None:
        self._node = node
        self._registry = registry

    async def _one(self, coalition_id: str) -> CoalitionItem:
        views, _ = await actions.overview(self._node)
        view = next(v for v in views if v.coalition.coalition_id == coalition_id)
        return _item(view.coalition, view.members)

    async def list_coalitions(self, call: Call[NoBody, NoQuery]) -> CoalitionList:
        views, names = await actions.overview(self._node)
        return CoalitionList(
            coalitions=[_item(view.coalition, view.members) for view in views],
            organisations=named((org for view in views for org in view.members), names))

    async def create(self, call: Call[CreateCoalition, NoQuery]) -> CoalitionItem:
        try:
            coalition = await actions.create(self._node, self._registry, call.body.name)
        except CoalitionRefused as refused:
            raise _error(refused) from None
        return await self._one(coalition.coalition_id)

    async def join(self, call: Call[JoinCoalition, NoQuery]) -> CoalitionItem:
        try:
            coalition = await actions.join(self._node, call.body.room_id,
                                           wait_seconds=call.body.wait_seconds)
        except CoalitionRefused as refused:
            raise _error(refused) from None
        return await self._one(coalition.coalition_id)

    async def invite(self, call: Call[InviteMember, NoQuery]) -> Invited:
        coalition_id = call.path["coalition_id"]
        try:
            await actions.invite(self._node, coalition_id, call.body.matrix_user_id)
            coalition = await self._node.coalition(coalition_id)
        except CoalitionRefused as refused:
            raise _error(refused) from None
        return Invited(coalition_id=coalition_id, matrix_user_id=call.body.matrix_user_id,
                       room_id=coalition.room_id)

    async def leave(self, call: Call[NoBody, NoQuery]) -> CoalitionItem:
        try:
            coalition = await actions.leave(self._node, self._registry,
                                            call.path["coalition_id"])
        except CoalitionRefused as refused:
            raise _error(refused) from None
        return await self._one(coalition.coalition_id)

    def endpoints(self) -> list[Endpoint]:
        one = "/coalitions/{coalition_id}"
        made = {"coalition_id": "coalition_id"}
        return [
            Endpoint("GET", "/coalitions", self.list_coalitions,
                     "The coalitions this node is in and those it left, each with its verified"
                     " members", response=CoalitionList, tags=TAGS),
            Endpoint("POST", "/coalitions", self.create,
                     "Create a coalition: its room, with this organisation as first member",
                     role=Role.admin, body=CreateCoalition, response=CoalitionItem, status=201,
                     errors=(409, 422, 503), tags=TAGS,
                     links=(Link("Invite", "POST", one + "/invite", made),
                            Link("Leave", "POST", one + "/leave", made))),
            Endpoint("POST", "/coalitions/join", self.join,
                     "Join a coalition whose room this node's account was invited to (waits"
                     " for the invite up to wait_seconds)", role=Role.admin,
                     body=JoinCoalition, response=CoalitionItem, errors=(409, 422, 503),
                     tags=TAGS),
            Endpoint("POST", one + "/invite", self.invite,
                     "Invite another organisation's node account into a coalition; it then"
                     " joins the room", role=Role.admin, body=InviteMember, response=Invited,
                     errors=(404, 409, 422, 503), tags=TAGS),
            Endpoint("POST", one + "/leave", self.leave,
                     "Leave a coalition: its rooms are left and nothing more is sent or taken"
                     " in through it; what was received through it is kept", role=Role.admin,
                     response=CoalitionItem, errors=(404, 409, 503), tags=TAGS),
        ]
