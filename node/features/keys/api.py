"""``/api/v1/keys/...`` and ``/api/v1/node/lock``: the same services as the keys page."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from node.core.api.framework import Call, Endpoint, NoBody, NoQuery
from node.core.lock import lock_node
from node.core.runtime import Node
from node.core.store import Role

TAGS = ("keys",)


class LockAnswer(BaseModel):
    locked: bool
    sessions_ended: int = Field(description="staff sessions ended by the lock")


class KeysEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def lock(self, call: Call[NoBody, NoQuery]) -> LockAnswer:
        ended = await lock_node(self._node, actor=call.principal.user)
        return LockAnswer(locked=True, sessions_ended=ended)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("POST", "/node/lock", self.lock,
                     "Lock the node now: stop serving, end every session, drop the keys from"
                     " memory (a restart needs the passphrase)", role=Role.admin,
                     response=LockAnswer, tags=TAGS),
        ]


def keys_endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return KeysEndpoints(node, now).endpoints()
