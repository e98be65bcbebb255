"""JSON Schema (draft 2020-12) of every record kind, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.records import RECORD_CLASSES, RecordKind, schema_id

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: RecordKind) -> dict[str, Any]:
    """The JSON Schema of a whole wire record of ``kind`` (header and payload)."""
    generated = RECORD_CLASSES[kind].model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        **generated,
        "title": schema_id(kind),
        "description": f"A Minga {kind.value} record, schema {schema_id(kind)}.",
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """``{kind: JSON Schema}`` for every record kind."""
    return {kind.value: json_schema(kind) for kind in RecordKind}


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<kind>.schema.json`` for every kind into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind, schema in json_schemas().items():
        path = directory / f"{kind}.schema.json"
        text = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
