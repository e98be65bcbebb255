"""Records: the signed unit that members share (docs/architecture.md §4).

A record is a header — issuer org id, record id (UUIDv7), version, kind, payload schema id,
issue time in Unix seconds — around a payload. The wire form is the JSON object produced by
:func:`record_to_wire`; :func:`parse_record` is the one way back.

Schema ids are ``minga.<kind>/<major>``. Within a major version a newer peer may add fields;
they are kept and re-emitted unchanged. A different major version is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Generic, Literal, Self, TypeAlias, TypeVar, cast

from pydantic import Field, ValidationError, model_validator

from schemas.case import Case
from schemas.common import JsonObject, OrgId, UnixSeconds, Version, WireModel
from schemas.errors import RecordValidationError, quote_if_safe
from schemas.ids import RecordId
from schemas.payloads import (
    Aggregate,
    Alert,
    AlertAck,
    Campaign,
    CampaignPost,
    Countersignature,
    CountersignRequest,
    DedupAnswer,
    DedupQuery,
    Endorsement,
    Letter,
    OrgProfile,
    Proposal,
    Resource,
    Retraction,
    SignOn,
)


class RecordKind(StrEnum):
    CASE = "case"
    CAMPAIGN = "campaign"
    PROPOSAL = "proposal"
    ENDORSEMENT = "endorsement"
    SIGN_ON = "sign-on"
    ALERT = "alert"
    ALERT_ACK = "alert-ack"
    DEDUP_QUERY = "dedup-query"
    DEDUP_ANSWER = "dedup-answer"
    AGGREGATE = "aggregate"
    RETRACTION = "retraction"
    MEMBER_PROFILE = "member-profile"
    RESOURCE = "resource"
    CAMPAIGN_POST = "campaign-post"
    LETTER = "letter"
    COUNTERSIGN_REQUEST = "countersign-request"
    COUNTERSIGNATURE = "countersignature"


SCHEMA_MAJOR = 1
_KIND_VALUES = frozenset(kind.value for kind in RecordKind)


def schema_id(kind: RecordKind) -> str:
    return f"minga.{kind.value}/{SCHEMA_MAJOR}"


PayloadT = TypeVar("PayloadT", bound=WireModel)


class RecordBase(WireModel, Generic[PayloadT]):
    """The header every record carries. Subclasses fix ``kind``, ``schema`` and the payload."""

    issuer: OrgId
    record_id: RecordId
    version: Version
    kind: str
    schema_id: str = Field(alias="schema")
    issued_at: UnixSeconds
    payload: PayloadT

    @property
    def record_kind(self) -> RecordKind:
        return RecordKind(self.kind)


class CaseRecord(RecordBase[Case]):
    kind: Literal["case"]
    schema_id: Literal["minga.case/1"] = Field(alias="schema")


class CampaignRecord(RecordBase[Campaign]):
    kind: Literal["campaign"]
    schema_id: Literal["minga.campaign/1"] = Field(alias="schema")


class ProposalRecord(RecordBase[Proposal]):
    kind: Literal["proposal"]
    schema_id: Literal["minga.proposal/1"] = Field(alias="schema")


class EndorsementRecord(RecordBase[Endorsement]):
    kind: Literal["endorsement"]
    schema_id: Literal["minga.endorsement/1"] = Field(alias="schema")


class SignOnRecord(RecordBase[SignOn]):
    kind: Literal["sign-on"]
    schema_id: Literal["minga.sign-on/1"] = Field(alias="schema")


class AlertRecord(RecordBase[Alert]):
    kind: Literal["alert"]
    schema_id: Literal["minga.alert/1"] = Field(alias="schema")


class AlertAckRecord(RecordBase[AlertAck]):
    kind: Literal["alert-ack"]
    schema_id: Literal["minga.alert-ack/1"] = Field(alias="schema")


class DedupQueryRecord(RecordBase[DedupQuery]):
    kind: Literal["dedup-query"]
    schema_id: Literal["minga.dedup-query/1"] = Field(alias="schema")


class DedupAnswerRecord(RecordBase[DedupAnswer]):
    kind: Literal["dedup-answer"]
    schema_id: Literal["minga.dedup-answer/1"] = Field(alias="schema")


class AggregateRecord(RecordBase[Aggregate]):
    kind: Literal["aggregate"]
    schema_id: Literal["minga.aggregate/1"] = Field(alias="schema")


class RetractionRecord(RecordBase[Retraction]):
    kind: Literal["retraction"]
    schema_id: Literal["minga.retraction/1"] = Field(alias="schema")

    @model_validator(mode="after")
    def _retracts_own_record(self) -> Self:
        if self.payload.target.issuer != self.issuer:
            raise ValueError("payload.target.issuer: only the issuer may retract its records")
        return self


class MemberProfileRecord(RecordBase[OrgProfile]):
    kind: Literal["member-profile"]
    schema_id: Literal["minga.member-profile/1"] = Field(alias="schema")


class ResourceRecord(RecordBase[Resource]):
    kind: Literal["resource"]
    schema_id: Literal["minga.resource/1"] = Field(alias="schema")


class CampaignPostRecord(RecordBase[CampaignPost]):
    kind: Literal["campaign-post"]
    schema_id: Literal["minga.campaign-post/1"] = Field(alias="schema")


class LetterRecord(RecordBase[Letter]):
    kind: Literal["letter"]
    schema_id: Literal["minga.letter/1"] = Field(alias="schema")


class CountersignRequestRecord(RecordBase[CountersignRequest]):
    kind: Literal["countersign-request"]
    schema_id: Literal["minga.countersign-request/1"] = Field(alias="schema")


class CountersignatureRecord(RecordBase[Countersignature]):
    kind: Literal["countersignature"]
    schema_id: Literal["minga.countersignature/1"] = Field(alias="schema")


Record: TypeAlias = (
    CaseRecord
    | CampaignRecord
    | ProposalRecord
    | EndorsementRecord
    | SignOnRecord
    | AlertRecord
    | AlertAckRecord
    | DedupQueryRecord
    | DedupAnswerRecord
    | AggregateRecord
    | RetractionRecord
    | MemberProfileRecord
    | ResourceRecord
    | CampaignPostRecord
    | LetterRecord
    | CountersignRequestRecord
    | CountersignatureRecord
)

Payload: TypeAlias = (
    Case
    | Campaign
    | Proposal
    | Endorsement
    | SignOn
    | Alert
    | AlertAck
    | DedupQuery
    | DedupAnswer
    | Aggregate
    | Retraction
    | OrgProfile
    | Resource
    | CampaignPost
    | Letter
    | CountersignRequest
    | Countersignature
)

RECORD_CLASSES: Mapping[RecordKind, type[RecordBase[Any]]] = MappingProxyType(
    {
        RecordKind.CASE: CaseRecord,
        RecordKind.CAMPAIGN: CampaignRecord,
        RecordKind.PROPOSAL: ProposalRecord,
        RecordKind.ENDORSEMENT: EndorsementRecord,
        RecordKind.SIGN_ON: SignOnRecord,
        RecordKind.ALERT: AlertRecord,
        RecordKind.ALERT_ACK: AlertAckRecord,
        RecordKind.DEDUP_QUERY: DedupQueryRecord,
        RecordKind.DEDUP_ANSWER: DedupAnswerRecord,
        RecordKind.AGGREGATE: AggregateRecord,
        RecordKind.RETRACTION: RetractionRecord,
        RecordKind.MEMBER_PROFILE: MemberProfileRecord,
        RecordKind.RESOURCE: ResourceRecord,
        RecordKind.CAMPAIGN_POST: CampaignPostRecord,
        RecordKind.LETTER: LetterRecord,
        RecordKind.COUNTERSIGN_REQUEST: CountersignRequestRecord,
        RecordKind.COUNTERSIGNATURE: CountersignatureRecord,
    }
)

PAYLOAD_CLASSES: Mapping[RecordKind, type[WireModel]] = MappingProxyType(
    {
        RecordKind.CASE: Case,
        RecordKind.CAMPAIGN: Campaign,
        RecordKind.PROPOSAL: Proposal,
        RecordKind.ENDORSEMENT: Endorsement,
        RecordKind.SIGN_ON: SignOn,
        RecordKind.ALERT: Alert,
        RecordKind.ALERT_ACK: AlertAck,
        RecordKind.DEDUP_QUERY: DedupQuery,
        RecordKind.DEDUP_ANSWER: DedupAnswer,
        RecordKind.AGGREGATE: Aggregate,
        RecordKind.RETRACTION: Retraction,
        RecordKind.MEMBER_PROFILE: OrgProfile,
        RecordKind.RESOURCE: Resource,
        RecordKind.CAMPAIGN_POST: CampaignPost,
        RecordKind.LETTER: Letter,
        RecordKind.COUNTERSIGN_REQUEST: CountersignRequest,
        RecordKind.COUNTERSIGNATURE: Countersignature,
    }
)

_KIND_OF_PAYLOAD: Mapping[type[WireModel], RecordKind] = MappingProxyType(
    {payload_class: kind for kind, payload_class in PAYLOAD_CLASSES.items()}
)


def kind_of_payload(payload: WireModel) -> RecordKind:
    try:
        return _KIND_OF_PAYLOAD[type(payload)]
    except KeyError:
        raise TypeError(f"{type(payload).__name__} is not a record payload") from None


def parse_kind(value: object) -> RecordKind:
    """The record kind named by ``value``; :class:`RecordValidationError` on ``kind`` otherwise."""
    if value is None:
        raise RecordValidationError.single("kind", "missing")
    if not isinstance(value, str) or value not in _KIND_VALUES:
        raise RecordValidationError.single("kind", f"{quote_if_safe(value)} is not a record kind")
    return RecordKind(value)


def parse_record(data: object) -> Record:
    """Validate a wire record (a decoded JSON object) and return its typed model.

    Raises :class:`RecordValidationError` listing every ``field: problem``.
    """
    if not isinstance(data, Mapping):
        raise RecordValidationError.single("$", "a record must be a JSON object")
    kind = parse_kind(data.get("kind"))
    _check_schema_id(kind, data.get("schema"))
    try:
        return cast(Record, RECORD_CLASSES[kind].model_validate(data))
    except ValidationError as error:
        raise RecordValidationError.from_pydantic(error) from None


def parse_payload(kind: RecordKind, data: object) -> Payload:
    """Validate a payload alone (for example a case posted to the API); paths have no prefix."""
    try:
        return cast(Payload, PAYLOAD_CLASSES[kind].model_validate(data))
    except ValidationError as error:
        raise RecordValidationError.from_pydantic(error) from None


def build_record(
    issuer: str,
    payload: Payload,
    *,
    record_id: str,
    issued_at: int,
    version: int = 1,
) -> Record:
    """Wrap ``payload`` in a record header; the kind and schema id follow from the payload type."""
    kind = kind_of_payload(payload)
    header: dict[str, object] = {
        "issuer": issuer,
        "record_id": record_id,
        "version": version,
        "kind": kind.value,
        "schema": schema_id(kind),
        "issued_at": issued_at,
        "payload": payload,
    }
    try:
        return cast(Record, RECORD_CLASSES[kind].model_validate(header))
    except ValidationError as error:
        raise RecordValidationError.from_pydantic(error) from None


def record_to_wire(record: RecordBase[Any]) -> JsonObject:
    """The record as JSON-safe data (str/int/bool/None/list/dict only), unknown fields included."""
    return record.model_dump(mode="json", by_alias=True)


def payload_to_wire(payload: WireModel) -> JsonObject:
    return payload.model_dump(mode="json", by_alias=True)


def _check_schema_id(kind: RecordKind, value: object) -> None:
    if value is None:
        raise RecordValidationError.single("schema", "missing")
    if value != schema_id(kind):
        raise RecordValidationError.single(
            "schema",
            f"{quote_if_safe(value)} is not supported for kind {kind.value!r}; "
            f"this node reads {schema_id(kind)!r}",
        )
