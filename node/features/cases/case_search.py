"""Searching the organisation's cases.

Filters the store can answer from its plaintext index (country, violation, victim group, period)
run in SQL. Free text (titles, narratives, places, names, stories, sources) is encrypted at rest,
so it is matched here, after decryption, on the cases the filters leave: page by page, newest
change first, examining at most :data:`SCAN_LIMIT` cases per request. When that cap stops a
search early, the page says so and offers to continue with older cases; nothing is silently
left out. Matching ignores case, accents and punctuation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from node.core.store import CaseFilter, StoredCase, StoreTransaction
from schemas.typology import normalise_label

PAGE_SIZE: Final = 20
SCAN_LIMIT: Final = 1000
_TEXT_FIELDS: Final = ("title", "narrative", "place", "impact_story")
_ELEMENT_TEXT: Final = ("name", "native_name", "romanised_name", "description")


@dataclass(frozen=True)
class SearchPage:
    items: list[StoredCase]
    next_cursor: str | None
    examined: int
    capped: bool
    """The scan stopped at the cap, not at the end of the cases."""


def _texts(payload: Mapping[str, Any]) -> Iterable[str]:
    for name in _TEXT_FIELDS:
        value = payload.get(name)
        if isinstance(value, str):
            yield value
    for name in ("victims", "perpetrators"):
        for element in payload.get(name) or []:
            if isinstance(element, Mapping):
                yield from (v for k, v in element.items() if k in _ELEMENT_TEXT
                            and isinstance(v, str))
    yield from (s for s in payload.get("sources") or [] if isinstance(s, str))


def matches(stored: StoredCase, needle: str) -> bool:
    """``needle`` (already normalised) occurs in the case's text or starts its record id."""
    if stored.record_id.startswith(needle.replace(" ", "")):
        return True
    payload = stored.document.get("payload", {})
    return any(needle in normalise_label(text) for text in _texts(payload))


async def search_cases(
    tx: StoreTransaction,
    wanted: CaseFilter,
    text: str | None,
    cursor: str | None,
    *,
    page_size: int = PAGE_SIZE,
    scan_limit: int = SCAN_LIMIT,
) -> SearchPage:
    """One page of cases matching the filters and, if given, the text."""
    needle = normalise_label(text or "")
    if not needle:
        page = await tx.cases.list(wanted, limit=page_size, cursor=cursor)
        return SearchPage(page.items, page.next_cursor, len(page.items), capped=False)
    found: list[StoredCase] = []
    examined = 0
    while True:
        page = await tx.cases.list(wanted, limit=page_size, cursor=cursor)
        examined += len(page.items)
        found.extend(item for item in page.items if matches(item, needle))
        cursor = page.next_cursor
        if cursor is None or len(found) >= page_size:
            return SearchPage(found, cursor, examined, capped=False)
        if examined >= scan_limit:
            return SearchPage(found, cursor, examined, capped=True)
