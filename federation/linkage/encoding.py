"""Hardened Bloom-filter encodings (CLK family) of a case's identifying features.

An :class:`Encoding` holds four fields, each compact bytes (base64url on the wire, no floats):

``country``
    a 16-byte keyed tag of the ISO country code. Country is a hard feature: encodings of
    different countries never match, and every other field is hashed under a per-country subkey.
``name``
    up to :data:`MAX_NAMES` written forms of the defender's name (as usually written, native
    script, romanised; in scheme v2, the readings of each), each up to :data:`MAX_TOKENS`
    tokens. A token is one flag byte (initial or not), a :data:`SPELLING_BITS` Bloom filter of
    the padded bigrams of its spelling (in v2, exact keys for a Chinese family name, trigrams
    too for Chinese given-name syllables) and a :data:`SKELETON_BITS` filter of the padded
    bigrams and one-apart letter pairs of its consonant skeleton (see ``names``); an initial has
    only its opening bigram and no skeleton.
    Tokens and forms are sorted by their bytes, so the written order is not kept.
``date``
    a precision byte, then for each level from the day (if known) to the year: a count of point
    tags, a count of window tags, and those 8-byte keyed tags (see ``dates``).
``place``
    (optional) a :data:`PLACE_BITS` Bloom filter of the padded bigrams of the place's words.

The ``scheme`` (``tables.SCHEMES``) says how names were normalised before hashing: scheme v1
(decision 0004) or v2 (decision 0020: every script, naming-culture rules, and each token kind
hashed under its own subkey). Encodings of two schemes are never compared.

Layout: name = ``[forms] ([tokens] ([flags] spelling skeleton)*)*``; date = ``[precision]
([points] [windows] tag*)*``; all counts are single bytes. Anything else is refused with a
:class:`MalformedEncodingError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.linkage.cultures import name_forms
from federation.linkage.dates import LEVELS, DateLabels, Precision, date_labels
from federation.linkage.keys import LinkageKey, bloom_filter, keyed_tag
from federation.linkage.names import NameToken, name_tokens, place_words
from federation.linkage.tables import DATE_WINDOWS, SCHEME, SCHEME_V1, SCHEMES
from schemas.common import Name, ShortText
from schemas.countries import CountryCode
from schemas.dates import DateSpan, DateSpanText

SPELLING_BITS: Final = 256
SKELETON_BITS: Final = 128
PLACE_BITS: Final = 256
HASHES: Final = 2
COUNTRY_TAG_BYTES: Final = 16
DATE_TAG_BYTES: Final = 8
MAX_NAMES: Final = 4
MAX_TOKENS: Final = 8
MAX_TAGS_PER_LEVEL: Final = 12

SPELLING_BYTES: Final = SPELLING_BITS // 8
SKELETON_BYTES: Final = SKELETON_BITS // 8
PLACE_BYTES: Final = PLACE_BITS // 8
TOKEN_BYTES: Final = 1 + SPELLING_BYTES + SKELETON_BYTES
INITIAL_FLAG: Final = 1
TRIGRAM_KINDS: Final = ("cn-given",)
"""Scheme v2 token kinds whose spelling filter holds trigrams too: syllables so short that two
different ones share half their bigrams (sang, hong: "ng", "g_")."""

MAX_NAME_BYTES: Final = 1 + MAX_NAMES * (1 + MAX_TOKENS * TOKEN_BYTES)
MAX_DATE_BYTES: Final = 1 + len(LEVELS) * (2 + 2 * MAX_TAGS_PER_LEVEL * DATE_TAG_BYTES)
FIELD_MAX_BYTES: Final[Mapping[str, int]] = {
    "country": COUNTRY_TAG_BYTES,
    "name": MAX_NAME_BYTES,
    "date": MAX_DATE_BYTES,
    "place": PLACE_BYTES,
}
REQUIRED_FIELDS: Final = ("country", "name", "date")
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class MalformedEncodingError(ValueError):
    """An encoding (or one of its fields) is malformed or oversized; ``field`` names which."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class FeatureError(ValueError):
    """The features cannot be encoded (for example, a name without any letter)."""


