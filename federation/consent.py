"""The consent gate: the one way a case leaves its node as a disclosure (docs/architecture.md §4).

A case carries the defender's consent level, the partner organisations they named, and the
issuing organisation's risk assessment. Those decide, per recipient, which field groups of
``schemas.fields.CASE_FIELD_GROUPS`` may be disclosed. The policy is two small tables:

:data:`CONSENT_POLICY` — what consent allows, by the recipient's relation to the case:

================  ==============  ==================  ======================
consent level     named partner   coalition member    outside the coalition
================  ==============  ==================  ======================
none              nothing         nothing             nothing
anonymised        context         context             nothing
coalition         everything      everything          nothing
named_partners    everything      context             nothing
public            everything      everything          everything
================  ==============  ==================  ======================

A *named partner* is an organisation listed in the case's ``consent_partners`` (only a
``named_partners`` case has any), whether or not it is a coalition member: the defender named it.

:data:`RISK_CAP` — risk never widens consent; at ``critical`` risk everyone except a named
partner gets at most the context group (location, identity and narrative, which is free text
that can identify anyone it describes, stay with the partners the defender named).

Files attached to a case travel under the pseudo-path :data:`ATTACHMENTS`. A photo, a recording
or a document shows people and places, so the gate allows files to a recipient only when it
allows both the identity and the location groups (:data:`ATTACHMENT_GROUPS`), and refuses them
with the reason of the group it does not allow, like any other field.

The internal fields (consent level, partners, risk level) are never disclosed, and a path that
is not a case field path is an error (:class:`UnknownFieldPath`). A recipient who may see no
field at all may not receive the case at all, not even its header: that alone would tell them
the case exists. The reasoning is in ``docs/decisions/0003-consent-policy.md``.

Enforcement: :func:`federation.disclosure.issue` refuses claims of kind ``case`` unless they come
with a :class:`ConsentDecision` that allows exactly those fields for that record version and
that audience, and only :func:`decide` (in this module) can make one. So :func:`disclose_case`
is the one way to build a disclosure of a case, and :func:`preview` runs the same code, so what
the share dialog shows is what the recipient gets.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.consent_decision import COALITION_CLAIM, ConsentDecision, grant
from federation.disclosure import issue, verify
from federation.keys import KeyNotTrusted, VerificationKey
from schemas.case import Case
from schemas.errors import quote_if_safe
from schemas.fields import CASE_FIELD_GROUPS, CASE_INTERNAL_FIELDS, FieldGroup, split_path
from schemas.records import CaseRecord, payload_to_wire
from schemas.typology import ConsentLevel, RiskLevel

# --- recipients -------------------------------------------------------------------------------


class Relation(StrEnum):
    """How a recipient stands to a case; the consent table is keyed by it."""

    NAMED_PARTNER = "named partner"
    MEMBER = "coalition member"
    OUTSIDER = "recipient outside the coalition"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a disclosure is for: its org id (the SD-JWT audience), whether it is a verified
    member of the coalition the share goes through, and that coalition's id (decision 0032:
    named in clear in the token)."""

    org_id: str
    coalition_member: bool
    coalition: str | None = None

    @classmethod
    def member(cls, org_id: str, coalition: str | None = None) -> Recipient:
        return cls(org_id, coalition_member=True, coalition=coalition)

    @classmethod
    def outsider(cls, org_id: str) -> Recipient:
        """Anyone outside the coalition: the public, a journalist, a UN mechanism."""
        return cls(org_id, coalition_member=False)


def relation(case: Case, recipient: Recipient) -> Relation:
    """A member of the coalition the share goes through counts as a coalition member only if
    the defender consented to sharing within that coalition (``consent_coalitions``; None on
    a case only before its node resolved it with :func:`with_consent_scope`)."""
    if recipient.org_id in case.consent_partners:
        return Relation.NAMED_PARTNER
    scope = case.consent_coalitions
    within = scope is None or (recipient.coalition is not None and recipient.coalition in scope)
    return Relation.MEMBER if recipient.coalition_member and within else Relation.OUTSIDER


