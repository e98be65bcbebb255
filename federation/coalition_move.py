"""The coalition moving to a new room (M13, decision 0025). Pure code.

A Matrix room of version 12 gives its creator unlimited power for ever: it can never be kicked
or out-powered. When the coalition room's creator account is no longer a trusted member's
account (its organisation was expelled or revoked its keys, or moved to a new account after a
seizure), the coalition moves: one member, named by a rule every node applies alike
(:func:`designated_mover`), makes a new room and posts a **move statement** signed by its
organisation keys: the old room, the new room, the organisation that left, the reason and the
time. Every member node verifies it against its key ring and follows; a statement from anyone
else, or one that does not verify, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.canonical import MAX_SAFE_INTEGER, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.identity import OrgKeys
from federation.keys import KeyNotTrusted
from schemas.errors import describe_validation_error

MOVE_TYPE = "minga.coalition-move/1"
# Why the coalition moved. The first two every node checks against its own roster; the third is
# a statement by the designated member's staff (the creator's node was seized and the members
# know it out of band) that nodes take from that member only.
CREATOR_REVOKED: Final = "creator-revoked"
CREATOR_MOVED: Final = "creator-moved"
CREATOR_SEIZED: Final = "creator-seized"
Reason = Literal["creator-revoked", "creator-moved", "creator-seized"]
_ROOM_ID = r"^![^\s]+$"  # room version 12 ids have no server part


class MoveRefused(ValueError):
    """A move statement that is not to be followed; the message says why (ids only)."""


class _MoveWire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["minga.coalition-move/1"]
    old_room: str = Field(pattern=_ROOM_ID, max_length=255)
    new_room: str = Field(pattern=_ROOM_ID, max_length=255)
    departed: str = Field(min_length=1, max_length=128)
    reason: Reason
    mover: str = Field(min_length=1, max_length=128)
    kid: str = Field(min_length=1, max_length=128)
    at: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    signature: str = Field(min_length=1, max_length=200)


@dataclass(frozen=True)
class MoveStatement:
    old_room: str
    new_room: str
    departed: str
    """The organisation whose account created the old room."""
    reason: str
    mover: str
    at: int
    content: dict[str, Any]


def _message(wire: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in wire.items() if k != "signature"})


def build_move(keys: OrgKeys, old_room: str, new_room: str, departed: str, reason: Reason,
               at: int) -> dict[str, Any]:
    """The move statement, signed with ``keys``' current signing key."""
    if old_room == new_room:
        raise ValueError("new_room: must differ from old_room")
    if departed == keys.org_id:
        raise ValueError("departed: the mover is not the organisation that left")
    unsigned = {"type": MOVE_TYPE, "old_room": old_room, "new_room": new_room,
                "departed": departed, "reason": reason, "mover": keys.org_id,
                "kid": keys.signing_kid, "at": at}
    signed = {**unsigned, "signature": b64u_encode(keys.signing.sign(_message(unsigned)))}
    return read_move(signed).content


def read_move(content: Mapping[str, Any]) -> MoveStatement:
    """The statement's fields, checked for shape only (not its signature)."""
    try:
        wire = _MoveWire.model_validate(dict(content))
    except ValidationError as error:
        raise MoveRefused(f"malformed move statement: {describe_validation_error(error)}") \
            from None
    if wire.old_room == wire.new_room:
        raise MoveRefused("malformed move statement: new_room is old_room")
    dumped = wire.model_dump()
    return MoveStatement(wire.old_room, wire.new_room, wire.departed, wire.reason, wire.mover,
                         wire.at, dumped)


def designated_mover(members: Iterable[str], departed: str) -> str | None:
    """Who moves the coalition when ``departed``'s account made its room: the verified,
    non-revoked member (``members``) with the smallest org id other than ``departed``; the same
    rule as the linkage key's successor (decision 0023), so every node names the same one."""
    others = sorted(set(members) - {departed})
    return others[0] if others else None


class SigningKeys(Protocol):
    """What :func:`verify_move` needs of a key ring (``RefuseRevokedKeys`` over the roster)."""

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> Ed25519PublicKey: ...


def verify_move(content: Mapping[str, Any], keys: SigningKeys, *, members: Iterable[str],
                room_creator_org: str | None, old_room: str,
                reason_now: Reason | None) -> MoveStatement:
    """The statement if a node whose coalition room is ``old_room`` (made by
    ``room_creator_org``'s account; verified non-revoked ``members``; ``reason_now``: what
    :func:`why_move` says of that room now) is to follow it; else :class:`MoveRefused`."""
    move = read_move(content)
    if move.old_room != old_room:
        raise MoveRefused("the statement moves another room than this coalition's")
    if room_creator_org is None or move.departed != room_creator_org:
        raise MoveRefused("the statement names another organisation than the room's creator")
    if move.reason != CREATOR_SEIZED and reason_now is None:
        raise MoveRefused("the room's creator is still a trusted member's account")
    expected = designated_mover(members, room_creator_org)
    if move.mover != expected:
        raise MoveRefused("signed by a member that is not the one designated to move the room")
    try:
        key = keys.signing_key_for(move.mover, move.content["kid"], move.at)
        key.verify(b64u_decode(move.content["signature"]), _message(move.content))
    except KeyNotTrusted as error:
        raise MoveRefused(f"the mover's key is not trusted: {error}") from None
    except (InvalidSignature, EncodingError):
        raise MoveRefused("the signature does not verify") from None
    return move


def creator_org(creator: str, posted_entries: Mapping[str, str]) -> str | None:
    """The organisation whose node account ``creator`` made the room: the org id of the member
    entry that account posted there (``posted_entries``: account -> org id)."""
    return posted_entries.get(creator)


def why_move(creator_org_id: str | None, creator: str, *, revoked: set[str],
             current_accounts: Mapping[str, str]) -> Reason | None:
    """Why the coalition must leave a room ``creator`` made, or None if the creator is still a
    trusted member's current account. ``current_accounts``: verified member org id -> its
    node account now (an organisation revoked or unknown counts as not trusted)."""
    if creator_org_id is None:
        return None
    if creator_org_id in revoked:
        return CREATOR_REVOKED
    current = current_accounts.get(creator_org_id)
    if current is not None and current != creator:
        return CREATOR_MOVED
    return None
