"""The organisation's own cases out of the node: CSV (optionally HXL-tagged), JSON, JSON Schema.

These files hold case content in plain text: they leave the encrypted store, so whoever runs an
export is responsible for where the file goes.

CSV. One row per case, columns named by field path, so
:func:`node.features.cases.importing.identity_mapping`
reads the file back unchanged (export -> import gives identical cases). Lists of codes
(``violations``, ``victims[N].groups``, ``consent_partners``) are joined with ``;``; victims,
perpetrators and sources get numbered columns (``victims[0].name``, ``victims[1].name``, ...), as
many as the case with the most of them needs. Fields a newer peer added are not in the CSV
(JSON keeps them).

HXL is for publishing (HDX and other humanitarian data platforms), so an HXL file is a
*publication*, not a copy (:func:`publication_csv`): it holds only what each case's consent lets
anyone outside the coalition see (consent ``public``; at ``critical`` risk not even a name), never
the consent and risk fields, and comes with a :class:`Withheld` summary saying how many cases it
left out and which fields it withheld (counts only). A second row holds Humanitarian Exchange
Language hashtags, so HXL tools understand the columns. Tags follow the HXL dictionary's core
hashtags; numbered columns repeat the same tag, in order:

=========================  ====================================
field                      hashtag
=========================  ====================================
record_id                  #event+id
title                      #event+name
incident_date              #date+occurred
country                    #country+code
place                      #loc+name
narrative                  #description
violations                 #event+type+list
victims[N].kind            #affected+type
victims[N].name            #affected+name
victims[N].native_name     #affected+name+native
victims[N].romanised_name  #affected+name+romanised
victims[N].groups          #affected+group+list
victims[N].gender          #affected+gender
victims[N].description     #affected+description
perpetrators[N].category   #group+perpetrator+type
perpetrators[N].name       #group+perpetrator+name
perpetrators[N].description  #group+perpetrator+description
impunity_status            #status+impunity
verification_status        #status+verification
independent_sources        #meta+sources+num
sources[N]                 #meta+source
consent_level              #meta+consent
consent_partners           #meta+consent+partners+list
risk_level                 #severity+risk
impact_story               #description+impact
=========================  ====================================

JSON. An array of ``minga.case/1`` wire records, each valid against the JSON Schema that
``--format jsonschema`` writes (:func:`schemas.export.json_schema`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from federation.consent import Recipient, allowed_fields, case_claims
from node.core.sharing import disclosed_fields
from node.core.store import StoreTransaction
from node.core.store.cases import MAX_PAGE
from node.features.cases.casebook import stored_record
from schemas.case import Case
from schemas.export import json_schema
from schemas.fields import CASE_INTERNAL_FIELDS
from schemas.records import CaseRecord, RecordKind, record_to_wire

LIST_SEPARATOR = ";"
CASES_EXPORTED = "case.export"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSON_SCHEMA = "jsonschema"


MEDIA_TYPES: Mapping[ExportFormat, str] = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.JSON_SCHEMA: "application/schema+json",
}

_HEAD = ("record_id", "title", "incident_date", "country", "place", "narrative", "violations")
_VICTIM_KEYS = ("kind", "name", "native_name", "romanised_name", "groups", "gender",
                "description")
_PERPETRATOR_KEYS = ("category", "name", "description")
_MIDDLE = ("impunity_status", "verification_status", "independent_sources")
_TAIL = ("consent_level", "consent_partners", "risk_level", "impact_story")

HXL_TAGS: Mapping[str, str] = {
    "record_id": "#event+id",
    "title": "#event+name",
    "incident_date": "#date+occurred",
    "country": "#country+code",
    "place": "#loc+name",
    "narrative": "#description",
    "violations": "#event+type+list",
    "victims.kind": "#affected+type",
    "victims.name": "#affected+name",
    "victims.native_name": "#affected+name+native",
    "victims.romanised_name": "#affected+name+romanised",
    "victims.groups": "#affected+group+list",
    "victims.gender": "#affected+gender",
    "victims.description": "#affected+description",
    "perpetrators.category": "#group+perpetrator+type",
    "perpetrators.name": "#group+perpetrator+name",
    "perpetrators.description": "#group+perpetrator+description",
    "impunity_status": "#status+impunity",
    "verification_status": "#status+verification",
    "independent_sources": "#meta+sources+num",
    "sources": "#meta+source",
    "consent_level": "#meta+consent",
    "consent_partners": "#meta+consent+partners+list",
    "risk_level": "#severity+risk",
    "impact_story": "#description+impact",
}
_INDEX = re.compile(r"\[\d+\]")
_ARRAYS: Final = ("victims", "perpetrators")


async def own_case_records(tx: StoreTransaction) -> list[CaseRecord]:
    """Every current case of this node, oldest record id first."""
    records: list[CaseRecord] = []
    cursor: str | None = None
    while True:
        page = await tx.cases.list(limit=MAX_PAGE, cursor=cursor)
        records.extend(stored_record(item) for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return sorted(records, key=lambda record: record.record_id)


def csv_columns(cases: Sequence[Case]) -> list[str]:
    payloads = [case.model_dump(mode="json", exclude_none=True) for case in cases]
    return _columns(payloads, victims_at_least=1)


def _columns(payloads: Sequence[Mapping[str, Any]], *, victims_at_least: int = 0,
             without: frozenset[str] = frozenset()) -> list[str]:
    def most(field: str, at_least: int = 0) -> int:
        return max((len(p.get(field) or ()) for p in payloads), default=at_least)

    return [column for column in (
        *_HEAD,
        *(f"victims[{i}].{key}" for i in range(max(most("victims"), victims_at_least))
          for key in _VICTIM_KEYS),
        *(f"perpetrators[{i}].{key}" for i in range(most("perpetrators"))
          for key in _PERPETRATOR_KEYS),
        *_MIDDLE,
        *(f"sources[{i}]" for i in range(most("sources"))),
        *_TAIL,
    ) if column not in without]


def hxl_tag(column: str) -> str:
    return HXL_TAGS[_INDEX.sub("", column)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def _lookup(payload: Mapping[str, Any], column: str) -> Any:
    """``victims[1].name`` -> payload["victims"][1]["name"], or None when absent."""
    value: Any = payload
    for part in re.findall(r"[a-z_]+|\[\d+\]", column):
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def case_row(record: CaseRecord, columns: Sequence[str]) -> list[str]:
    payload = record.payload.model_dump(mode="json", exclude_none=True)
    payload["record_id"] = record.record_id
    return [_cell(_lookup(payload, column)) for column in columns]


def cases_csv(records: Sequence[CaseRecord]) -> str:
    """Every case whole: the organisation's own copy, read back unchanged by an import."""
    columns = csv_columns([record.payload for record in records])
    return _csv(columns, [case_row(record, columns) for record in records], hxl=False)


