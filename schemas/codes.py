"""Model field types holding a typology code (see :mod:`schemas.typology`).

Each is a plain ``str`` in Python and on the wire, validated against one vocabulary, and an
``enum`` in the exported JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, StrictStr, WithJsonSchema

from schemas.errors import quote_if_safe
from schemas.typology import Vocabulary, codes, is_code


def _checker(vocabulary: Vocabulary) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not is_code(vocabulary, value):
            raise ValueError(f"{quote_if_safe(value)} is not a {vocabulary.value} code")
        return value

    return check


def _schema(vocabulary: Vocabulary) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(codes(vocabulary))})


def _code(vocabulary: Vocabulary) -> tuple[AfterValidator, WithJsonSchema]:
    return AfterValidator(_checker(vocabulary)), _schema(vocabulary)


_V = Vocabulary

ViolationCode = Annotated[StrictStr, *_code(_V.VIOLATION)]
VictimKindCode = Annotated[StrictStr, *_code(_V.VICTIM_KIND)]
VictimGroupCode = Annotated[StrictStr, *_code(_V.VICTIM_GROUP)]
GenderCode = Annotated[StrictStr, *_code(_V.GENDER)]
PerpetratorCategoryCode = Annotated[StrictStr, *_code(_V.PERPETRATOR_CATEGORY)]
ImpunityStatusCode = Annotated[StrictStr, *_code(_V.IMPUNITY_STATUS)]
VerificationStatusCode = Annotated[StrictStr, *_code(_V.VERIFICATION_STATUS)]
AlertTypeCode = Annotated[StrictStr, *_code(_V.ALERT_TYPE)]
AlertAskCode = Annotated[StrictStr, *_code(_V.ALERT_ASK)]
AlertStatusCode = Annotated[StrictStr, *_code(_V.ALERT_STATUS)]
AckStatusCode = Annotated[StrictStr, *_code(_V.ACK_STATUS)]
CapabilityCode = Annotated[StrictStr, *_code(_V.CAPABILITY)]
CampaignTargetTypeCode = Annotated[StrictStr, *_code(_V.CAMPAIGN_TARGET_TYPE)]
CampaignRoleCode = Annotated[StrictStr, *_code(_V.CAMPAIGN_ROLE)]
CampaignStatusCode = Annotated[StrictStr, *_code(_V.CAMPAIGN_STATUS)]
CampaignPostTypeCode = Annotated[StrictStr, *_code(_V.CAMPAIGN_POST_TYPE)]
ProposalResponseCode = Annotated[StrictStr, *_code(_V.PROPOSAL_RESPONSE)]
RetractionReasonCode = Annotated[StrictStr, *_code(_V.RETRACTION_REASON)]
ResourceTypeCode = Annotated[StrictStr, *_code(_V.RESOURCE_TYPE)]
ScoreBandCode = Annotated[StrictStr, *_code(_V.SCORE_BAND)]
