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

HXL. With ``hxl=True`` a second row holds Humanitarian Exchange Language hashtags, so HXL tools
(and HDX) understand the columns. Tags follow the HXL dictionary's core hashtags; numbered
columns repeat the same tag, in order:

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
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from node.core.store import StoreTransaction
from node.core.store.cases import MAX_PAGE
from node.features.cases.casebook import stored_record
from schemas.case import Case
from schemas.export import json_schema
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
    victims = max((len(case.victims) for case in cases), default=1)
    perpetrators = max((len(case.perpetrators) for case in cases), default=0)
    sources = max((len(case.sources) for case in cases), default=0)
    return [
        *_HEAD,
        *(f"victims[{i}].{key}" for i in range(victims) for key in _VICTIM_KEYS),
        *(f"perpetrators[{i}].{key}" for i in range(perpetrators) for key in _PERPETRATOR_KEYS),
        *_MIDDLE,
        *(f"sources[{i}]" for i in range(sources)),
        *_TAIL,
    ]


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


def cases_csv(records: Sequence[CaseRecord], *, hxl: bool = False) -> str:
    columns = csv_columns([record.payload for record in records])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    if hxl:
        writer.writerow([hxl_tag(column) for column in columns])
    for record in records:
        writer.writerow(case_row(record, columns))
    return out.getvalue()


def cases_json(records: Sequence[CaseRecord]) -> str:
    wire = [record_to_wire(record) for record in records]
    return json.dumps(wire, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def case_json_schema() -> str:
    return json.dumps(json_schema(RecordKind.CASE), ensure_ascii=False, indent=2,
                      sort_keys=True) + "\n"


def export_text(records: Sequence[CaseRecord], export_format: ExportFormat, *,
                hxl: bool = False) -> str:
    if export_format is ExportFormat.CSV:
        return cases_csv(records, hxl=hxl)
    if export_format is ExportFormat.JSON:
        return cases_json(records)
    return case_json_schema()
