"""What pages show of cases, received records and members, in the visitor's language.

Pure functions from stored values to small display objects; templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.core.keys import signed_after_revocation
from node.core.store import Member, ReceivedRecord, StoredCase
from node.core.store.coalitions import Coalition
from node.core.web.i18n import N_, Formatter
from node.core.web.labels import (
    CASE_FIELD_NAMES,
    CODED_FIELDS,
    ELEMENT_FIELD_NAMES,
    OTHER_PATH_NAMES,
)
from schemas.typology import Vocabulary

HEADER_FIELDS = frozenset({"issuer", "record_id", "version", "kind", "schema", "issued_at"})
TOKEN_CLAIMS = frozenset({"iss", "iat", "aud", "cnf", "_sd_alg", "exp", "nbf", "sub", "jti", "vct",
                          "coalition"})
"""SD-JWT and JWT claims of a received token: shown as issuer, dates and coalition, not as
fields."""
VERIFIED = "verified"  # what the sync host stores for a record whose checks all passed


@dataclass(frozen=True)
class Fact:
    """One labelled value; ``items`` for lists, ``parts`` for a list of objects."""

    label: str
    text: str = ""
    items: tuple[str, ...] = ()
    parts: tuple[tuple[Fact, ...], ...] = ()


@dataclass(frozen=True)
class CaseSummary:
    record_id: str
    heading: str
    when: str
    country: str
    violations: tuple[str, ...]
    version: int
    updated_at: str
    consent: str
    risk: str
    risk_code: str


@dataclass(frozen=True)
class MemberCard:
    org_id: str
    name: str
    country: str
    countries_of_work: tuple[str, ...]
    capabilities: tuple[str, ...]
    description: str | None
    contact: str | None
    website: str | None
    safety_code: str
    verified: bool
    updated_at: str
    revoked_since: str | None = None
    """Since when the member's keys are revoked (its node was seized), formatted."""


@dataclass(frozen=True)
class ReceivedCard:
    issuer: str
    issuer_name: str
    safety_code: str | None
    record_id: str
    version: int
    kind: str
    heading: str
    verified: bool
    verification: str
    retracted: bool
    fields: tuple[str, ...]
    received_at: str
    facts: tuple[Fact, ...] = field(default=())
    signed_after_revocation: bool = False
    """The issuer's keys were revoked and this record says it was signed after that."""
    issuer_revoked_since: str | None = None
    coalition: str | None = None
    """The coalition it came through, by name; "(left)" once this node left it."""


def case_heading(payload: Mapping[str, Any], fmt: Formatter) -> str:
    """The title, else what is known of where and when (a received case may lack both)."""
    title = payload.get("title")
    if isinstance(title, str) and title.strip():
        return title
    country = fmt.country(_text(payload.get("country")))
    when = fmt.date_span(_text(payload.get("incident_date")))
    if country and when:
        return fmt.gettext(N_("Case in %(country)s, %(date)s")) % {"country": country,
                                                                   "date": when}
    if country:
        return fmt.gettext(N_("Case in %(country)s")) % {"country": country}
    if when:
        return fmt.gettext(N_("Case of %(date)s")) % {"date": when}
    return fmt.gettext(N_("Case without title"))