def with_consent_scope(record: CaseRecord, first_coalition: str | None) -> CaseRecord:
    """``record`` with the coalitions its consent covers spelled out. A case recorded before
    consent was per coalition (``consent_coalitions`` absent) was consented for the one
    coalition its node was in: the node's first coalition (decision 0032). Nothing changes on
    a case that names its coalitions."""
    if record.payload.consent_coalitions is not None:
        return record
    scope = [first_coalition] if first_coalition is not None else []
    payload = record.payload.model_copy(update={"consent_coalitions": scope})
    return record.model_copy(update={"payload": payload})


# --- the policy -------------------------------------------------------------------------------

_NOTHING: Final[frozenset[FieldGroup]] = frozenset()
_CONTEXT: Final = frozenset({FieldGroup.CONTEXT})
_EVERYTHING: Final = frozenset(FieldGroup)

_P, _M, _O = Relation.NAMED_PARTNER, Relation.MEMBER, Relation.OUTSIDER
CONSENT_POLICY: Final[Mapping[ConsentLevel, Mapping[Relation, frozenset[FieldGroup]]]] = (
    types.MappingProxyType(
        {
            ConsentLevel.NONE: {_P: _NOTHING, _M: _NOTHING, _O: _NOTHING},
            ConsentLevel.ANONYMISED: {_P: _CONTEXT, _M: _CONTEXT, _O: _NOTHING},
            ConsentLevel.COALITION: {_P: _EVERYTHING, _M: _EVERYTHING, _O: _NOTHING},
            ConsentLevel.NAMED_PARTNERS: {_P: _EVERYTHING, _M: _CONTEXT, _O: _NOTHING},
            ConsentLevel.PUBLIC: {_P: _EVERYTHING, _M: _EVERYTHING, _O: _EVERYTHING},
        }
    )
)
"""Field groups that consent allows, by consent level and the recipient's relation."""

RISK_CAP: Final[Mapping[RiskLevel, frozenset[FieldGroup]]] = types.MappingProxyType(
    {
        RiskLevel.LOW: _EVERYTHING,
        RiskLevel.MEDIUM: _EVERYTHING,
        RiskLevel.HIGH: _EVERYTHING,
        RiskLevel.CRITICAL: _CONTEXT,
    }
)
"""The most any recipient other than a named partner may get at each risk level."""

ATTACHMENTS: Final = "attachments"
"""The path of the files shared with a case: per file its name, type, size, SHA-256, the key
that opens it and where its encrypted parts are (``node.features.evidence``). Not a payload
field: the issuing node adds it to one recipient's claims when staff chose files for them."""

ATTACHMENT_GROUPS: Final = frozenset({FieldGroup.IDENTITY, FieldGroup.LOCATION})
"""A file may go where both of these may: what it shows identifies people and places."""

CASE_PATHS: Final = tuple(CASE_FIELD_GROUPS)
"""Every disclosable case path: what ``issue`` withholds, so ``_sd`` sizes are fixed per kind."""
_CASE_PATH_SET: Final = frozenset(CASE_PATHS)
_WITHHOLDABLE: Final = _CASE_PATH_SET | {ATTACHMENTS}  # issue() keeps plans by this set

"""Record header fields that travel in clear (with ``iss``, ``iat`` and ``aud`` from ``issue``)."""


# --- errors -----------------------------------------------------------------------------------


class ConsentError(ValueError):
    """A case disclosure was refused before anything was built."""


class UnknownFieldPath(ConsentError):
    """Requested paths that are not case field paths."""

    def __init__(self, paths: Collection[str]) -> None:
        self.paths = tuple(sorted(paths))
        named = ", ".join(quote_if_safe(path) for path in self.paths)
        super().__init__(f"not case field paths: {named}")


@dataclass(frozen=True, slots=True)
class Refusal:
    path: str
    reason: str


class ConsentRefused(ConsentError):
    """The request exceeds what consent and risk allow for this recipient.

    ``refusals`` names every refused path with its reason (paths and policy terms only, never
    values); it is empty when the case may not go to this recipient at all.
    """

    def __init__(self, refusals: Collection[Refusal], summary: str | None = None) -> None:
        self.refusals = tuple(sorted(refusals, key=lambda refusal: refusal.path))
        details = "; ".join(f"{refusal.path}: {refusal.reason}" for refusal in self.refusals)
        super().__init__(" — ".join(part for part in (summary, details) if part))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(refusal.path for refusal in self.refusals)


# --- the gate ---------------------------------------------------------------------------------


