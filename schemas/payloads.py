"""Payloads of every record kind except the case (which has :mod:`schemas.case`).

Kinds and where they travel (docs/architecture.md §4, §6): campaign, proposal, endorsement (a
response to a
proposal), sign-on (a signature on a letter), alert and alert-ack, dedup-query and dedup-answer,
aggregate, retraction, member-profile, resource; campaign-post (an update, task, key message,
timeline entry, leave or close vote inside a campaign room) and letter (a sign-on letter).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    model_validator,
)

from schemas.codes import (
    AckStatusCode,
    AlertAskCode,
    AlertStatusCode,
    AlertTypeCode,
    CampaignPostTypeCode,
    CampaignRoleCode,
    CampaignStatusCode,
    CampaignTargetTypeCode,
    CapabilityCode,
    ProposalResponseCode,
    ResourceTypeCode,
    RetractionReasonCode,
    ScoreBandCode,
)
from schemas.common import (
    Base64Url,
    Count,
    LanguageTag,
    LongText,
    MatrixUserId,
    Name,
    NoDuplicates,
    OrgId,
    PositiveInt,
    RecordRef,
    Sha256Hex,
    ShortText,
    Token,
    UnixSeconds,
    Url,
    Version,
    WireModel,
)
from schemas.countries import CountryCode
from schemas.dates import DateSpanText, PartialDateText
from schemas.typology import RiskLevel

Countries = Annotated[list[CountryCode], NoDuplicates]
MatrixRoomId = Annotated[StrictStr, StringConstraints(pattern=r"^![^:\s]{1,255}(:[^\s]{1,255})?$")]
"""A Matrix room id (room version 12 ids have no server part)."""


class CampaignTarget(WireModel):
    """Who a campaign wants to move: an institution, a company, a government..."""

    name: Name
    target_type: CampaignTargetTypeCode
    country: CountryCode | None = None


class Campaign(WireModel):
    """A joint (or own) campaign, as announced to the coalition for the overlap check."""

    title: ShortText
    goal: LongText | None = None
    targets: list[CampaignTarget] = Field(default_factory=list)
    countries: Countries = Field(default_factory=list)
    themes: list[ShortText] = Field(default_factory=list)
    period: DateSpanText | None = None
    status: CampaignStatusCode = "active"
    proposal: RecordRef | None = None
    participants: Annotated[list[OrgId], NoDuplicates] = Field(default_factory=list)
    room_id: MatrixRoomId | None = None
    """The campaign room, for its participants (sealed like every field)."""


class Proposal(WireModel):
    """An invitation to run a joint campaign, open for responses until ``deadline``."""

    title: ShortText
    goal: LongText
    targets: Annotated[list[CampaignTarget], Field(min_length=1)]
    countries: Countries = Field(default_factory=list)
    themes: list[ShortText] = Field(default_factory=list)
    timeframe: DateSpanText | None = None
    asks: Annotated[list[CampaignRoleCode], NoDuplicates] = Field(default_factory=list)
    min_organisations: PositiveInt
    deadline: UnixSeconds


class Endorsement(WireModel):
    """An organisation's response to a proposal: join (taking roles), endorse only, or decline."""

    proposal: RecordRef
    response: ProposalResponseCode
    roles: Annotated[list[CampaignRoleCode], NoDuplicates] = Field(default_factory=list)
    reason: ShortText | None = None
    contacts: list[MatrixUserId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _roles_only_when_joining(self) -> Self:
        if self.roles and self.response != "join":
            raise ValueError("roles: only an organisation that joins takes roles")
        return self


class SignOn(WireModel):
    """An organisation's signature on a letter: which letter, which exact text, who signed."""

    letter: RecordRef
    letter_version: Version
    letter_sha256: Sha256Hex
    signatory_name: Name
    signatory_role: ShortText | None = None
    organisation_name: Name | None = None
    signing_kid: Token | None = None
    signature: Base64Url | None = None
    """Ed25519 signature by the organisation's key ``signing_kid`` over the canonical JSON of the
    signatory statement (``node.features.campaigns.letters``), so the letter's appendix can be
    checked by anyone."""


class Letter(WireModel):
    """A sign-on letter: open for signatures until ``deadline``, to the coalition or a campaign."""

    title: ShortText
    text: LongText
    deadline: UnixSeconds
    campaign: RecordRef | None = None
    """The campaign whose participants are the audience; none: the whole coalition."""


class CampaignPost(WireModel):
    """Something posted in a campaign room by a participant."""

    campaign: RecordRef
    post_type: CampaignPostTypeCode
    title: ShortText | None = None
    text: LongText | None = None
    owner: OrgId | None = None
    due: PartialDateText | None = None
    targets: list[Name] = Field(default_factory=list)


MAX_ALERT_UPDATES = 100


class AlertUpdate(WireModel):
    """One update of an alert, signed with it: the status it set, when, by whom, and why.

    ``seq`` is its order number (1, 2, ...): update ``n`` first travels in version ``n + 1`` of
    the alert, and every later version carries it again, so a member that missed a version still
    gets the whole history."""

    seq: PositiveInt
    status: AlertStatusCode
    text: LongText | None = None
    reason: ShortText | None = None
    """Why a closed alert was reopened."""
    at: UnixSeconds
    by: OrgId


def _ascending_updates(updates: list[AlertUpdate]) -> list[AlertUpdate]:
    seqs = [update.seq for update in updates]
    if seqs != sorted(set(seqs)):
        raise ValueError("order numbers (seq) must be distinct and ascending")
    return updates


class Alert(WireModel):
    """An urgent alert: someone was arrested, disappeared, attacked... and what help is asked.

    ``text`` is the alert as first sent and never changes; ``status`` is the latest update's."""

    alert_type: AlertTypeCode
    urgency: RiskLevel
    country: CountryCode
    place: ShortText | None = None
    asks: Annotated[list[AlertAskCode], NoDuplicates] = Field(default_factory=list)
    case: RecordRef | None = None
    text: LongText
    status: AlertStatusCode = "active"
    updates: Annotated[list[AlertUpdate], Field(max_length=MAX_ALERT_UPDATES),
                       AfterValidator(_ascending_updates)] = Field(default_factory=list)


class AlertOffer(WireModel):
    """One kind of help a member offered, and when it first offered it."""

    capability: CapabilityCode
    at: UnixSeconds


def _one_offer_per_capability(offered: list[AlertOffer]) -> list[AlertOffer]:
    if len({offer.capability for offer in offered}) != len(offered):
        raise ValueError("must not offer the same capability twice")
    return offered


class AlertAck(WireModel):
    """A member's acknowledgement of an alert, and what it can help with.

    The record's issue time is when the member answered (each answer is a new version).
    ``offers`` accumulate over the member's answers; ``offered`` gives each its time (older
    peers send ``offers`` alone)."""

    alert: RecordRef
    status: AckStatusCode
    offers: Annotated[list[CapabilityCode], NoDuplicates] = Field(default_factory=list)
    offered: Annotated[list[AlertOffer], AfterValidator(_one_offer_per_capability)] = Field(
        default_factory=list)
    note: ShortText | None = None


class DedupQuery(WireModel):
    """Hardened Bloom-filter encodings of a draft case's identifying features (docs/architecture.md
    §12)."""

    scheme: Token
    linkage_key_id: Token
    encodings: Annotated[dict[Token, Base64Url], Field(min_length=1)]
    more_encodings: Annotated[list[dict[Token, Base64Url]], Field(max_length=7)] = Field(
        default_factory=list)
    """The encodings of the draft's other defenders (one object per defender)."""


class DedupAnswer(WireModel):
    """A member's answer to a dedup query: never any record content."""

    query: RecordRef
    possible_match: StrictBool
    score_band: ScoreBandCode
    handle: Token | None = None
    contact: ShortText | None = None
    refused: ShortText | None = None
    """Why the query was not compared (rate limit, malformed, unknown key); no match then."""
    handshake: Literal["accepted", "declined"] | None = None
    """A staff member's decision on a contact request about ``handle``."""

    @model_validator(mode="after")
    def _band_agrees_with_match(self) -> Self:
        if self.possible_match != (self.score_band != "none"):
            raise ValueError("score_band: must be 'none' exactly when there is no possible match")
        if self.refused is not None and self.possible_match:
            raise ValueError("refused: a refused query has no possible match")
        if self.possible_match and self.handle is None:
            raise ValueError("handle: a possible match needs a handle")
        return self


SuppressedCount = Literal["<5"]
"""A count from 1 to 4, not shown."""
WithheldCount = Literal["withheld"]
"""A count of 5 or more, not shown so that no ``"<5"`` count can be worked out from totals."""


class AggregateCell(WireModel):
    """One count. ``dimensions`` name the cell: {"country": "CO", "year": "2024", ...}.

    A dimension left out of a cell is summed over (a total).
    """

    dimensions: dict[Token, Token]
    count: Count | SuppressedCount | WithheldCount


class OverlapReport(WireModel):
    """How many of the issuer's cases the members before it (by org id) also hold, estimated
    with the de-duplication matching (``node.features.figures.overlap``): ``estimate`` within
    ``low``..``high``.
    Small counts are published as in the cells: never a count from 1 to 4."""

    with_members: Annotated[list[OrgId], NoDuplicates]
    as_of: UnixSeconds
    every_case_checked: StrictBool
    estimate: Count | SuppressedCount
    low: Count
    high: Count

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.low > self.high:
            raise ValueError("low: must not exceed high")
        return self


class Aggregate(WireModel):
    """Counts over the issuer's own cases, with small cells suppressed (docs/architecture.md §14).

    ``withheld_tables`` names tables (the ``table`` dimension) published with their totals
    only: a count of theirs that is not listed is unknown, not zero. ``other_rows`` lists, per
    table, the countries counted together in its ``country: "other"`` row. ``overlap``, when
    present, estimates how many of these cases earlier members count too.
    """

    typology_version: Token
    period: DateSpanText
    as_of: UnixSeconds
    cells: list[AggregateCell] = Field(default_factory=list)
    withheld_tables: Annotated[list[Token], NoDuplicates] = Field(default_factory=list)
    other_rows: dict[Token, Countries] = Field(default_factory=dict)
    overlap: OverlapReport | None = None


class Retraction(WireModel):
    """A signed tombstone: recipients delete what they hold of ``target`` and keep this."""

    target: RecordRef
    reason: RetractionReasonCode
    note: ShortText | None = None


class OrgProfile(WireModel):
    """What a member says about itself in the coalition directory (``member-profile``)."""

    name: Name
    country: CountryCode
    countries_of_work: Countries = Field(default_factory=list)
    capabilities: Annotated[list[CapabilityCode], NoDuplicates] = Field(default_factory=list)
    description: LongText | None = None
    languages: list[LanguageTag] = Field(default_factory=list)
    contact: ShortText | None = None
    website: Url | None = None


class Resource(WireModel):
    """Something useful shared with the coalition: a guide, a template, a contact, a service."""

    title: ShortText
    resource_type: ResourceTypeCode
    description: LongText | None = None
    countries: Countries = Field(default_factory=list)
    languages: list[LanguageTag] = Field(default_factory=list)
    url: Url | None = None



Signature = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
"""An Ed25519 signature, unpadded base64url."""
KeyId = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class CountersignRequest(WireModel):
    """A member asks another to attest that a file existed now (``countersign-request``). Only a
    salted commitment to the file's SHA-256 travels: the witness learns nothing about the file,
    not even whether it is one it has seen."""

    commitment: Sha256Hex


class Countersignature(WireModel):
    """The witness's answer (``countersignature``): its own signed statement
    (``minga.countersignature/1``: commitment, holder, time, witness, key id), so that the holder
    can keep it in the file's custody log and anyone can check it with the witness's key."""

    request: RecordRef
    commitment: Sha256Hex
    attested_at: UnixSeconds
    kid: KeyId
    signature: Signature
