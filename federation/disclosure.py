"""Minga's selective disclosure: which record fields are withheld, and how copies are made.

A record's claims become an SD-JWT (RFC 9901, see ``federation.sdjwt``) in which every
*withholdable path* is a salted-digest disclosure and everything else stays in clear.

Paths are dot-separated claim names, as in ``schemas.fields``: ``narrative`` is a top-level claim;
``victims.name`` is the key ``name`` inside *every object element* of the array ``victims`` (or
inside the object ``victims``, if it is one). The containers above a withholdable path are
withheld too, and the disclosures nest: the ``victims`` disclosure holds objects that carry their
own ``_sd`` digests, so a recipient who is shown no victim field does not even learn how many
victims there are, and one shown ``victims.group`` sees the victims without their names.

Choices other parts rely on:

* Header ``{"alg": "EdDSA", "typ": "minga+sd-jwt", "kid": <key id>}``. The typ uses the
  ``+sd-jwt`` structured suffix of RFC 9901 §12.3 (explicit typing, §9.11), so a Minga record
  can never be mistaken for another kind of JWT and vice versa.
* ``iss`` (issuer org id) and ``iat`` (issue time) are always in clear: the verifier needs them to
  find the issuer key that was valid at issue time. ``aud`` is in clear when given: one org id,
  or (RFC 7519 §4.1.3) a sorted list of distinct org ids for a record every one of them gets
  alike (decision 0033). A verifier expecting audience X accepts a list only if X is in it; a
  token whose ``aud`` is neither a string nor such a list is malformed.
* Every object at a level that has withholdable keys gets an ``_sd`` array of a fixed size:
  real digests plus decoys, sorted. The size defaults to the number of withholdable keys declared
  at that level and may be raised per level (``sd_sizes``, keyed by the level's path, ``""`` for
  the top); it may never be smaller, so the size says nothing about which fields a record has.
  Pass the paths declared for the record's kind (``schemas.fields``), not the fields this record
  happens to have, or the sizes would vary from record to record.
* Each call to :func:`issue` draws fresh salts and decoys, so copies made for different recipient
  audiences share no salt and no digest and cannot be correlated through them. A token issued
  to a list of audiences is, by design, the same token for all of them.
* A presentation reveals exactly the paths asked for, plus the containers above them (asking
  for ``victims.name`` shows the ``victims`` array, holding only the names). Anything not
  declared withholdable is in clear wherever it is, so callers leave out of ``claims`` whatever
  must never leave the node (internal fields, fields kept from a newer peer's schema).
* Claims of kind ``case`` (``kind: "case"`` or a ``minga.case/...`` schema) are refused unless
  :func:`issue` is given the :class:`federation.consent.ConsentDecision` that allows exactly
  them; only the consent gate makes one, so ``federation.consent.disclose_case`` is the one way
  to build a disclosure of a case. Consent is decided per recipient, so a case is never issued
  to a list of audiences.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.canonical import CanonicalJSONError
from federation.consent_decision import ConsentDecision
from federation.consent_decision import ConsentRequired as ConsentRequired
from federation.consent_decision import DisclosureError as DisclosureError
from federation.keys import SigningKeyResolver
from federation.sdjwt import (
    ARRAY_DIGEST,
    CONTAINERS,
    SD,
    SD_ALG,
    SHA_256,
    MalformedSdJwt,
    RandomBytes,
    Salts,
    VerifiedSdJwt,
    claim_disclosure,
    join_compact,
    join_path,
    reconstruct,
    sign_jws,
    split_compact,
    unverified_payload,
    verify_sd_jwt,
)

MINGA_SD_JWT_TYP: Final = "minga+sd-jwt"
# Claims that issue() sets itself; callers may not pass them in the claims.
ISSUER_CLAIMS: Final = frozenset({"iss", "iat", "aud", "cnf"})
_RESERVED_NAMES: Final = frozenset({SD, SD_ALG, ARRAY_DIGEST})


class InvalidClaims(DisclosureError):
    """The claims cannot be issued (reserved or dotted names, floats, wrong shapes)."""


class InvalidPath(DisclosureError):
    """A withholdable path or a ``sd_sizes`` level is not a valid path."""


class SdArrayTooSmall(DisclosureError):
    """A fixed ``_sd`` size is smaller than the withholdable keys declared at its level."""


def _prefixes(path: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "a.b", "a.b.c"]``."""
    names = path.split(".")
    return [".".join(names[:depth]) for depth in range(1, len(names) + 1)]