def allowed_groups(case: Case, recipient: Recipient) -> frozenset[FieldGroup]:
    """The field groups ``recipient`` may receive from ``case``."""
    who = relation(case, recipient)
    allowed = CONSENT_POLICY[case.consent_level][who]
    if who is Relation.NAMED_PARTNER:
        return allowed
    return allowed & RISK_CAP[case.risk_level]


def shareable_with_members(case: Case) -> bool:
    """Whether consent lets any member of the coalition (named partners included) receive any
    field of ``case``: a share dialog is only offered when it does."""
    return any(CONSENT_POLICY[case.consent_level][who]
               for who in (Relation.NAMED_PARTNER, Relation.MEMBER))


def allowed_fields(case: Case, recipient: Recipient) -> frozenset[str]:
    """Every path ``recipient`` may receive from ``case`` (what a share dialog may offer)."""
    groups = allowed_groups(case, recipient)
    return frozenset(path for path, group in CASE_FIELD_GROUPS.items() if group in groups)


def attachments_allowed(case: Case, recipient: Recipient) -> bool:
    """Whether files attached to ``case`` may go to ``recipient`` (:data:`ATTACHMENT_GROUPS`)."""
    return allowed_groups(case, recipient) >= ATTACHMENT_GROUPS


def _attachments_refusal(case: Case, who: Relation, groups: frozenset[FieldGroup]) -> str:
    """Why files may not go: the reason of the first group they need that is not allowed."""
    missing = next(g for g in (FieldGroup.IDENTITY, FieldGroup.LOCATION) if g not in groups)
    return f"{_refusal_reason(case, who, missing)} (files show people and places)"


def _refusal_reason(case: Case, who: Relation, group: FieldGroup) -> str:
    level = case.consent_level.value
    if case.consent_level is ConsentLevel.NONE:
        return "consent level 'none' allows no disclosure"
    if group not in CONSENT_POLICY[case.consent_level][who]:
        if not CONSENT_POLICY[case.consent_level][who]:
            return f"consent level {level!r} allows nothing to a {who.value}"
        return f"consent level {level!r} allows no {group.value} fields to a {who.value}"
    return f"risk level {case.risk_level.value!r} keeps {group.value} fields to named partners"


def check_consent(case: Case, fields: Collection[str], recipient: Recipient) -> frozenset[str]:
    """The requested ``fields`` if consent allows all of them for ``recipient``.

    Raises :class:`UnknownFieldPath` for paths that are not case field paths, then
    :class:`ConsentRefused` naming every path beyond consent (internal fields always are).
    """
    if isinstance(fields, str):
        raise TypeError("fields must be a collection of paths, not one string")
    requested = frozenset(fields)
    unknown = requested - CASE_FIELD_GROUPS.keys() - CASE_INTERNAL_FIELDS - {ATTACHMENTS}
    if unknown:
        raise UnknownFieldPath(unknown)
    internal = requested & CASE_INTERNAL_FIELDS
    refusals = [Refusal(path, "internal to the issuing node, never disclosed") for path in internal]
    groups, who = allowed_groups(case, recipient), relation(case, recipient)
    refusals += [
        Refusal(path, _refusal_reason(case, who, CASE_FIELD_GROUPS[path]))
        for path in requested - internal - {ATTACHMENTS}
        if CASE_FIELD_GROUPS[path] not in groups
    ]
    if ATTACHMENTS in requested and not groups >= ATTACHMENT_GROUPS:
        refusals.append(Refusal(ATTACHMENTS, _attachments_refusal(case, who, groups)))
    if not groups:
        raise ConsentRefused(refusals, f"this case may not go to a {who.value} at all")
    if refusals:
        raise ConsentRefused(refusals)
    return requested


# --- decisions --------------------------------------------------------------------------------

def decide(record: CaseRecord, fields: Collection[str], recipient: Recipient) -> ConsentDecision:
    """Run the gate for one share of ``record`` with ``recipient``; see :func:`check_consent`."""
    allowed = check_consent(record.payload, fields, recipient)
    header = _header_claims(record)
    return grant(header=header, audience=recipient.org_id, fields=allowed,
                 coalition=recipient.coalition)


def _header_claims(record: CaseRecord) -> dict[str, Any]:
    """The record header as it travels in clear (the names of :data:`HEADER_CLAIMS`)."""
    return {
        "record_id": record.record_id,
        "version": record.version,
        "kind": record.kind,
        "schema": record.schema_id,
        "issued_at": record.issued_at,
    }


