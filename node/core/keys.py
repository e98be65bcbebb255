"""This organisation's own keys on its node (docs/architecture.md §3).

- **The offline revocation key.** It signs only one thing: the organisation's revocation of its
  own keys after a seizure. A node that holds it hands it to whoever seizes the node, so
  ``minga init`` writes it to a passphrase-protected file (and prints it as a paper form,
  :mod:`federation.paper`) and keeps only its public half; ``minga keys export-revocation`` does
  the same for a node made before. The file is the paper form itself: it can be printed, copied
  to a USB stick, or typed back.
- **Rotation** (:func:`rotate_own_keys`): new signing and encryption keys, announced in the
  node's roster entry.
- **Saving changed keys**: the organisation keys are locked with a subkey of the data key and
  stored together with an audit entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.identity import (
    IdentityError,
    OrgKeys,
    RevocationKey,
    RevocationSummary,
    export_revocation_key,
    import_revocation_key,
    read_revocation,
    revocation_request,
    rotate_keys,
    sign_revocation,
    verify_rotation,
)
from federation.keys import KeyNotTrusted
from federation.paper import PaperFormError, from_paper, to_paper
from federation.secretbox import DEFAULT_PARAMS, Argon2Params, MalformedBox, WrongPassphrase
from node.core.coalition import REVOCATION_EVENT_TYPE, publish_own_entry, refresh_roster
from node.core.runtime import Node, NodeNotReady, lock_org_keys
from node.core.sync_host import roster_trust

REVOCATION_PASSPHRASE_ENV = "MINGA_REVOCATION_PASSPHRASE"


class RevocationKeyFileError(ValueError):
    """A revocation key file cannot be read or opened; the message says why."""


def revocation_key_form(
    keys: OrgKeys | RevocationKey, passphrase: str, *, params: Argon2Params = DEFAULT_PARAMS
) -> str:
    """The revocation key locked with ``passphrase``, as a paper form (the file's content)."""
    if not passphrase:
        raise NodeNotReady("the revocation key's passphrase is empty")
    box = export_revocation_key(keys, passphrase, params=params)
    return to_paper(box, [
        f"Revocation key of Minga organisation {keys.org_id}.",
        "Keep it offline (printed, or on a USB stick kept apart), never on the node.",
        "With its passphrase it revokes this organisation's keys after a seizure:",
        "  minga keys revoke --revocation-key FILE --since TIME",
        "To type it back, copy every numbered line and the SUM line into a text file.",
    ])


def read_revocation_key(text: str, passphrase: str) -> RevocationKey:
    """The key on a form made by :func:`revocation_key_form` (as printed or typed back)."""
    try:
        box = from_paper(text)
    except PaperFormError as error:
        raise RevocationKeyFileError(f"revocation key form: {error}") from None
    try:
        return import_revocation_key(box, passphrase)
    except WrongPassphrase:
        raise RevocationKeyFileError(
            "revocation key: wrong passphrase, or the form was altered") from None
    except (MalformedBox, IdentityError) as error:
        raise RevocationKeyFileError(f"revocation key: {error}") from None


def check_outside(path: Path, data_dir: Path) -> None:
    """Refuse to write the revocation key into the node's data directory (where it would be
    seized with the node, and copied into every backup) or over an existing file."""
    resolved, data = path.resolve(), data_dir.resolve()
    if resolved == data or data in resolved.parents:
        raise NodeNotReady(f"{path}: the revocation key must not be written inside the node's"
                           " data directory; choose a place outside it (a USB stick)")
    if path.exists():
        raise NodeNotReady(f"{path} already exists; choose a new file name")


def write_revocation_form(path: Path, form: str) -> None:
    """Write the form with owner-only permissions (it is locked, but still a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="ascii") as handle:
        path.chmod(0o600)
        handle.write(form)


async def save_own_keys(
    node: Node, keys: OrgKeys, *, actor: str, action: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Store ``keys`` as this organisation's keys (audited), and use them from now on."""
    if node.data_key is None:
        raise NodeNotReady("the node is locked; restart it with its passphrase")
    async with node.store.transaction() as tx:
        own = await tx.orgs.save_own(
            keys.org_id, node.own.name, node.own.country, lock_org_keys(keys, node.data_key),
            keys.public().model_dump(mode="json"),
        )
        await tx.audit.append(actor, action, target=keys.org_id, details=dict(details or {}))
    node.keys = keys
    node.own = own


async def export_revocation(node: Node, out: Path, passphrase: str, *, actor: str) -> None:
    """Write the node's revocation key to ``out`` (outside the data directory), then remove it
    from the node. Refused if the node no longer holds it."""
    if node.keys.revocation is None:
        raise NodeNotReady("this node no longer holds its revocation key (it was exported)")
    check_outside(out, node.config.node.data_dir)
    write_revocation_form(out, revocation_key_form(node.keys, passphrase))
    await save_own_keys(node, node.keys.without_revocation_key(), actor=actor,
                        action="keys.export-revocation")


# --- rotation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationDone:
    previous_kid: str
    kid: str
    effective_at: int
    safety_code: str
    published: bool
    """Whether the new roster entry reached the coalition room (False: not in one yet)."""


async def rotate_own_keys(node: Node, now: Callable[[], int], *, actor: str,
                          publish: bool = True) -> RotationDone:
    """New signing and encryption keys from the next second on; the rotation, signed by the old
    and the new signing key, is published in this node's roster entry.

    Records and envelopes signed before keep verifying (the old key stays valid for earlier
    issue times), envelopes sealed to the old encryption key still open (it is kept for
    opening), and from the rotation on this node signs with the new key only. The switch waits
    for the effective second, so nothing is signed with the old key at or after it.
    ``publish=False`` (a restored node whose new account is in no room yet) leaves announcing
    to ``minga coalition join``.
    """
    if node.locked:
        raise NodeNotReady("the node is locked; restart it with its passphrase")
    previous_kid = node.keys.signing_kid
    effective_at = now() + 1
    rotated, _ = rotate_keys(node.keys, effective_at)
    while now() < effective_at:
        await asyncio.sleep(0.05)
    await save_own_keys(node, rotated, actor=actor, action="keys.rotate", details={
        "previous_kid": previous_kid, "kid": rotated.signing_kid, "effective_at": effective_at})
    rooms = [c.room_id for c in await node.coalitions()] if publish else []
    if rooms:  # one identity in every coalition (decision 0032)
        async with node.transport() as transport:
            for room_id in rooms:
                await publish_own_entry(node, transport, room_id)
                await refresh_roster(node, transport, room_id)
    return RotationDone(previous_kid, rotated.signing_kid, effective_at,
                        rotated.public().safety_code(), bool(rooms))


@dataclass(frozen=True)
class RotationView:
    previous_kid: str
    kid: str
    effective_at: int


def own_rotations(keys: OrgKeys) -> list[RotationView]:
    """The rotations of this organisation's keys, oldest first."""
    return [RotationView(r.previous_kid, r.kid, r.effective_at)
            for r in (verify_rotation(statement) for statement in keys.rotations)]


# --- revocation after a seizure ---------------------------------------------------------------

# A revocation may name a time a little ahead of the clock that signs it (clocks differ), never
# a time much later: it says since when keys were in other hands.
_SINCE_AHEAD = 300


class RevocationRefused(ValueError):
    """A revocation statement that does not verify or apply; the message says why."""


def make_revocation(key: RevocationKey, since: int, now: int,
                    kids: Sequence[str] = ()) -> dict[str, Any]:
    """The organisation's signed revocation of its keys from ``since`` on.

    By default it names the first signing key, which revokes it and every key rotated from it
    (:class:`federation.identity.KeyRing`); ``kids`` names others."""
    if since > now + _SINCE_AHEAD:
        raise RevocationRefused("--since: must not be in the future (it is when the keys"
                                " left your hands)")
    named = list(kids) or ([key.first_signing_kid] if key.first_signing_kid else [])
    if not named:
        raise RevocationRefused(
            "--kid: this revocation key file predates the first key id being written in it;"
            " give the key ids to revoke (the members page of any member shows them)")
    try:
        return sign_revocation(revocation_request(key.org_id, named, since, now), key)
    except (ValueError, IdentityError) as error:
        raise RevocationRefused(str(error)) from None


async def publish_revocation(node: Node, statement: Mapping[str, Any], *,
                             actor: str) -> RevocationSummary:
    """Publish a member's revocation (its own, or one made for it) in the coalition room, once
    this node has checked that it verifies against the roster; then apply it here."""
    try:
        summary = read_revocation(statement)
        (await roster_trust(node)).keyring.apply_revocation(statement)
    except (IdentityError, KeyNotTrusted) as error:
        raise RevocationRefused(str(error)) from None
    coalitions = await node.coalitions()
    if not coalitions:
        raise NodeNotReady("this node is in no coalition yet: `minga coalition create|join`")
    async with node.store.read() as tx:
        memberships = await tx.coalitions.memberships()
    # In every coalition of this node the revoked organisation is in (one set of keys).
    rooms = [c.room_id for c in coalitions
             if summary.org_id in memberships.get(c.coalition_id, ())] or [coalitions[0].room_id]
    state_key = f"{summary.org_id}/{summary.statement_hash[:16]}"
    async with node.transport() as transport:
        for room_id in rooms:
            await transport.put_state(room_id, REVOCATION_EVENT_TYPE, state_key,
                                      dict(statement))
        async with node.store.transaction() as tx:
            await tx.audit.append(actor, "keys.revocation-published", target=summary.org_id,
                                  details={"revoked_at": summary.revoked_at})
        for room_id in rooms:
            await refresh_roster(node, transport, room_id)
    return summary


def signed_after_revocation(claims: Mapping[str, Any] | None, revoked_at: int | None) -> bool:
    """Whether a record received earlier says it was signed at or after its issuer's keys were
    revoked: it may come from whoever seized them, and is flagged (never silently kept)."""
    issued_at = claims.get("iat") if claims else None
    return (revoked_at is not None and isinstance(issued_at, int)
            and not isinstance(issued_at, bool) and issued_at >= revoked_at)