def _check_path(path: str) -> None:
    names = path.split(".")
    if not path or not all(names) or any(name in _RESERVED_NAMES for name in names):
        raise InvalidPath(f"{path!r} is not a path of claim names")
    if len(names) == 1 and path in ISSUER_CLAIMS:
        raise InvalidPath(f"{path!r} is set by the issuer and is always in clear")


@dataclass(frozen=True, slots=True)
class _Plan:
    withheld: frozenset[str]  # the withholdable paths and every container above them
    sd_sizes: Mapping[str, int]  # level path -> fixed _sd length
    descend: frozenset[str]  # paths below which something must be transformed


def _plan(withholdable: Collection[str], sd_sizes: Mapping[str, int] | None) -> _Plan:
    levels = dict(sd_sizes or {})
    for level, size in levels.items():
        if not isinstance(level, str):
            raise InvalidPath("sd_sizes levels must be paths")
        if not isinstance(size, int) or isinstance(size, bool):
            raise SdArrayTooSmall(f"_sd size for level {level!r} must be an integer")
    try:
        paths = frozenset(withholdable)
    except TypeError:
        raise InvalidPath("withholdable paths must be strings") from None
    if not all(isinstance(path, str) for path in paths):
        raise InvalidPath("withholdable paths must be strings")
    return _cached_plan(paths, tuple(sorted(levels.items())))


# A node issues the same few kinds again and again: their plans are worth keeping.
@functools.lru_cache(maxsize=64)
def _cached_plan(withholdable: frozenset[str], sd_sizes: tuple[tuple[str, int], ...]) -> _Plan:
    withheld: set[str] = set()
    for path in withholdable:
        _check_path(path)
        withheld.update(_prefixes(path))
    declared: dict[str, int] = {}
    descend: set[str] = set()
    for path in withheld:
        level, _, _name = path.rpartition(".")
        declared[level] = declared.get(level, 0) + 1
        descend.update(_prefixes(level) if level else ())
    sizes = dict(declared)
    for level, size in sd_sizes:
        if level:
            _check_path(level)
        if size < sizes.get(level, 0):
            raise SdArrayTooSmall(
                f"_sd size for level {level!r} is {size}, below the "
                f"{sizes.get(level, 0)} withholdable keys declared there"
            )
        sizes[level] = size
        descend.update(_prefixes(level) if level else ())
    return _Plan(frozenset(withheld), MappingProxyType(sizes), frozenset(descend))


