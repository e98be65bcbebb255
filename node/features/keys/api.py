"""``/api/v1/keys/...`` and ``/api/v1/node/lock``: the same services as the keys page."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from federation.transport import TransportError
from node.core.api.framework import ApiError, Call, Endpoint, NoBody, NoQuery
from node.core.api.times import Time
from node.core.keys import own_rotations, rotate_own_keys
from node.core.lock import lock_node
from node.core.runtime import Node
from node.core.store import Role

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
            Endpoint("POST", "/node/lock", self.lock,
                     "Lock the node now: stop serving, end every session, drop the keys from"
                     " memory (a restart needs the passphrase)", role=Role.admin,
                     response=LockAnswer, tags=TAGS),
        ]


def keys_endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return KeysEndpoints(node, now).endpoints()
