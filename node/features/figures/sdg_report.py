"""The SDG indicator 16.10.1 report: counting, small-cell suppression, CSV and HTML.

16.10.1 counts killing, enforced disappearance, torture, arbitrary detention, kidnapping and other
harmful acts against journalists, trade unionists and human rights defenders. Counting rules:

- A case belongs to the report when it happened in ``country`` and its incident started in a
  year from ``from_year`` to ``to_year`` (the same rule as the aggregates).
- A case is **verified** when it has at least :data:`VERIFIED_SOURCES` independent sources; the
  others are reported separately, never added to the verified figures.
- Each case counts once under each SDG category its violations map to (a killing that was also
  tortured counts under both), so category rows do not add up to the total of cases.
- Victims are counted per category too: every victim of a case counts once under each of the
  case's categories; by group (a victim in two groups counts in both group columns) and by sex
  (individuals by gender, "unknown" when not recorded; collectives apart).

Every figure is a node of one tree of one-way breakdowns (:data:`BREAKDOWNS`): all cases and all
victims, each by section (verified or not: they add up), each section's by category (they cover
it), each category's victims by sex (they add up) and by group (they cover them). No other sum is
published. Suppression (docs/decisions/0017-sdg-small-cells.md) follows the tree from the top:
a figure from 1 to 4 is shown as ``"<5"``, further figures of the same breakdown are
``"withheld"`` so that none can be worked out from its total
(:func:`node.features.figures.suppression.suppress_breakdown`), and a figure that is not shown as
an exact number is not broken down at all (its breakdown is ``null``).

The computation is pure (cases in, :class:`SdgReport` out); rendering reads one template.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from node.features.figures.suppression import (
    SMALL_LIMIT,
    Mark,
    Shown,
    is_small,
    suppress_breakdown,
)
from schemas.case import Case, Victim
from schemas.dates import DateSpan
from schemas.typology import (
    TYPOLOGY_VERSION,
    Language,
    SdgCategory,
    Vocabulary,
    codes,
    label,
    sdg_category,
)

VERIFIED_SOURCES = 2
UNSPECIFIED_GROUP = "unspecified"
SEX_UNKNOWN = "unknown"
COLLECTIVE = "collective"
CATEGORIES: tuple[str, ...] = tuple(category.value for category in SdgCategory)
GROUPS: tuple[str, ...] = (*codes(Vocabulary.VICTIM_GROUP), UNSPECIFIED_GROUP)
SEXES: tuple[str, ...] = (*codes(Vocabulary.GENDER), SEX_UNKNOWN, COLLECTIVE)

VERIFIED = "verified"
NOT_VERIFIED = "not_verified"
SECTIONS = (VERIFIED, NOT_VERIFIED)
CASES = "cases"
VICTIMS = "victims"

# Dimension names of a figure; the same names label the cells of published aggregates.
MEASURE = "measure"
SECTION = "section"
CATEGORY = "sdg_category"
SEX = "sex"
GROUP = "victim_group"
_ORDER = (MEASURE, SECTION, CATEGORY, SEX, GROUP)

Key = tuple[tuple[str, str], ...]
"""A figure's coordinates, in :data:`_ORDER`: ``(("measure", "cases"), ("section", ...))``."""


class ReportError(ValueError):
    """The report cannot be made as asked; the message names the parameter."""


def key(measure: str, section: str | None = None, category: str | None = None, *,
        sex: str | None = None, group: str | None = None) -> Key:
    given = {MEASURE: measure, SECTION: section, CATEGORY: category, SEX: sex, GROUP: group}
    return tuple((name, value) for name, value in given.items() if value is not None)


def key_of(dimensions: Mapping[str, str]) -> Key | None:
    """The figure named by a published cell's dimensions (other dimensions ignored)."""
    found = tuple((name, dimensions[name]) for name in _ORDER if name in dimensions)
    return found if found in _PARENT or found in ROOTS else None