# --- disclosure -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _projection(
    paths: frozenset[str],
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """``paths`` split into top-level fields and, per array field, the element keys chosen."""
    fields: list[str] = []
    keys_by_array: dict[str, list[str]] = {}
    for path in sorted(paths):
        field, key = split_path(path)
        if key is not None:
            keys_by_array.setdefault(field, []).append(key)
        else:
            fields.append(field)
    return tuple(fields), tuple((field, tuple(keys)) for field, keys in keys_by_array.items())


def _project(payload: Mapping[str, Any], paths: Collection[str]) -> dict[str, Any]:
    """The payload values at ``paths``; absent and null values are left out.

    An array of objects is kept whole in length, each element holding only the chosen keys.
    """
    fields, keys_by_array = _projection(frozenset(paths))
    projected = {field: payload[field] for field in fields if payload.get(field) is not None}
    for field, keys in keys_by_array:
        elements = payload.get(field)
        if isinstance(elements, list):
            projected[field] = [
                {key: element[key] for key in keys if element.get(key) is not None}
                for element in elements
            ]
    return projected


def case_claims(record: CaseRecord, fields: Collection[str],
                files: Sequence[Mapping[str, Any]] = (),
                coalition: str | None = None) -> dict[str, Any]:
    """The SD-JWT claims for disclosing ``fields`` of ``record``: header (and the coalition
    shared through) in clear, then fields, then the ``files`` (descriptions of shared files)
    when :data:`ATTACHMENTS` is among them."""
    claims = _header_claims(record)
    if coalition is not None:
        claims[COALITION_CLAIM] = coalition
    claims.update(_project(payload_to_wire(record.payload), fields))
    if files and ATTACHMENTS in fields:
        claims[ATTACHMENTS] = [dict(file) for file in files]
    return claims


def disclose_case(
    record: CaseRecord,
    fields: Collection[str],
    recipient: Recipient,
    *,
    signing_key: Ed25519PrivateKey,
    kid: str,
    issued_at: int,
    files: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The SD-JWT presentation of ``fields`` of ``record`` for ``recipient``, after the gate.

    ``files`` (descriptions of the files chosen for this recipient) ask for :data:`ATTACHMENTS`
    too, so the gate refuses them where it refuses identity or location.

    Raises :class:`UnknownFieldPath` or :class:`ConsentRefused` before anything is built.
    The token is issued for this recipient alone (``aud``, fresh salts and decoys) and holds
    disclosures of the requested fields only: values not disclosed are not in it at all, not
    even as withheld disclosures, so it is at once the issuance and its presentation. Every
    case path is declared withholdable, so the ``_sd`` arrays have the same size whatever is
    disclosed. ``issued_at`` is the signing time (the verifier checks the key at that time).
    """
    wanted = {*fields, ATTACHMENTS} if files else fields
    decision = decide(record, wanted, recipient)
    return issue(
        case_claims(record, decision.fields, files, decision.coalition),
        issuer=record.issuer,
        kid=kid,
        signing_key=signing_key,
        issued_at=issued_at,
        withholdable=_WITHHOLDABLE,
        audience=recipient.org_id,
        consent=decision,
    )


_PREVIEW_KID: Final = "preview"


@dataclass(frozen=True, slots=True)
class _OneKey:
    issuer: str
    key: VerificationKey

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
        if issuer != self.issuer or kid != _PREVIEW_KID:
            raise KeyNotTrusted("not the preview key")
        return self.key


def preview(
    record: CaseRecord, fields: Collection[str], recipient: Recipient, *, issued_at: int,
    files: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Exactly the claims ``recipient`` would verify from :func:`disclose_case` at ``issued_at``.

    It runs :func:`disclose_case` with a throwaway key and verifies the result, so the preview
    cannot differ from a real send. Raises as :func:`disclose_case` does.
    """
    key = Ed25519PrivateKey.generate()
    token = disclose_case(
        record, fields, recipient, signing_key=key, kid=_PREVIEW_KID, issued_at=issued_at,
        files=files,
    )
    resolver = _OneKey(record.issuer, key.public_key())
    return verify(token, resolver, expected_audience=recipient.org_id).claims
