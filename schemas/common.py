"""Building blocks shared by every record model.

:class:`WireModel` is the base of every model that travels: it keeps fields it does not know
(a newer peer's additions survive a round trip unchanged) and refuses any value Matrix would
refuse — floats, integers beyond ±(2**53 - 1), non-string object keys — even in those kept fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from schemas.errors import quote_if_safe
from schemas.ids import RecordId

MAX_SAFE_INTEGER = 2**53 - 1

ORG_ID_PATTERN = r"^o[a-z2-7]{20,40}$"
"""``o`` + lowercase unpadded base32 of a key fingerprint (see ``federation.identity``)."""

MATRIX_USER_ID_PATTERN = r"^@[^:\s]+:\S+$"
LANGUAGE_TAG_PATTERN = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"
BASE64URL_PATTERN = r"^[A-Za-z0-9_-]*$"
URL_PATTERN = r"^https?://\S+$"


class WireModel(BaseModel):
    """Base of every payload and record model."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    @model_validator(mode="after")
    def _kept_fields_are_wire_safe(self) -> Self:
        for key, value in (self.__pydantic_extra__ or {}).items():
            problem = wire_value_problem(value)
            if problem is not None:
                raise ValueError(f"unknown field {quote_if_safe(key)}: {problem}")
        return self


def wire_value_problem(value: object) -> str | None:
    """Why ``value`` cannot travel as Matrix event content, or ``None`` if it can."""
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_SAFE_INTEGER else "integer outside ±(2**53 - 1)"
    if isinstance(value, float):
        return "floats are not allowed; use an integer or a string"
    if isinstance(value, list):
        return next(filter(None, map(wire_value_problem, value)), None)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return "object keys must be strings"
        return next(filter(None, map(wire_value_problem, value.values())), None)
    return f"{type(value).__name__} is not a JSON value"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


T = TypeVar("T")


def _no_duplicates(values: list[T]) -> list[T]:
    seen: list[T] = []
    for value in values:
        if value in seen:
            raise ValueError("must not contain the same entry twice")
        seen.append(value)
    return values


class _NoDuplicates:
    """Metadata for list fields whose entries must be distinct (``uniqueItems`` in JSON Schema)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_no_duplicates, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "uniqueItems": True}


NoDuplicates = _NoDuplicates()
"""Use as ``Annotated[list[X], NoDuplicates]``."""

Name = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=300), AfterValidator(_not_blank)
]
ShortText = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=2_000), AfterValidator(_not_blank)
]
LongText = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=100_000), AfterValidator(_not_blank)
]
Token = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
"""A short machine identifier (scheme names, key ids, opaque handles)."""

OrgId = Annotated[StrictStr, StringConstraints(pattern=ORG_ID_PATTERN)]
CoalitionId = Annotated[StrictStr, StringConstraints(pattern=r"^![!-~]{1,254}$")]
"""A coalition's id: the Matrix id of the room it was made in (decision 0032)."""
MatrixUserId = Annotated[
    StrictStr, StringConstraints(pattern=MATRIX_USER_ID_PATTERN, max_length=255)
]
LanguageTag = Annotated[StrictStr, StringConstraints(pattern=LANGUAGE_TAG_PATTERN, max_length=35)]
Sha256Hex = Annotated[StrictStr, StringConstraints(pattern=SHA256_HEX_PATTERN)]
Base64Url = Annotated[StrictStr, StringConstraints(pattern=BASE64URL_PATTERN, max_length=65_536)]
Url = Annotated[StrictStr, StringConstraints(pattern=URL_PATTERN, max_length=2_000)]

Count = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INTEGER)]
PositiveInt = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INTEGER)]
Version = PositiveInt
UnixSeconds = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INTEGER)]


class RecordRef(WireModel):
    """Points at another record: its issuer and record id (all versions)."""

    issuer: OrgId
    record_id: RecordId


JsonObject = dict[str, Any]