@dataclass(frozen=True)
class Breakdown:
    parent: Key
    children: tuple[Key, ...]
    additive: bool
    """True: the children add up to the parent; False: they cover it (sum at least the parent)."""


def _breakdowns() -> tuple[Breakdown, ...]:
    found = [Breakdown(key(m), tuple(key(m, s) for s in SECTIONS), additive=True)
             for m in (CASES, VICTIMS)]
    for s in SECTIONS:
        found += [Breakdown(key(m, s), tuple(key(m, s, c) for c in CATEGORIES), additive=False)
                  for m in (CASES, VICTIMS)]
        for c in CATEGORIES:
            victims = key(VICTIMS, s, c)
            found.append(Breakdown(victims, tuple(key(VICTIMS, s, c, sex=x) for x in SEXES),
                                   additive=True))
            found.append(Breakdown(victims, tuple(key(VICTIMS, s, c, group=g) for g in GROUPS),
                                   additive=False))
    return tuple(found)


ROOTS: tuple[Key, ...] = (key(CASES), key(VICTIMS))
BREAKDOWNS = _breakdowns()
"""Parents before their children."""
_PARENT = {child: b.parent for b in BREAKDOWNS for child in b.children}
FIGURES: tuple[Key, ...] = (*ROOTS, *_PARENT)


def parent_of(figure: Key) -> Key | None:
    return _PARENT.get(figure)


def measure_of(figure: Key) -> str:
    return figure[0][1]


# --- counting ----------------------------------------------------------------------------

def _case_year(case: Case) -> int:
    return DateSpan.parse(case.incident_date).start.year


def is_verified(case: Case) -> bool:
    return case.independent_sources >= VERIFIED_SOURCES


def _victim_groups(victim: Victim) -> list[str]:
    return list(victim.groups) or [UNSPECIFIED_GROUP]


def _victim_sex(victim: Victim) -> str:
    if victim.kind != "individual":
        return COLLECTIVE
    return victim.gender or SEX_UNKNOWN


def _categories(case: Case) -> set[str]:
    return {sdg_category(violation).value for violation in case.violations}


def tally(cases: Iterable[Case]) -> dict[Key, int]:
    """Every figure of the report over ``cases`` (already chosen by country and period)."""
    counts: Counter[Key] = Counter()
    for case in cases:
        section, victims = VERIFIED if is_verified(case) else NOT_VERIFIED, len(case.victims)
        counts.update({key(CASES): 1, key(CASES, section): 1})
        counts.update({key(VICTIMS): victims, key(VICTIMS, section): victims})
        for category in _categories(case):
            counts.update({key(CASES, section, category): 1,
                           key(VICTIMS, section, category): victims})
            for victim in case.victims:
                counts[key(VICTIMS, section, category, sex=_victim_sex(victim))] += 1
                for group in _victim_groups(victim):
                    counts[key(VICTIMS, section, category, group=group)] += 1
    return {figure: counts[figure] for figure in FIGURES}


def chosen_cases(cases: Iterable[Case], *, country: str, from_year: int,
                 to_year: int) -> list[Case]:
    if from_year > to_year:
        raise ReportError("--to: the period must not end before it starts")
    return [case for case in cases
            if case.country == country and from_year <= _case_year(case) <= to_year]


# --- suppression -------------------------------------------------------------------------

Published = dict[Key, Shown | None]
"""What is published of each figure: a count, a marker, or None (not broken down)."""


def suppress_figures(counts: Mapping[Key, int]) -> Published:
    """Apply the small-cell rule to every figure, breakdown by breakdown from the top."""
    published: Published = {root: Mark.SMALL if is_small(counts[root]) else counts[root]
                            for root in ROOTS}
    for breakdown in BREAKDOWNS:
        result: Sequence[Shown | None] = [None] * len(breakdown.children)
        parent = published[breakdown.parent]
        if isinstance(parent, int) and not isinstance(parent, Mark):
            result = suppress_breakdown([counts[c] for c in breakdown.children],
                                        counts[breakdown.parent],
                                        additive=breakdown.additive) or result
        published.update(zip(breakdown.children, result, strict=True))
    return published