def _csv(columns: Sequence[str], rows: Sequence[Sequence[str]], *, hxl: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    if hxl:
        writer.writerow([hxl_tag(column) for column in columns])
    writer.writerows(rows)
    return out.getvalue()


# --- publication --------------------------------------------------------------------------

PUBLIC: Final = Recipient.outsider("public")
"""Who a publication is for: anyone, outside the coalition."""


@dataclass(frozen=True)
class Withheld:
    """What a publication left out, said beside it: counts, never which case or what value."""

    cases: int
    """Cases not published at all: their consent does not allow it outside the coalition."""
    fields: Mapping[str, int]
    """Field path (``victims.name``) -> in how many published cases its value was withheld."""

    def describe(self) -> str:
        parts = [f"{self.cases} case(s) left out: their consent does not allow publishing"]
        parts += [f"{path} withheld in {count} case(s)"
                  for path, count in sorted(self.fields.items())]
        return "; ".join(parts)


def published_payload(record: CaseRecord) -> tuple[dict[str, Any] | None, set[str]]:
    """What of ``record`` may be published (``None``: nothing), and the paths withheld from it.

    The consent gate decides, as for a share with anyone outside the coalition; the consent and
    risk fields themselves are internal and never published."""
    payload = record.payload.model_dump(mode="json", exclude_none=True)
    given = {name: value for name, value in payload.items() if value != []}
    present = set(disclosed_fields(given)) - CASE_INTERNAL_FIELDS
    allowed = allowed_fields(record.payload, PUBLIC)
    if not allowed:
        return None, present
    published = {name: value for name, value in case_claims(record, allowed).items()
                 if name in allowed or name in _ARRAYS}
    return {**published, "record_id": record.record_id}, present - allowed


def publication_csv(records: Sequence[CaseRecord]) -> tuple[str, Withheld]:
    """The HXL-tagged CSV of what the cases' consent lets anyone see, and what it withheld."""
    published: list[dict[str, Any]] = []
    left_out, withheld = 0, Counter[str]()
    for record in records:
        payload, held_back = published_payload(record)
        withheld.update(held_back if payload is not None else ())
        if payload is None:
            left_out += 1
        else:
            published.append(payload)
    columns = _columns(published, without=CASE_INTERNAL_FIELDS)
    rows = [[_cell(_lookup(payload, column)) for column in columns] for payload in published]
    return _csv(columns, rows, hxl=True), Withheld(left_out, dict(withheld))


def cases_json(records: Sequence[CaseRecord]) -> str:
    wire = [record_to_wire(record) for record in records]
    return json.dumps(wire, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def case_json_schema() -> str:
    return json.dumps(json_schema(RecordKind.CASE), ensure_ascii=False, indent=2,
                      sort_keys=True) + "\n"


@dataclass(frozen=True)
class ExportedText:
    text: str
    withheld: Withheld | None = None
    """What a publication (HXL) left out; ``None`` for a whole copy."""


def export_text(records: Sequence[CaseRecord], export_format: ExportFormat, *,
                hxl: bool = False) -> ExportedText:
    """The file's text: every case whole (CSV, JSON), the schema, or with ``hxl`` (CSV only)
    the publication of what consent allows anyone to see."""
    if export_format is ExportFormat.CSV and hxl:
        return ExportedText(*publication_csv(records))
    if export_format is ExportFormat.CSV:
        return ExportedText(cases_csv(records))
    if export_format is ExportFormat.JSON:
        return ExportedText(cases_json(records))
    return ExportedText(case_json_schema())
