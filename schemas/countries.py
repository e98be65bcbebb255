"""ISO 3166-1 alpha-2: the 249 officially assigned country codes.

User-assigned and reserved codes (XK, EU, UK, ...) are not accepted: other members' tools and
aggregates must be able to rely on the official list.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StrictStr, WithJsonSchema

from schemas.errors import quote_if_safe

COUNTRY_CODES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes is easier to check than a list literal
)


def is_country_code(value: object) -> bool:
    return isinstance(value, str) and value in COUNTRY_CODES


def _check_country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError(f"{quote_if_safe(value)} is not an ISO 3166-1 alpha-2 country code")
    return value


CountryCode = Annotated[
    StrictStr,
    AfterValidator(_check_country),
    WithJsonSchema({"type": "string", "enum": sorted(COUNTRY_CODES)}),
]

