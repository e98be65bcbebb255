"""The coalition roster: who the members are and which keys they use (docs/architecture.md §3).
Pure code.

The coalition room holds one ``org.minga.member`` state event per member, state key = org id.
Its content is a self-signed member entry (``federation.identity.sign_member_entry``) whose
profile is the member's :class:`schemas.payloads.OrgProfile` plus ``node_user_id``: the Matrix
account of its node. An entry is accepted only if

- it verifies on its own (signature, key-rotation chain, org id = first key's fingerprint);
- its state key is its org id, so nobody can file an entry under another org's id;
- it was posted by the node account it names, so a member cannot speak for another's node;
- its profile is a valid member profile;
- it agrees with what the key ring already knows of that org (no key history rewritten,
  no revoked key reused).

Anything else is rejected with a reason and never enters the key ring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from federation.identity import IdentityError, KeyRing, OrgKeys, OrgPublicKeys, sign_member_entry
from schemas.errors import validation_problems
from schemas.payloads import OrgProfile

MEMBER_EVENT_TYPE = "org.minga.member"
NODE_USER_FIELD = "node_user_id"


@dataclass(frozen=True)
class MemberStateEvent:
    """An ``org.minga.member`` state event as the homeserver delivered it."""

    state_key: str
    sender: str
    content: Mapping[str, Any]


@dataclass(frozen=True)
class Member:
    org_id: str
    node_user_id: str
    profile: OrgProfile
    keys: OrgPublicKeys

    @property
    def safety_code(self) -> str:
        return self.keys.safety_code()


@dataclass(frozen=True)
class RejectedEntry:
    state_key: str
    sender: str
    reason: str


@dataclass
class Roster:
    """Verified members, rejected entries, and the key ring the members' keys live in."""

    keyring: KeyRing = field(default_factory=KeyRing)
    members: dict[str, Member] = field(default_factory=dict)
    rejected: list[RejectedEntry] = field(default_factory=list)

    def consider(self, event: MemberStateEvent) -> Member | RejectedEntry:
        """Accept or reject one member entry; the verdict is also recorded in the roster."""
        verdict = self._judge(event)
        if isinstance(verdict, Member):
            self.members[verdict.org_id] = verdict
            self.rejected = [r for r in self.rejected if r.state_key != event.state_key]
        else:
            self.rejected.append(verdict)
        return verdict

    def consider_all(self, events: Iterable[MemberStateEvent]) -> None:
        for event in events:
            self.consider(event)

    def _judge(self, event: MemberStateEvent) -> Member | RejectedEntry:
        def reject(reason: str) -> RejectedEntry:
            return RejectedEntry(event.state_key, event.sender, reason)

        content = event.content
        if content.get("org_id") != event.state_key:
            return reject("state key is not the entry's org id")
        profile_data = content.get("profile")
        if not isinstance(profile_data, Mapping):
            return reject("entry has no profile")
        node_user = profile_data.get(NODE_USER_FIELD)
        if node_user != event.sender:
            return reject("entry was not posted by the node account it names")
        try:
            profile = OrgProfile.model_validate(
                {k: v for k, v in profile_data.items() if k != NODE_USER_FIELD}
            )
        except ValidationError as error:
            fields = ", ".join(problem.path for problem in validation_problems(error))
            return reject(f"profile is invalid ({fields})")
        try:
            keys = self.keyring.add_member_entry(content)
        except IdentityError as error:
            return reject(str(error))
        return Member(event.state_key, event.sender, profile, keys)


def member_entry(keys: OrgKeys, profile: OrgProfile, node_user_id: str) -> dict[str, Any]:
    """The signed ``org.minga.member`` content this organisation publishes about itself."""
    data = profile.model_dump(mode="json", exclude_none=True)
    data[NODE_USER_FIELD] = node_user_id
    return sign_member_entry(keys, data)
