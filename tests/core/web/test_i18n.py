"""English and Spanish complete: every message of the pages and views has a Spanish translation
with the same placeholders; dates, numbers and country names follow the language."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from node.core.web.i18n import LOCALE_DIR, available_languages, choose_language, formatter
from tests.support import REPO

ROOT = REPO
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
COMPLETE = ["es"]


def extracted() -> set[str | tuple[str, str]]:
    with (LOCALE_DIR / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map, keywords):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


@pytest.fixture(scope="module")
def messages() -> set[str | tuple[str, str]]:
    found = extracted()
    assert len(found) > 300  # the extraction really read the templates and views
    return found


@pytest.mark.parametrize("language", COMPLETE)
def test_every_message_is_translated(language: str,
                                     messages: set[str | tuple[str, str]]) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
    missing = sorted(str(m) for m in messages if m not in translated)
    assert missing == [], f"not in the {language} catalogue: {missing[:5]}"
    for message_id, message in translated.items():
        assert not message.fuzzy, message_id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"empty translation of {message_id!r}"
        ids = message_id if isinstance(message_id, tuple) else (message_id,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == expected, message_id
    stale = sorted(str(m) for m in translated if m not in messages)
    assert stale == [], f"no longer used: {stale[:5]}"


def test_spanish_is_offered_and_chosen_from_the_browser() -> None:
    assert {"en", "es"} <= set(available_languages())
    assert choose_language(None, "es-CO,es;q=0.9,en;q=0.5") == "es"
    assert choose_language(None, "de-DE,en;q=0.3") == "en"
    assert choose_language("es", "en") == "es"
    assert choose_language("xx", None) == "en"


def test_translations_are_used() -> None:
    assert formatter("es").gettext("Cases") == "Casos"
    assert formatter("en").gettext("Cases") == "Cases"


def test_dates_numbers_and_countries_follow_the_language() -> None:
    spanish, english = formatter("es"), formatter("en")
    assert spanish.partial_date("2023-05") == "mayo de 2023"
    assert english.partial_date("2023-05") == "May 2023"
    assert spanish.date_span("2023-11/2024-02-29") == "noviembre de 2023 – 29 de febrero de 2024"
    assert english.partial_date("2024") == "2024"
    assert spanish.number(12345) == "12.345" and english.number(12345) == "12,345"
    assert spanish.country("DE") == "Alemania" and english.country("DE") == "Germany"
    assert "UTC" in spanish.datetime(datetime(2024, 5, 17, 14, 30, tzinfo=UTC))
    assert spanish.month_names()[0] == (1, "enero")
