"""The case: one documented incident against one or more defenders (``minga.case/1``)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from schemas.codes import (
    GenderCode,
    ImpunityStatusCode,
    PerpetratorCategoryCode,
    VerificationStatusCode,
    VictimGroupCode,
    VictimKindCode,
    ViolationCode,
)
from schemas.common import (
    CoalitionId,
    Count,
    LongText,
    Name,
    NoDuplicates,
    OrgId,
    ShortText,
    WireModel,
)
from schemas.countries import CountryCode
from schemas.dates import DateSpanText
from schemas.typology import ConsentLevel, RiskLevel


class Victim(WireModel):
    """A person or a collective (community, organisation, movement) that suffered the incident.

    ``name`` is the name as usually written; ``native_name`` the name in its own script when that
    differs (Arabic, Amharic, ...); ``romanised_name`` its Latin-script transliteration.
    """

    kind: VictimKindCode
    name: Name | None = None
    native_name: Name | None = None
    romanised_name: Name | None = None
    groups: Annotated[list[VictimGroupCode], NoDuplicates] = Field(default_factory=list)
    gender: GenderCode | None = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _gender_only_for_people(self) -> Self:
        if self.gender is not None and self.kind != "individual":
            raise ValueError("gender: only an individual person has a gender here")
        return self


class Perpetrator(WireModel):
    category: PerpetratorCategoryCode
    name: Name | None = None
    description: LongText | None = None


class Case(WireModel):
    title: ShortText | None = None
    incident_date: DateSpanText
    country: CountryCode
    place: ShortText | None = None
    narrative: LongText
    violations: Annotated[list[ViolationCode], NoDuplicates, Field(min_length=1)]
    victims: Annotated[list[Victim], Field(min_length=1)]
    perpetrators: list[Perpetrator] = Field(default_factory=list)
    impunity_status: ImpunityStatusCode = "unknown"
    verification_status: VerificationStatusCode = "unverified"
    independent_sources: Count = 0
    sources: list[ShortText] = Field(default_factory=list)
    consent_level: ConsentLevel
    consent_partners: Annotated[list[OrgId], NoDuplicates] = Field(default_factory=list)
    # The coalitions the defender consented to sharing within (decision 0032). None: a case
    # from before that decision, whose consent meant the one coalition its node was in.
    consent_coalitions: Annotated[list[CoalitionId], NoDuplicates] | None = None
    risk_level: RiskLevel
    impact_story: LongText | None = None

    @model_validator(mode="after")
    def _partners_match_consent(self) -> Self:
        named = self.consent_level == ConsentLevel.NAMED_PARTNERS
        if named and not self.consent_partners:
            raise ValueError("consent_partners: named_partners consent needs at least one partner")
        if not named and self.consent_partners:
            raise ValueError("consent_partners: only allowed with named_partners consent")
        return self
