"""Expelling a member by quorum (docs/architecture.md §3; M13). Pure code.

A member that cannot or will not revoke its own keys (infiltrated, or seized with its offline
key) is revoked by the others: a ``minga.key-revocation/1`` statement co-signed by enough other
members (:func:`federation.identity.cosign_revocation`; the key ring checks the signatures).
It is gathered in the coalition room from two kinds of state event:

- a **proposal** (``minga.expulsion/1``): the revocation request, signed by the proposer, and a
  reason for people;
- **approvals** (``minga.expulsion-approval/1``), one per approving member: its signature over
  the same request, named by the request's hash.

Only a signature whose signer is the member whose node posted the event counts, so nobody
approves in another's name; the target's own signature never counts. The **threshold** is a
coalition setting; by default a majority of the other members, at least two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.canonical import canonical_json
from federation.identity import (
    IdentityError,
    OrgKeys,
    cosign_revocation,
    read_revocation,
    revocation_request,
)

PROPOSAL_TYPE = "minga.expulsion/1"
APPROVAL_TYPE = "minga.expulsion-approval/1"
MAX_REASON = 500


class ExpulsionError(ValueError):
    """A proposal or approval that cannot be made or read; the message says why."""


def default_threshold(other_members: int) -> int:
    """A majority of the members other than the one to expel, and at least two."""
    return max(2, other_members // 2 + 1)


def request_hash(statement: Mapping[str, Any]) -> str:
    """What proposals and approvals agree on: the revocation without its signatures."""
    unsigned = {**statement, "signatures": []}
    return hashlib.sha256(canonical_json(unsigned)).hexdigest()


def propose(target: str, first_kid: str, since: int, now: int, proposer: OrgKeys,
            reason: str) -> dict[str, Any]:
    """A proposal to revoke every key of ``target`` from ``since``, signed by ``proposer``."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ExpulsionError(f"reason: give one, of at most {MAX_REASON} characters")
    if target == proposer.org_id:
        raise ExpulsionError("an organisation cannot propose to expel itself")
    try:
        request = revocation_request(target, [first_kid], since, now)
        statement = cosign_revocation(request, proposer)
    except (ValueError, IdentityError) as error:
        raise ExpulsionError(str(error)) from None
    return {"type": PROPOSAL_TYPE, "statement": statement, "reason": reason}


def approve(proposal: Mapping[str, Any], approver: OrgKeys) -> dict[str, Any]:
    """``approver``'s approval of a proposal: its signature over the same request."""
    statement = proposal.get("statement")
    if not isinstance(statement, Mapping):
        raise ExpulsionError("not an expulsion proposal")
    try:
        signed = cosign_revocation({**statement, "signatures": []}, approver)
    except (ValueError, IdentityError) as error:
        raise ExpulsionError(str(error)) from None
    return {"type": APPROVAL_TYPE, "request_hash": request_hash(statement),
            "signature": signed["signatures"][-1]}


@dataclass
class Gathered:
    """One proposal with the signatures that count so far, by signer org id."""

    target: str
    request_hash: str
    statement: dict[str, Any] = field(repr=False)
    reason: str = field(repr=False)
    proposer: str
    signatures: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def signers(self) -> list[str]:
        return sorted(self.signatures)

    def signed(self) -> dict[str, Any]:
        """The revocation with every counted signature, ready for the key ring."""
        return {**self.statement,
                "signatures": [self.signatures[signer] for signer in self.signers]}


def _signature_of(content: Any, signer: str) -> dict[str, Any] | None:
    if isinstance(content, Mapping) and content.get("signer") == signer:
        return dict(content)
    return None


def gather(proposals: Iterable[tuple[str, Mapping[str, Any]]],
           approvals: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Gathered]:
    """Proposals (sender org id, content) with the approvals (sender org id, content) that
    match them. Malformed events and signatures in another's name are left out."""
    found: dict[str, Gathered] = {}
    for sender, content in proposals:
        statement = content.get("statement")
        reason = content.get("reason")
        if content.get("type") != PROPOSAL_TYPE or not isinstance(statement, Mapping) \
                or not isinstance(reason, str):
            continue
        try:
            summary = read_revocation(statement)
        except IdentityError:
            continue
        signatures = statement.get("signatures")
        listed = signatures if isinstance(signatures, list) else []
        own = next((sig for s in listed if (sig := _signature_of(s, sender)) is not None), None)
        if summary.org_id == sender or own is None:
            continue
        counted = {sender: own}
        digest = request_hash(statement)
        found.setdefault(digest, Gathered(summary.org_id, digest, dict(statement),
                                          reason[:MAX_REASON], sender, counted))
    for sender, content in approvals:
        if content.get("type") != APPROVAL_TYPE:
            continue
        gathered = found.get(str(content.get("request_hash")))
        signature = _signature_of(content.get("signature"), sender)
        if gathered is not None and signature is not None and sender != gathered.target:
            gathered.signatures.setdefault(sender, signature)
    return list(found.values())
