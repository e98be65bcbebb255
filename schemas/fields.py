"""Field paths for selective disclosure, and the consent classification of case fields.

Path syntax
-----------
A path names a payload field, dot-separated, relative to the payload (never the record header:
issuer, record id, version, kind, schema and issue time are always visible to a recipient).

- ``country`` — a top-level payload field, disclosed as one value (even when the value is an
  object or a list of strings, such as ``violations``).
- ``victims.name`` — the key ``name`` inside *every* object of the array ``victims``. An array
  whose elements are objects is never one disclosure: each key of each element is its own
  disclosure, and the array itself is shown (as objects holding only the disclosed keys)
  whenever any of its keys is disclosed. A recipient then learns how many elements there are.

Only fields declared by this version's models have paths. Fields kept from a newer peer's
version are not disclosable by this node: it cannot know what they mean.

Case fields are classified in :data:`CASE_FIELD_GROUPS` for the consent gate.
:data:`CASE_INTERNAL_FIELDS` (the consent decision itself and the risk level) never leave the
issuing node in any disclosure.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from schemas.records import PAYLOAD_CLASSES, RecordKind


class FieldGroup(StrEnum):
    CONTEXT = "context"
    """Non-identifying facts that aggregates and the SDG report need."""
    LOCATION = "location"
    """Where it happened, more precisely than the country."""
    IDENTITY = "identity"
    """Names of people and collectives, in every script."""
    NARRATIVE = "narrative"
    """Free text, which may identify anyone it describes."""


CASE_INTERNAL_FIELDS: frozenset[str] = frozenset(
    {"consent_level", "consent_partners", "consent_coalitions", "risk_level"}
)

CASE_FIELD_GROUPS: Mapping[str, FieldGroup] = types.MappingProxyType(
    {
        "incident_date": FieldGroup.CONTEXT,
        "country": FieldGroup.CONTEXT,
        "violations": FieldGroup.CONTEXT,
        "victims.kind": FieldGroup.CONTEXT,
        "victims.groups": FieldGroup.CONTEXT,
        "victims.gender": FieldGroup.CONTEXT,
        "perpetrators.category": FieldGroup.CONTEXT,
        "impunity_status": FieldGroup.CONTEXT,
        "verification_status": FieldGroup.CONTEXT,
        "independent_sources": FieldGroup.CONTEXT,
        "place": FieldGroup.LOCATION,
        "victims.name": FieldGroup.IDENTITY,
        "victims.native_name": FieldGroup.IDENTITY,
        "victims.romanised_name": FieldGroup.IDENTITY,
        "perpetrators.name": FieldGroup.IDENTITY,
        "title": FieldGroup.NARRATIVE,
        "narrative": FieldGroup.NARRATIVE,
        "impact_story": FieldGroup.NARRATIVE,
        "sources": FieldGroup.NARRATIVE,
        "victims.description": FieldGroup.NARRATIVE,
        "perpetrators.description": FieldGroup.NARRATIVE,
    }
)

_INTERNAL_FIELDS: Mapping[RecordKind, frozenset[str]] = {RecordKind.CASE: CASE_INTERNAL_FIELDS}


def split_path(path: str) -> tuple[str, str | None]:
    """``"victims.name"`` -> ``("victims", "name")``; ``"country"`` -> ``("country", None)``."""
    field, _, key = path.partition(".")
    return field, key or None


def _element_model(annotation: Any) -> type[BaseModel] | None:
    """The model class ``M`` if ``annotation`` is ``list[M]``, else ``None``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not list:
        return None
    (element,) = get_args(annotation)
    return element if isinstance(element, type) and issubclass(element, BaseModel) else None


def _paths_of(model: type[BaseModel], internal: frozenset[str]) -> tuple[str, ...]:
    paths: list[str] = []
    for name, field in model.model_fields.items():
        if name in internal:
            continue
        element = _element_model(field.annotation)
        if element is None:
            paths.append(name)
        else:
            paths.extend(f"{name}.{key}" for key in element.model_fields)
    return tuple(paths)


DISCLOSABLE_PATHS: Mapping[RecordKind, tuple[str, ...]] = types.MappingProxyType(
    {
        kind: _paths_of(model, _INTERNAL_FIELDS.get(kind, frozenset()))
        for kind, model in PAYLOAD_CLASSES.items()
    }
)


def disclosable_paths(kind: RecordKind) -> tuple[str, ...]:
    """Every path of ``kind`` that may be disclosed, in model field order."""
    return DISCLOSABLE_PATHS[kind]


def internal_fields(kind: RecordKind) -> frozenset[str]:
    """Payload fields of ``kind`` that never leave the issuing node."""
    return _INTERNAL_FIELDS.get(kind, frozenset())