class _Concealer:
    """Builds the signed payload bottom-up, collecting disclosures in creation order."""

    __slots__ = ("_descend", "_salts", "_sd_sizes", "_withheld", "disclosures")

    def __init__(self, plan: _Plan, random_bytes: RandomBytes) -> None:
        self._withheld, self._descend, self._sd_sizes = plan.withheld, plan.descend, plan.sd_sizes
        self._salts = Salts(random_bytes)
        self.disclosures: list[str] = []  # encoded

    def conceal_object(self, obj: Mapping[str, Any], level: str) -> dict[str, Any]:
        clear: dict[str, Any] = {}
        digests: list[str] = []
        prefix = f"{level}." if level else ""
        for name, value in obj.items():
            if not isinstance(name, str) or "." in name or name in _RESERVED_NAMES:
                raise InvalidClaims(f"{join_path(level, str(name))!r} is not a usable claim name")
            path = prefix + name
            if isinstance(value, CONTAINERS) or path in self._descend:
                value = self._conceal_value(value, path)
            if path not in self._withheld:
                clear[name] = value
                continue
            try:
                encoded, digest = claim_disclosure(self._salts.salt(), name, value)
            except CanonicalJSONError as problem:
                raise InvalidClaims(f"{path}: {problem}") from None
            self.disclosures.append(encoded)
            digests.append(digest)
        size = self._sd_sizes.get(level, 0)
        if size:
            digests.extend(self._salts.decoy_digest() for _ in range(size - len(digests)))
            digests.sort()
            clear[SD] = digests
        return clear

    def _conceal_value(self, value: Any, path: str) -> Any:
        """Walk every nested value: it checks names everywhere and conceals where planned."""
        if isinstance(value, dict):
            return self.conceal_object(value, path)
        if isinstance(value, list):
            if path in self._descend:
                return [self._conceal_value(item, path) for item in value]
            # Only containers can hold names to check: skip the call for plain items.
            return [
                self._conceal_value(item, path) if isinstance(item, CONTAINERS) else item
                for item in value
            ]
        if value is not None and path in self._descend:
            raise InvalidClaims(f"{path!r} has withholdable fields inside but holds a plain value")
        return value


GATED_KIND: Final = "case"
_GATED_SCHEMA_PREFIX: Final = "minga.case/"


def _is_case(claims: Mapping[str, Any]) -> bool:
    kind, schema = claims.get("kind"), claims.get("schema")
    return kind == GATED_KIND or (
        isinstance(schema, str) and schema.startswith(_GATED_SCHEMA_PREFIX)
    )


Audience = str | Sequence[str]
"""One recipient org id, or several that get the same token (decision 0033)."""


class InvalidAudience(DisclosureError):
    """An ``aud`` that is neither one org id nor a non-empty list of distinct org ids."""


def audience_claim(audience: Audience) -> str | list[str]:
    """The ``aud`` claim for ``audience``: a string as it is; a list sorted, after checking it
    is non-empty and holds distinct non-empty strings (:class:`InvalidAudience` otherwise)."""
    if isinstance(audience, str):
        return audience
    if not isinstance(audience, Sequence):
        raise InvalidAudience("aud: must be an org id or a list of org ids")
    if not audience:
        raise InvalidAudience("aud: a list of audiences must not be empty")
    if not all(isinstance(org_id, str) and org_id for org_id in audience):
        raise InvalidAudience("aud: every audience in the list must be a non-empty string")
    if len(set(audience)) != len(audience):
        raise InvalidAudience("aud: an audience is listed twice")
    return sorted(audience)