class SuppressionReason(StrEnum):
    UNDER_THRESHOLD = "under_threshold"
    COMPLEMENTARY = "complementary"
    NOT_BROKEN_DOWN = "not_broken_down"


REASONS: Mapping[SuppressionReason, str] = {
    SuppressionReason.UNDER_THRESHOLD: f"a count from 1 to {SMALL_LIMIT - 1}, shown as \"<5\"",
    SuppressionReason.COMPLEMENTARY: f"a count of {SMALL_LIMIT} or more, withheld so that a"
                                     f" count under {SMALL_LIMIT} beside it cannot be worked out"
                                     " from the total",
    SuppressionReason.NOT_BROKEN_DOWN: "not published: the figure it breaks down is under"
                                       f" {SMALL_LIMIT} or withheld, or its small counts could"
                                       " not be protected",
}


def path_of(figure: Key) -> str:
    """Where the figure is in the report's JSON: ``verified.by_category.killing.cases``."""
    dims = dict(figure)
    measure = dims[MEASURE]
    if SECTION not in dims:
        return measure
    if CATEGORY not in dims:
        return f"{dims[SECTION]}.{measure}"
    base = f"{dims[SECTION]}.by_category.{dims[CATEGORY]}"
    if SEX in dims:
        return f"{base}.victims_by_sex.{dims[SEX]}"
    if GROUP in dims:
        return f"{base}.victims_by_group.{dims[GROUP]}"
    return f"{base}.{measure}"


def suppression_notes(published: Mapping[Key, Shown | None]) -> list[tuple[Key, SuppressionReason]]:
    """Every figure not shown as it is; of those not broken down, only the topmost."""
    notes = []
    for figure in FIGURES:
        value, parent = published[figure], parent_of(figure)
        if value is Mark.SMALL:
            notes.append((figure, SuppressionReason.UNDER_THRESHOLD))
        elif value is Mark.WITHHELD:
            notes.append((figure, SuppressionReason.COMPLEMENTARY))
        elif value is None and parent is not None and published[parent] is not None:
            notes.append((figure, SuppressionReason.NOT_BROKEN_DOWN))
    return notes


# --- the report as the API shows it ------------------------------------------------------

ShownCount = int | Literal["<5", "withheld"]


class CategoryFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    cases: ShownCount | None
    victims: ShownCount | None
    victims_by_group: dict[str, ShownCount | None]
    victims_by_sex: dict[str, ShownCount | None]


class SectionFigures(BaseModel):
    """Figures for the verified cases, or for the others."""

    model_config = ConfigDict(frozen=True)

    cases: ShownCount | None = Field(description="distinct cases in this section")
    victims: ShownCount | None = Field(description="distinct victims in this section")
    by_category: dict[str, CategoryFigures]


class SuppressedFigure(BaseModel):
    figure: str = Field(description="where the figure is in this report, e.g."
                                    " verified.by_category.killing.victims_by_sex.woman")
    reason: SuppressionReason
    explanation: str


class SdgReport(BaseModel):
    """The 16.10.1 figures with small cells suppressed: ``"<5"`` is a count from 1 to 4,
    ``"withheld"`` one of 5 or more hidden to protect a small count, ``null`` not published."""

    model_config = ConfigDict(frozen=True)

    country: str
    from_year: int
    to_year: int
    typology_version: str = TYPOLOGY_VERSION
    verified_sources: int = VERIFIED_SOURCES
    small_limit: int = Field(default=SMALL_LIMIT, description="no count under this is shown")
    cases: ShownCount | None = Field(description="distinct cases")
    victims: ShownCount | None = Field(description="distinct victims")
    verified: SectionFigures
    not_verified: SectionFigures
    suppressed: list[SuppressedFigure] = Field(
        description="every figure not shown as it is, and why")


