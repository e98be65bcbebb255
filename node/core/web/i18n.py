"""Languages of the web interface: gettext catalogues, and dates, numbers and names per language.

Catalogues are the ``.po`` files in ``node/core/locale/<lang>/LC_MESSAGES/messages.po``. They are
compiled in memory when the web interface starts (Babel's ``write_mo``), so a fresh clone and
an editable install work without a build step and no ``.mo`` file is committed. English is the
source language. Typology labels come from ``schemas.typology`` (English and Spanish); in other
languages they fall back to English.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Final

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from schemas.dates import DateSpan, PartialDate, PartialDateError
from schemas.typology import LANGUAGES as TYPOLOGY_LANGUAGES
from schemas.typology import Language as TypologyLanguage
from schemas.typology import Vocabulary, label, terms

LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"
DOMAIN: Final = "messages"
DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_NAMES: Final[Mapping[str, str]] = {"en": "English", "es": "Español", "fr": "Français"}
"""Every language offered, by its own name (a switcher shows each in its own language)."""


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English: the messages as written)."""
    path = catalogue_path(language)
    if language == DEFAULT_LANGUAGE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, so they show in English
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def available_languages() -> list[str]:
    return [code for code in LANGUAGE_NAMES
            if code == DEFAULT_LANGUAGE or catalogue_path(code).is_file()]


def choose_language(wanted: str | None, accept_language: str | None = None) -> str:
    """``wanted`` if offered, else the best match of an Accept-Language header, else English."""
    offered = available_languages()
    if wanted is not None and wanted in offered:
        return wanted
    for tag in _accepted(accept_language or ""):
        primary = tag.split("-")[0].lower()
        if primary in offered:
            return primary
    return DEFAULT_LANGUAGE


def _accepted(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


@dataclass(frozen=True)
class Formatter:
    """Everything a page shows that depends on the language."""

    language: str

    @property
    def translations(self) -> NullTranslations:
        return translations(self.language)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.translations.ngettext(singular, plural, count)

    @property
    def typology_language(self) -> TypologyLanguage:
        for language in TYPOLOGY_LANGUAGES:
            if language == self.language:
                return language
        return "en"

    def term(self, vocabulary: Vocabulary, code: str) -> str:
        """The label of a typology code; the code itself if this version does not know it."""
        try:
            return label(vocabulary, code, self.typology_language)
        except LookupError:
            return code

    def choices(self, vocabulary: Vocabulary) -> list[tuple[str, str]]:
        """(code, label) of every term of a vocabulary, in the typology's order."""
        return [(item.code, item.label(self.typology_language)) for item in terms(vocabulary)]

    def country(self, code: str | None) -> str:
        if not code:
            return ""
        return str(_locale(self.language).territories.get(code.upper(), code))

    def countries(self, codes: Sequence[str]) -> list[tuple[str, str]]:
        """(code, name) sorted by name in this language."""
        named = [(code, self.country(code)) for code in codes]
        return sorted(named, key=lambda pair: pair[1].casefold())

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.language)

    def datetime(self, value: datetime) -> str:
        """Date and time in UTC, marked as such (staff may be in several time zones)."""
        return format_datetime(value, "medium", tzinfo=value.tzinfo,
                               locale=self.language) + " UTC"

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.language)

    def partial_date(self, text: str) -> str:
        try:
            partial = PartialDate.parse(text)
        except PartialDateError:
            return text
        if partial.precision == "year":
            return str(partial.year)
        if partial.precision == "month":
            return format_skeleton("yMMMM", partial.earliest(), locale=self.language)
        return format_date(partial.earliest(), "long", locale=self.language)

    def date_span(self, text: str) -> str:
        """"2024-05/2024-07" -> "May 2024 – July 2024" in this language."""
        try:
            span = DateSpan.parse(text)
        except PartialDateError:
            return text
        start = self.partial_date(str(span.start))
        return start if span.end is None else f"{start} – {self.partial_date(str(span.end))}"

    def month_names(self) -> list[tuple[int, str]]:
        names = _locale(self.language).months["stand-alone"]["wide"]
        return [(number, names[number]) for number in range(1, 13)]


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


@cache
def formatter(language: str) -> Formatter:
    return Formatter(language)