def audiences_of(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The audiences a token's claims name (``None``: no ``aud``, addressed to nobody in
    particular); :class:`InvalidAudience` for an ``aud`` of another shape."""
    if "aud" not in claims:
        return None
    aud = claims["aud"]
    if isinstance(aud, str):
        return (aud,)
    if not isinstance(aud, list):
        raise InvalidAudience("aud: must be an org id or a list of org ids")
    return tuple(audience_claim(aud))


def addressed_to(claims: Mapping[str, Any], org_id: str) -> bool:
    """Whether verified ``claims`` may be read by ``org_id``: no ``aud``, ``aud`` equal to it,
    or a list of audiences holding it."""
    audiences = audiences_of(claims)
    return audiences is None or org_id in audiences


def _require_consent(
    claims: Mapping[str, Any], audience: str | list[str] | None,
    consent: ConsentDecision | None,
) -> None:
    if not _is_case(claims):
        if consent is not None:
            raise InvalidClaims("a consent decision only accompanies the claims of a case")
        return
    if not isinstance(consent, ConsentDecision):
        raise ConsentRequired("a case is disclosed only through federation.consent.disclose_case")
    if isinstance(audience, list):
        raise ConsentRequired("a case is disclosed to one audience at a time: consent is "
                              "decided per recipient")
    consent.authorise(claims, audience)


def issue(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    kid: str,
    signing_key: Ed25519PrivateKey,
    issued_at: int,
    withholdable: Collection[str],
    sd_sizes: Mapping[str, int] | None = None,
    audience: Audience | None = None,
    random_bytes: RandomBytes = os.urandom,
    consent: ConsentDecision | None = None,
) -> str:
    """Issue ``claims`` as an SD-JWT with every present withholdable path as a disclosure.

    Returns the compact SD-JWT with all its disclosures (``<jwt>~<d1>~...~``), for
    :func:`present`. Call once per recipient audience: salts and decoys are fresh every time.
    ``audience`` may be a list of org ids that all get this one token alike (decision 0033;
    ``aud`` is then the sorted list; :class:`InvalidAudience` if it is empty or repeats one).
    ``random_bytes`` is only for tests that need reproducible output. Case claims need the
    ``consent`` decision of ``federation.consent`` (raises :class:`ConsentRequired` otherwise)
    and go to one audience.
    """
    aud = None if audience is None else audience_claim(audience)
    _require_consent(claims, aud, consent)
    for name in claims:
        if name in ISSUER_CLAIMS:
            raise InvalidClaims(f"{name!r} is set by issue(), not passed in the claims")
    plan = _plan(withholdable, sd_sizes)
    concealer = _Concealer(plan, random_bytes)
    payload = concealer.conceal_object(claims, "")
    payload.update(iss=issuer, iat=issued_at)
    if aud is not None:
        payload["aud"] = aud
    payload[SD_ALG] = SHA_256
    header = {"typ": MINGA_SD_JWT_TYP, "kid": kid}
    try:
        jwt = sign_jws(header, payload, signing_key)
    except CanonicalJSONError as problem:
        raise InvalidClaims(f"clear claims: {problem}") from None
    return join_compact(jwt, concealer.disclosures)


def present(issued: str, paths: Collection[str]) -> str:
    """A presentation of ``issued`` disclosing ``paths`` and the containers above them, no more.

    A path with no disclosure in this record (absent optional field, clear claim) adds only the
    containers above it that are present.
    """
    compact = split_compact(issued)
    if compact.key_binding_jwt is not None:
        raise DisclosureError("an issued SD-JWT has no Key Binding JWT")
    payload = unverified_payload(compact.jwt)
    payload.pop(SD_ALG, None)
    nodes = reconstruct(payload, compact.disclosures).nodes
    # A disclosure's parent always sits at a prefix of its path, so this keeps every chosen
    # disclosure reachable from the signed payload.
    wanted = {prefix for path in paths for prefix in _prefixes(path)}
    chosen = {node.encoded for node in nodes if node.path in wanted}
    return join_compact(compact.jwt, [d for d in compact.disclosures if d in chosen])


def verify(
    presentation: str,
    resolver: SigningKeyResolver,
    *,
    expected_audience: str | None = None,
) -> VerifiedSdJwt:
    """Verify a Minga record presentation: EdDSA, typ ``minga+sd-jwt``, a ``kid``, RFC 9901 rules,
    an ``aud`` (if any) that is one org id or a non-empty list of distinct ones, holding
    ``expected_audience`` when that is given.

    Raises a :class:`federation.sdjwt.SdJwtError` subclass (``.reason`` is a stable code).
    """
    result = verify_sd_jwt(
        presentation,
        resolver,
        expected_typ=MINGA_SD_JWT_TYP,
        algorithms=frozenset({"EdDSA"}),
        expected_audience=expected_audience,
    )
    if not result.kid:
        raise MalformedSdJwt("a Minga record names its signing key in the header kid")
    try:
        audiences_of(result.claims)
    except InvalidAudience as problem:
        raise MalformedSdJwt(str(problem)) from None
    return result