def nested(values: Callable[[Key], Any]) -> dict[str, Any]:
    """The report's figures as nested dicts, each value given by ``values``."""
    def section(s: str) -> dict[str, Any]:
        return {
            CASES: values(key(CASES, s)), VICTIMS: values(key(VICTIMS, s)),
            "by_category": {c: {
                CASES: values(key(CASES, s, c)), VICTIMS: values(key(VICTIMS, s, c)),
                "victims_by_group": {g: values(key(VICTIMS, s, c, group=g)) for g in GROUPS},
                "victims_by_sex": {x: values(key(VICTIMS, s, c, sex=x)) for x in SEXES},
            } for c in CATEGORIES},
        }

    return {CASES: values(key(CASES)), VICTIMS: values(key(VICTIMS)),
            **{s: section(s) for s in SECTIONS}}


def _plain(value: Shown | None) -> int | str | None:
    return value.value if isinstance(value, Mark) else value


def sdg_report(cases: Iterable[Case], *, country: str, from_year: int, to_year: int) -> SdgReport:
    counts = tally(chosen_cases(cases, country=country, from_year=from_year, to_year=to_year))
    published = suppress_figures(counts)
    return SdgReport.model_validate({
        "country": country, "from_year": from_year, "to_year": to_year,
        **nested(lambda figure: _plain(published[figure])),
        "suppressed": [{"figure": path_of(figure), "reason": reason,
                        "explanation": REASONS[reason]}
                       for figure, reason in suppression_notes(published)],
    })


def report_values(report: SdgReport) -> dict[Key, int | str | None]:
    """Each figure of a report, read back by its key."""
    data = report.model_dump(mode="json")
    found: dict[Key, int | str | None] = {}
    for figure in FIGURES:
        value: Any = data
        for part in path_of(figure).split("."):
            value = value[part]
        found[figure] = value
    return found


# --- rendering: one layout for this node's report and the coalition's -------------------

def _group_label(group: str, language: Language) -> str:
    if group == UNSPECIFIED_GROUP:
        return TEXT[language]["unspecified"]
    return label(Vocabulary.VICTIM_GROUP, group, language)


def _sex_label(sex: str, language: Language) -> str:
    if sex in (SEX_UNKNOWN, COLLECTIVE):
        return TEXT[language][sex]
    return label(Vocabulary.GENDER, sex, language)


@dataclass(frozen=True)
class Rendering:
    """What a rendered report shows: the text of each figure, and the facts above the tables."""

    country: str
    period: str
    cells: Mapping[Key, str]
    notes: tuple[str, ...]
    organisation: str | None = None
    contributors: tuple[tuple[str, str, str], ...] = ()
    """(member, period, as of), for the coalition's report."""


def local_rendering(report: SdgReport, language: Language,
                    organisation: str | None = None) -> Rendering:
    text = TEXT[language]

    def cell(value: int | str | None) -> str:
        if value is None:
            return "—"
        return text["withheld_mark"] if value == Mark.WITHHELD.value else str(value)

    counts = Counter(figure.reason for figure in report.suppressed)
    notes = [text["legend"].format(limit=report.small_limit, below=report.small_limit - 1)]
    if report.suppressed:
        notes.append(text["suppressed_summary"].format(
            small=counts[SuppressionReason.UNDER_THRESHOLD],
            withheld=counts[SuppressionReason.COMPLEMENTARY],
            not_broken_down=counts[SuppressionReason.NOT_BROKEN_DOWN]))
    period = (str(report.from_year) if report.from_year == report.to_year
              else f"{report.from_year}–{report.to_year}")
    return Rendering(report.country, period,
                     {figure: cell(value) for figure, value in report_values(report).items()},
                     tuple(notes), organisation)