def case_summary(stored: StoredCase, fmt: Formatter) -> CaseSummary:
    payload = stored.document.get("payload", {})
    return CaseSummary(
        record_id=stored.record_id,
        heading=case_heading(payload, fmt),
        when=fmt.date_span(_text(payload.get("incident_date"))),
        country=fmt.country(_text(payload.get("country"))),
        violations=tuple(fmt.term(Vocabulary.VIOLATION, code)
                         for code in _strings(payload.get("violations"))),
        version=stored.version,
        updated_at=fmt.datetime(stored.updated_at),
        consent=fmt.term(Vocabulary.CONSENT_LEVEL, _text(payload.get("consent_level"))),
        risk=fmt.term(Vocabulary.RISK_LEVEL, _text(payload.get("risk_level"))),
        risk_code=_text(payload.get("risk_level")),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def field_name(path: str, fmt: Formatter) -> str:
    name = CASE_FIELD_NAMES.get(path) or OTHER_PATH_NAMES.get(path)
    return fmt.gettext(name) if name else path


def _value_text(path: str, value: object, fmt: Formatter) -> str:
    vocabulary = CODED_FIELDS.get(path)
    if isinstance(value, str):
        if vocabulary is not None:
            return fmt.term(vocabulary, value)
        if path == "country":
            return fmt.country(value)
        if path == "incident_date":
            return fmt.date_span(value)
        return value
    if isinstance(value, bool):
        return fmt.gettext(N_("yes")) if value else fmt.gettext(N_("no"))
    if isinstance(value, int):
        return fmt.number(value)
    return "" if value is None else str(value)


def _element_facts(path: str, element: Mapping[str, Any], fmt: Formatter) -> tuple[Fact, ...]:
    """The filled-in keys of one victim or perpetrator, in the form's order."""
    known = [key for key in ELEMENT_FIELD_NAMES if key in element]
    keys = known + sorted(key for key in element if key not in ELEMENT_FIELD_NAMES)
    facts = []
    for key in keys:
        value = element[key]
        if value in (None, "", []):
            continue
        label = ELEMENT_FIELD_NAMES.get(key)
        facts.append(_fact(f"{path}.{key}", fmt.gettext(label) if label else key, value, fmt))
    return tuple(facts)


def _fact(path: str, label: str, value: object, fmt: Formatter) -> Fact:
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return Fact(label, parts=tuple(_element_facts(path, v, fmt) for v in value))
    if isinstance(value, list):
        return Fact(label, items=tuple(_value_text(path, v, fmt) for v in value))
    if isinstance(value, Mapping):
        return Fact(label, text=", ".join(f"{k}: {_value_text(k, v, fmt)}"
                                          for k, v in value.items()))
    return Fact(label, text=_value_text(path, value, fmt))


def payload_facts(payload: Mapping[str, Any], fmt: Formatter,
                  order: Sequence[str] = tuple(CASE_FIELD_NAMES)) -> tuple[Fact, ...]:
    """Every field of a payload (or of disclosed claims) as labelled facts, in form order;
    fields this version does not know come last under their own name."""
    known = [name for name in order if "." not in name and name in payload]
    rest = sorted(name for name in payload if name not in known
                  and name not in HEADER_FIELDS and name not in TOKEN_CLAIMS)
    return tuple(_fact(name, field_name(name, fmt), payload[name], fmt)
                 for name in [*known, *rest] if payload[name] not in (None, [], ""))


def member_names(members: Iterable[Member]) -> dict[str, str]:
    return {m.org_id: m.name for m in members}


def member_card(member: Member, fmt: Formatter) -> MemberCard:
    profile = member.entry.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    return MemberCard(
        org_id=member.org_id,
        name=_text(profile.get("name")) or member.org_id,
        country=fmt.country(_text(profile.get("country"))),
        countries_of_work=tuple(fmt.country(c) for c in _strings(profile.get("countries_of_work"))),
        capabilities=tuple(fmt.term(Vocabulary.CAPABILITY, c)
                           for c in _strings(profile.get("capabilities"))),
        description=_text(profile.get("description")) or None,
        contact=_text(profile.get("contact")) or None,
        website=_text(profile.get("website")) or None,
        safety_code=member.safety_code,
        verified=member.verified,
        updated_at=fmt.datetime(member.updated_at),
        revoked_since=fmt.datetime(datetime.fromtimestamp(member.revoked_at, UTC))
        if member.revoked_at is not None else None,
    )


def coalition_label(coalition_id: str | None, coalitions: Mapping[str, Coalition],
                    fmt: Formatter) -> str | None:
    """A coalition as staff see it: its name, with "(left)" once this node left it."""
    if coalition_id is None:
        return None
    coalition = coalitions.get(coalition_id)
    if coalition is None:
        return coalition_id
    if coalition.active:
        return coalition.label
    return fmt.gettext(N_("%(name)s (left)")) % {"name": coalition.label}


def received_card(record: ReceivedRecord, members: Mapping[str, Member], fmt: Formatter,
                  disclosed: Sequence[str], *, with_facts: bool = False,
                  coalitions: Mapping[str, Coalition] | None = None) -> ReceivedCard:
    member = members.get(record.issuer)
    claims = record.claims or {}
    names = member_names([member]) if member is not None else {}
    heading = (case_heading(claims, fmt) if record.kind == "case" and claims
               else fmt.gettext(N_("Record %(id)s")) % {"id": record.record_id[:8]})
    return ReceivedCard(
        issuer=record.issuer,
        issuer_name=names.get(record.issuer, record.issuer),
        safety_code=member.safety_code if member is not None else None,
        record_id=record.record_id,
        version=record.version,
        kind=record.kind,
        heading=heading,
        verified=record.verification == VERIFIED,
        verification=record.verification,
        retracted=record.retracted,
        fields=tuple(field_name(path, fmt) for path in disclosed),
        received_at=fmt.datetime(record.received_at),
        facts=payload_facts(claims, fmt) if with_facts else (),
        signed_after_revocation=signed_after_revocation(
            record.claims, member.revoked_at if member is not None else None),
        issuer_revoked_since=fmt.datetime(datetime.fromtimestamp(member.revoked_at, UTC))
        if member is not None and member.revoked_at is not None else None,
        coalition=coalition_label(record.coalition_id, coalitions or {}, fmt),
    )


def when(value: datetime, fmt: Formatter) -> str:
    return fmt.datetime(value)