class CaseFeatures(BaseModel):
    """The identifying features of one defender in one incident, as the node's case holds them.

    ``names`` are the written forms of the one defender's name: as usually written, in native
    script, romanised. A case about several defenders gives one set of features per defender.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    names: Annotated[list[Name], Field(min_length=1, max_length=MAX_NAMES)]
    date: DateSpanText | None = None
    place: ShortText | None = None
    country: CountryCode


@dataclass(frozen=True, slots=True)
class Encoding:
    """The encoded features of one defender in one incident; structure checked on creation."""

    key_id: str
    country: bytes
    name: bytes
    date: bytes
    place: bytes | None = None
    scheme: str = SCHEME

    def __post_init__(self) -> None:
        _check_structure(self)

    def wire_fields(self) -> dict[str, str]:
        """The ``encodings`` object of a ``minga.dedup-query/1`` payload."""
        fields = {"country": self.country, "name": self.name, "date": self.date}
        if self.place is not None:
            fields["place"] = self.place
        return {field: b64u_encode(value) for field, value in fields.items()}

    @classmethod
    def from_wire(
        cls, fields: Mapping[str, object], *, key_id: str, scheme: str = SCHEME
    ) -> Encoding:
        """Decode and check a received ``encodings`` object of ``scheme``;
        :class:`MalformedEncodingError`."""
        for field in fields:
            if field not in FIELD_MAX_BYTES:
                raise MalformedEncodingError(_field_label(field), "unknown encoding field")
        for field in REQUIRED_FIELDS:
            if field not in fields:
                raise MalformedEncodingError(field, "missing")
        decoded = {field: _decode_field(field, text) for field, text in fields.items()}
        return cls(
            key_id=key_id,
            country=decoded["country"],
            name=decoded["name"],
            date=decoded["date"],
            place=decoded.get("place"),
            scheme=scheme,
        )


def encode_case_features(
    features: CaseFeatures, key: LinkageKey, *, scheme: str = SCHEME
) -> Encoding:
    """Encode ``features`` under ``key`` in ``scheme``, with exactly the code queries and local
    indexes use."""
    if scheme not in SCHEMES:
        raise FeatureError(f"scheme: {scheme!r} is not one of {', '.join(SCHEMES)}")
    country = features.country
    span = DateSpan.parse(features.date) if features.date is not None else None
    place = _place_filter(features.place, key, country) if features.place is not None else None
    return Encoding(
        key_id=key.key_id,
        country=keyed_tag(key.subkey("country"), country, COUNTRY_TAG_BYTES),
        name=_encode_names(features.names, key, country, scheme),
        date=_encode_date(date_labels(span, *DATE_WINDOWS[scheme]), key, country),
        place=place,
        scheme=scheme,
    )


def _readings(names: Iterable[str], country: str, scheme: str) -> list[tuple[NameToken, ...]]:
    if scheme == SCHEME_V1:
        return [name_tokens(name) for name in names]
    return [form for name in names for form in name_forms(name, country)]


def _encode_names(names: Iterable[str], key: LinkageKey, country: str, scheme: str) -> bytes:
    forms: dict[bytes, None] = {}
    for tokens in _readings(names, country, scheme):
        if tokens and len(forms) < MAX_NAMES:
            encoded = sorted(_encode_token(t, key, country, scheme) for t in tokens[:MAX_TOKENS])
            forms[bytes([len(encoded)]) + b"".join(encoded)] = None
    if not forms:
        raise FeatureError("names: no name has any letter to compare")
    return bytes([len(forms)]) + b"".join(sorted(forms))


def _purpose(field: str, token: NameToken, scheme: str) -> str:
    """Scheme v1's subkey names as they were; v2's carry the scheme and the token's kind."""
    return field if scheme == SCHEME_V1 else f"{scheme}/{field}/{token.kind}"


def _encode_token(token: NameToken, key: LinkageKey, country: str, scheme: str) -> bytes:
    spelling_key = key.subkey(_purpose("name-spelling", token, scheme), country)
    skeleton = 0
    if token.is_initial:
        spelling = bloom_filter(spelling_key, initial_grams(token.spelling), SPELLING_BITS, HASHES)
    elif token.keys:
        exact = frozenset(f"={reading}" for reading in token.keys)
        spelling = bloom_filter(spelling_key, exact, SPELLING_BITS, HASHES)
    else:
        grams = bigrams(token.spelling)
        if token.kind.startswith(TRIGRAM_KINDS):
            grams |= trigrams(token.spelling)
        spelling = bloom_filter(spelling_key, grams, SPELLING_BITS, HASHES)
    if not token.is_initial and token.skeleton:
        skeleton_key = key.subkey(_purpose("name-skeleton", token, scheme), country)
        skeleton = bloom_filter(skeleton_key, skeleton_grams(token.skeleton), SKELETON_BITS, HASHES)
    flags = INITIAL_FLAG if token.is_initial else 0
    return (
        bytes([flags])
        + spelling.to_bytes(SPELLING_BYTES, "big")
        + skeleton.to_bytes(SKELETON_BYTES, "big")
    )


def _encode_date(labels: DateLabels, key: LinkageKey, country: str) -> bytes:
    subkey = key.subkey("date", country)
    out = bytearray([labels.precision])
    for level in LEVELS:
        if level in labels.levels:
            entry = labels.levels[level]
            out += bytes([len(entry.points), len(entry.windows)])
            for label in (*entry.points, *entry.windows):
                out += keyed_tag(subkey, label, DATE_TAG_BYTES)
    return bytes(out)


def _place_filter(place: str, key: LinkageKey, country: str) -> bytes | None:
    grams = frozenset(gram for word in place_words(place) for gram in bigrams(word))
    if not grams:
        return None
    value = bloom_filter(key.subkey("place", country), grams, PLACE_BITS, HASHES)
    return value.to_bytes(PLACE_BYTES, "big")


def bigrams(text: str) -> frozenset[str]:
    """The bigrams of ``text`` padded with "_" at both ends; none for empty text."""
    if not text:
        return frozenset()
    padded = f"_{text}_"
    return frozenset(padded[index : index + 2] for index in range(len(padded) - 1))


