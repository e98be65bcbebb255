"""The node's own cases as records: create, amend (JSON merge patch), delete, with audit entries.

The store keeps, per version, the whole record in wire form (``schemas.records.record_to_wire``:
issuer, record id, version, kind, schema, issued_at, payload), so sharing later needs nothing
but the stored document. The plaintext index (:class:`CaseIndex`) is derived from the payload
here and nowhere else.

Consent is per coalition (decision 0032): :func:`consent_scope` fills in or checks a case's
``consent_coalitions`` against the coalitions this node is in, for every writer alike.

These functions work inside a store transaction the caller opens; the HTTP API uses them, and so
can anything else that writes cases (imports, the demo). Audit entries name the author and the
record id, never content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from node.core.store import CaseIndex, StoredCase, StoreTransaction, VersionConflict
from schemas.case import Case
from schemas.dates import DateSpan
from schemas.errors import FieldProblem, RecordValidationError
from schemas.ids import new_record_id
from schemas.records import (
    CaseRecord,
    RecordKind,
    build_record,
    parse_payload,
    parse_record,
    record_to_wire,
)
from schemas.strict import own_case_problems
from schemas.typology import ConsentLevel

CASE_CREATED = "case.create"
CASE_UPDATED = "case.update"
CASE_DELETED = "case.delete"
SHARED_WITH_COALITIONS = frozenset({ConsentLevel.ANONYMISED, ConsentLevel.COALITION,
                                    ConsentLevel.NAMED_PARTNERS})
"""Consent levels that let a coalition's members see something (public lets everyone)."""
CONSENT_COALITIONS = "consent_coalitions"


def consent_scope(case: Case, active: Sequence[str], *, before: Case | None = None,
                  first: str | None = None) -> Case:
    """``case`` with the coalitions its consent covers, as this node records it.

    ``active`` are the ids of the coalitions this node is in (oldest first), ``first`` its
    first coalition, left ones included. A new case (``before`` None) without the field gets
    the node's only coalition; when the node is in several, a level that shares with a
    coalition must name them (``RecordValidationError`` on ``consent_coalitions``), while
    ``none`` and ``public`` cover none in particular. A node in no coalition yet leaves the
    field out: like a case from before decision 0032, its consent covers the first coalition.
    An edit keeps the field, and writes it on a case that lacked it (the first coalition).
    Coalitions named anew must be ones this node is in."""
    named = case.consent_coalitions
    if named is not None:
        kept = set(before.consent_coalitions or ()) if before is not None else set()
        unknown = [c for c in named if c not in active and c not in kept]
        if unknown:
            raise RecordValidationError([FieldProblem(
                path=CONSENT_COALITIONS,
                problem=f"not a coalition this node is in: {unknown[0]}")])
        return case
    if before is not None:
        if before.consent_coalitions is not None:
            scope: list[str] | None = list(before.consent_coalitions)
        else:
            scope = [first] if first is not None else None
    elif not active:
        scope = None
    elif len(active) == 1:
        scope = [active[0]]
    elif case.consent_level in SHARED_WITH_COALITIONS:
        raise RecordValidationError([FieldProblem(
            path=CONSENT_COALITIONS,
            problem="this node is in several coalitions: name those the consent covers")])
    else:
        scope = []
    return case if scope is None else case.model_copy(update={CONSENT_COALITIONS: scope})


async def scoped_consent(tx: StoreTransaction, case: Case, before: Case | None = None) -> Case:
    """:func:`consent_scope` with this node's coalitions."""
    every = await tx.coalitions.all(with_left=True)
    active = [c.coalition_id for c in every if c.active]
    return consent_scope(case, active, before=before,
                         first=every[0].coalition_id if every else None)


def case_index(case: Case) -> CaseIndex:
    """The filterable facts of a case: country, incident period bounds, violations, groups."""
    period = DateSpan.parse(case.incident_date)
    return CaseIndex(
        country=case.country,
        date_from=period.earliest().isoformat(),
        date_to=period.latest().isoformat(),
        violations=frozenset(case.violations),
        victim_groups=frozenset(group for victim in case.victims for group in victim.groups),
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, ``null`` removes, the rest replaces."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def utc_day(unix_seconds: int) -> date:
    return datetime.fromtimestamp(unix_seconds, UTC).date()


def _refuse_problems(problems: list[FieldProblem]) -> None:
    if problems:
        raise RecordValidationError(problems)


def stored_record(stored: StoredCase) -> CaseRecord:
    """The record held in a stored case version."""
    return cast(CaseRecord, parse_record(stored.document))


async def add_case(
    tx: StoreTransaction, *, issuer: str, case: Case, author: str, issued_at: int
) -> StoredCase:
    """Store ``case`` as version 1 of a new record issued by ``issuer``; a case with an unknown
    field or a future incident date is refused (``RecordValidationError``)."""
    _refuse_problems(own_case_problems(case, utc_day(issued_at)))
    case = await scoped_consent(tx, case)
    record = build_record(issuer, case, record_id=new_record_id(), issued_at=issued_at)
    stored = await tx.cases.add(record.record_id, record_to_wire(record), case_index(case), author)
    await tx.audit.append(author, CASE_CREATED, target=stored.record_id,
                          details={"version": stored.version})
    return stored


async def amend_case(
    tx: StoreTransaction,
    record_id: str,
    patch: Mapping[str, Any],
    *,
    author: str,
    issued_at: int,
    expected_version: int | None = None,
) -> StoredCase:
    """Apply a merge patch to the current payload and store the result as the next version.

    Raises ``RecordValidationError`` (paths relative to the payload) if the merged case is
    invalid, names a field the previous version did not carry and no model knows, or moves the
    incident into the future; ``VersionConflict`` if ``expected_version`` is not the current
    version.
    """
    current = await tx.cases.get(record_id)
    if expected_version is not None and expected_version != current.version:
        raise VersionConflict(
            f"case {current.record_id} is at version {current.version}, not {expected_version}"
        )
    previous = stored_record(current)
    merged = merge_patch(previous.payload.model_dump(mode="json", exclude_none=True), patch)
    case = cast(Case, parse_payload(RecordKind.CASE, merged))
    _refuse_problems(own_case_problems(case, utc_day(issued_at), known_before=previous.payload))
    case = await scoped_consent(tx, case, previous.payload)
    record = build_record(previous.issuer, case, record_id=current.record_id,
                          issued_at=issued_at, version=current.version + 1)
    stored = await tx.cases.update(current.record_id, record_to_wire(record), case_index(case),
                                   author, expected_version=current.version)
    await tx.audit.append(author, CASE_UPDATED, target=stored.record_id,
                          details={"version": stored.version})
    return stored


async def withdraw_consent(
    tx: StoreTransaction, record_id: str, *, author: str, issued_at: int
) -> StoredCase:
    """The defender withdrew consent: the case's consent becomes ``none`` (no partners) as a new
    version, so nothing of it is shared, published or matched again; unchanged if it already
    is ``none``."""
    current = await tx.cases.get(record_id)
    if stored_record(current).payload.consent_level is ConsentLevel.NONE:
        return current
    return await amend_case(tx, record_id, {"consent_level": ConsentLevel.NONE.value,
                                            "consent_partners": None},
                            author=author, issued_at=issued_at)


async def delete_case(tx: StoreTransaction, record_id: str, *, author: str) -> None:
    """Wipe every version's content, keeping only the store's tombstone."""
    current = await tx.cases.get(record_id)
    await tx.cases.delete(current.record_id)
    await tx.audit.append(author, CASE_DELETED, target=current.record_id,
                          details={"version": current.version})