def rendering_csv(rendering: Rendering, language: Language = "en") -> str:
    """One row per section and category; columns are codes, with a label column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([
        "country", "period", "section", "sdg_category", "sdg_category_label",
        "cases", "victims", *(f"victims_group_{group}" for group in GROUPS),
        *(f"victims_sex_{sex}" for sex in SEXES),
    ])
    cells = rendering.cells
    start = [rendering.country, rendering.period]
    for section in SECTIONS:
        for category in CATEGORIES:
            writer.writerow([
                *start, section, category, label(Vocabulary.SDG_CATEGORY, category, language),
                cells[key(CASES, section, category)], cells[key(VICTIMS, section, category)],
                *(cells[key(VICTIMS, section, category, group=g)] for g in GROUPS),
                *(cells[key(VICTIMS, section, category, sex=x)] for x in SEXES),
            ])
        writer.writerow([*start, section, "all", TEXT[language]["all_cases"],
                         cells[key(CASES, section)], cells[key(VICTIMS, section)]])
    writer.writerow([*start, "all", "all", TEXT[language]["all_sections"], cells[key(CASES)],
                     cells[key(VICTIMS)]])
    return out.getvalue()


def report_csv(report: SdgReport, language: Language = "en") -> str:
    return rendering_csv(local_rendering(report, language), language)


TEXT: Mapping[Language, Mapping[str, str]] = {
    "en": {
        "title": "SDG indicator 16.10.1",
        "coalition_title": "SDG indicator 16.10.1 — coalition",
        "subtitle": "Killings, enforced disappearances, torture, arbitrary detention, kidnapping"
                    " and other harmful acts against journalists, trade unionists and human"
                    " rights defenders",
        "country": "Country", "period": "Period", "generated": "Generated",
        "organisation": "Organisation",
        "all": "All cases",
        "verified": "Verified cases",
        "verified_note": "Cases with at least {n} independent sources.",
        "not_verified": "Cases not (yet) verified",
        "not_verified_note": "Fewer than {n} independent sources; not added to the verified"
                             " figures.",
        "category": "Category", "cases": "Cases", "victims": "Victims",
        "by_group": "Victims by group", "by_sex": "Victims by sex",
        "all_cases": "All cases (each counted once)",
        "all_sections": "Verified or not",
        "unspecified": "Group not recorded", "unknown": "Sex not recorded",
        "collective": "Collective",
        "withheld_mark": "withheld",
        "small_cells": "Small counts",
        "legend": "No count under {limit} is shown: \"<{limit}\" is a count from 1 to"
                  " {below}; \"withheld\" is a count of {limit} or more hidden so that a small"
                  " count beside it cannot be worked out from the total; \"—\" is not"
                  " published, because the figure it breaks down is under {limit} or hidden.",
        "suppressed_summary": "In this report: {small} count(s) shown as \"<5\", {withheld}"
                              " withheld beside them, {not_broken_down} breakdown(s) not"
                              " published.",
        "coalition_legend": "Made from the figures members published, never from their"
                            " cases. Each member hides its small counts, so a figure may be a"
                            " range (\"12–15\", \"≥12\", \"≤8\", \"?\"); a figure that may be"
                            " under 5 is shown as \"<5\". A case documented by several members"
                            " is counted once where their overlap estimate allows; otherwise the"
                            " figure is a range.",
        "contributors": "Contributing members", "member": "Member", "as_of": "As of",
        "method": "How the figures are counted",
        "method_text": "A case counts under every category its violations fall in, so the"
                       " category rows do not add up to the number of cases. Victims count"
                       " under each category of their case, and under each group they belong"
                       " to. Typology version {version}.",
    },
    "es": {
        "title": "Indicador ODS 16.10.1",
        "coalition_title": "Indicador ODS 16.10.1 — coalición",
        "subtitle": "Asesinatos, desapariciones forzadas, torturas, detenciones arbitrarias,"
                    " secuestros y otros actos lesivos contra periodistas, sindicalistas y"
                    " defensores de derechos humanos",
        "country": "País", "period": "Período", "generated": "Generado",
        "organisation": "Organización",
        "all": "Todos los casos",
        "verified": "Casos verificados",
        "verified_note": "Casos con al menos {n} fuentes independientes.",
        "not_verified": "Casos no verificados (todavía)",
        "not_verified_note": "Menos de {n} fuentes independientes; no se suman a las cifras"
                             " verificadas.",
        "category": "Categoría", "cases": "Casos", "victims": "Víctimas",
        "by_group": "Víctimas por grupo", "by_sex": "Víctimas por sexo",
        "all_cases": "Todos los casos (cada uno una vez)",
        "all_sections": "Verificados o no",
        "unspecified": "Grupo no registrado", "unknown": "Sexo no registrado",
        "collective": "Colectivo",
        "withheld_mark": "reservado",
        "small_cells": "Cifras pequeñas",
        "legend": "No se muestra ninguna cifra menor que {limit}: \"<{limit}\" es una cifra de"
                  " 1 a {below}; \"reservado\" es una cifra de {limit} o más que se oculta para"
                  " que una cifra pequeña a su lado no pueda deducirse del total; \"—\" no se"
                  " publica, porque la cifra que desglosa es menor que {limit} o está oculta.",
        "suppressed_summary": "En este informe: {small} cifra(s) mostradas como \"<5\","
                              " {withheld} reservada(s) a su lado, {not_broken_down}"
                              " desglose(s) sin publicar.",
        "coalition_legend": "Hecho con las cifras que publicaron los miembros, nunca con sus"
                            " casos. Cada miembro oculta sus cifras pequeñas, por lo que una"
                            " cifra puede ser un intervalo (\"12–15\", \"≥12\", \"≤8\", \"?\");"
                            " una cifra que puede ser menor que 5 se muestra como \"<5\". Un"
                            " caso documentado por varios miembros se cuenta una vez donde su"
                            " estimación de coincidencias lo permite; si no, la cifra es un"
                            " intervalo.",
        "contributors": "Miembros que aportan", "member": "Miembro", "as_of": "Fecha de corte",
        "method": "Cómo se cuentan las cifras",
        "method_text": "Un caso cuenta en cada categoría en la que caen sus violaciones, por lo"
                       " que las filas de categorías no suman el número de casos. Las víctimas"
                       " cuentan en cada categoría de su caso y en cada grupo al que pertenecen."
                       " Versión de la tipología {version}.",
    },
}

_ENVIRONMENT = Environment(
    loader=PackageLoader("node.features.figures", "templates/reports"),
    autoescape=select_autoescape(["html", "jinja2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def layout(rendering: Rendering, language: Language) -> dict[str, Any]:
    """What the report tables need, for the print-ready page and the web page alike."""
    text = TEXT[language]
    sections = [
        (text["verified"], text["verified_note"].format(n=VERIFIED_SOURCES), VERIFIED),
        (text["not_verified"], text["not_verified_note"].format(n=VERIFIED_SOURCES),
         NOT_VERIFIED),
    ]
    return {
        "text": text, "rendering": rendering, "sections": sections, "notes": rendering.notes,
        "cell": lambda *args, **kwargs: rendering.cells[key(*args, **kwargs)],
        "categories": [(c, label(Vocabulary.SDG_CATEGORY, c, language)) for c in CATEGORIES],
        "groups": [(g, _group_label(g, language)) for g in GROUPS],
        "sexes": [(s, _sex_label(s, language)) for s in SEXES],
        "method": text["method_text"].format(version=TYPOLOGY_VERSION),
    }


def rendering_html(rendering: Rendering, *, language: Language = "en", title: str | None = None,
                   generated_at: int | None = None) -> str:
    """A self-contained HTML page (inline CSS, A4 landscape when printed)."""
    generated = (
        datetime.fromtimestamp(generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if generated_at is not None else None
    )
    return _ENVIRONMENT.get_template("sdg_16_10_1.html.jinja2").render(
        language=language, generated=generated, title=title or TEXT[language]["title"],
        **layout(rendering, language))


def report_html(
    report: SdgReport,
    *,
    language: Language = "en",
    organisation: str | None = None,
    generated_at: int | None = None,
) -> str:
    return rendering_html(local_rendering(report, language, organisation), language=language,
                          generated_at=generated_at)