def trigrams(text: str) -> frozenset[str]:
    """The trigrams of ``text`` padded with "_" at both ends; none for empty text."""
    if not text:
        return frozenset()
    padded = f"_{text}_"
    return frozenset(padded[index : index + 3] for index in range(len(padded) - 2))


def skeleton_grams(text: str) -> frozenset[str]:
    """Padded bigrams plus the pairs one letter apart, so a swap of two letters keeps some."""
    skips = frozenset(text[index] + text[index + 2] for index in range(len(text) - 2))
    return bigrams(text) | skips


def initial_grams(letter: str) -> frozenset[str]:
    """An initial's only gram: the opening bigram every token starting with it has too."""
    return frozenset({f"_{letter}"})


def _field_label(field: object) -> str:
    """The field's own name when it is a plain token, else the name of the whole object."""
    if isinstance(field, str) and _TOKEN.fullmatch(field):
        return field
    return "encodings"


def _decode_field(field: str, text: object) -> bytes:
    if not isinstance(text, str):
        raise MalformedEncodingError(field, "must be base64url text")
    if len(text) > (FIELD_MAX_BYTES[field] * 4 + 2) // 3:
        raise MalformedEncodingError(field, "too long")
    try:
        return b64u_decode(text)
    except EncodingError as error:
        raise MalformedEncodingError(field, str(error)) from None


def _check_structure(encoding: Encoding) -> None:
    if encoding.scheme not in SCHEMES:
        raise MalformedEncodingError("scheme", f"must be one of {', '.join(SCHEMES)}")
    if not isinstance(encoding.key_id, str) or not _TOKEN.fullmatch(encoding.key_id):
        raise MalformedEncodingError("key_id", "must be a key id (1 to 100 of A-Z a-z 0-9 _ . : -)")
    if len(encoding.country) != COUNTRY_TAG_BYTES:
        raise MalformedEncodingError("country", f"must be {COUNTRY_TAG_BYTES} bytes")
    if encoding.place is not None:
        if len(encoding.place) != PLACE_BYTES:
            raise MalformedEncodingError("place", f"must be {PLACE_BYTES} bytes")
        _check_density("place", encoding.place)
    _check_name(encoding.name)
    _check_date(encoding.date)


def _check_name(blob: bytes) -> None:
    if len(blob) > MAX_NAME_BYTES:
        raise MalformedEncodingError("name", "too long")
    if not blob or not 1 <= blob[0] <= MAX_NAMES:
        raise MalformedEncodingError("name", f"must hold 1 to {MAX_NAMES} names")
    position = 1
    for _ in range(blob[0]):
        if position >= len(blob) or not 1 <= blob[position] <= MAX_TOKENS:
            raise MalformedEncodingError("name", f"each name must hold 1 to {MAX_TOKENS} tokens")
        tokens = blob[position]
        position += 1
        if position + tokens * TOKEN_BYTES > len(blob):
            raise MalformedEncodingError("name", "length does not match its token counts")
        for _ in range(tokens):
            _check_token(blob[position : position + TOKEN_BYTES])
            position += TOKEN_BYTES
    if position != len(blob):
        raise MalformedEncodingError("name", "length does not match its token counts")


def _check_token(token: bytes) -> None:
    if token[0] & ~INITIAL_FLAG:
        raise MalformedEncodingError("name", "unknown token flags")
    spelling = token[1 : 1 + SPELLING_BYTES]
    skeleton = token[1 + SPELLING_BYTES :]
    _check_density("name", spelling)
    _check_density("name", skeleton, may_be_empty=True)
    if token[0] & INITIAL_FLAG and any(skeleton):
        raise MalformedEncodingError("name", "an initial has no skeleton")


def _check_density(field: str, bloom: bytes, *, may_be_empty: bool = False) -> None:
    """Refuse empty filters and filters so dense they would match anything."""
    ones = int.from_bytes(bloom, "big").bit_count()
    if ones == 0 and not may_be_empty:
        raise MalformedEncodingError(field, "a filter is empty")
    if ones > len(bloom) * 8 // 2:
        raise MalformedEncodingError(field, "a filter is implausibly dense")


def _check_date(blob: bytes) -> None:
    if len(blob) > MAX_DATE_BYTES:
        raise MalformedEncodingError("date", "too long")
    if not blob or blob[0] > Precision.DAY:
        raise MalformedEncodingError("date", "unknown precision")
    position = 1
    for level in LEVELS:
        if level > blob[0]:
            continue
        if position + 2 > len(blob):
            raise MalformedEncodingError("date", "truncated")
        points, windows = blob[position], blob[position + 1]
        if not (1 <= points <= MAX_TAGS_PER_LEVEL and 1 <= windows <= MAX_TAGS_PER_LEVEL):
            raise MalformedEncodingError("date", f"1 to {MAX_TAGS_PER_LEVEL} tags per level")
        position += 2 + (points + windows) * DATE_TAG_BYTES
    if position != len(blob):
        raise MalformedEncodingError("date", "length does not match its tag counts")
