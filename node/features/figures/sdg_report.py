"""The SDG indicator 16.10.1 report for one country and period, as CSV and print-ready HTML.

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

The computation is pure (cases in, :class:`SdgReport` out); rendering reads one template.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

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


class ReportError(ValueError):
    """The report cannot be made as asked; the message names the parameter."""


class CategoryFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    cases: int
    victims: int
    victims_by_group: dict[str, int]
    victims_by_sex: dict[str, int]


class SectionFigures(BaseModel):
    """Figures for the verified cases, or for the others."""

    model_config = ConfigDict(frozen=True)

    cases: int = Field(description="distinct cases in this section")
    victims: int = Field(description="distinct victims in this section")
    by_category: dict[str, CategoryFigures]


class SdgReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    country: str
    from_year: int
    to_year: int
    typology_version: str = TYPOLOGY_VERSION
    verified_sources: int = VERIFIED_SOURCES
    verified: SectionFigures
    not_verified: SectionFigures


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


def _category_figures(cases: list[Case], category: str) -> CategoryFigures:
    involved = [case for case in cases if category in _categories(case)]
    victims = [victim for case in involved for victim in case.victims]
    by_group = dict.fromkeys(GROUPS, 0)
    by_sex = dict.fromkeys(SEXES, 0)
    for victim in victims:
        for group in _victim_groups(victim):
            by_group[group] += 1
        by_sex[_victim_sex(victim)] += 1
    return CategoryFigures(cases=len(involved), victims=len(victims),
                           victims_by_group=by_group, victims_by_sex=by_sex)


def _section(cases: list[Case]) -> SectionFigures:
    return SectionFigures(
        cases=len(cases),
        victims=sum(len(case.victims) for case in cases),
        by_category={category: _category_figures(cases, category) for category in CATEGORIES},
    )


def sdg_report(cases: Iterable[Case], *, country: str, from_year: int, to_year: int) -> SdgReport:
    if from_year > to_year:
        raise ReportError("--to: the period must not end before it starts")
    chosen = [
        case for case in cases
        if case.country == country and from_year <= _case_year(case) <= to_year
    ]
    return SdgReport(
        country=country, from_year=from_year, to_year=to_year,
        verified=_section([case for case in chosen if is_verified(case)]),
        not_verified=_section([case for case in chosen if not is_verified(case)]),
    )


# --- CSV ---------------------------------------------------------------------------------

def _group_label(group: str, language: Language) -> str:
    if group == UNSPECIFIED_GROUP:
        return TEXT[language]["unspecified"]
    return label(Vocabulary.VICTIM_GROUP, group, language)


def _sex_label(sex: str, language: Language) -> str:
    if sex in (SEX_UNKNOWN, COLLECTIVE):
        return TEXT[language][sex]
    return label(Vocabulary.GENDER, sex, language)


def report_csv(report: SdgReport, language: Language = "en") -> str:
    """One row per section and category; columns are codes, with a label column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([
        "country", "from_year", "to_year", "section", "sdg_category", "sdg_category_label",
        "cases", "victims", *(f"victims_group_{group}" for group in GROUPS),
        *(f"victims_sex_{sex}" for sex in SEXES),
    ])
    for section, figures in (("verified", report.verified), ("not_verified", report.not_verified)):
        for category, row in figures.by_category.items():
            writer.writerow([
                report.country, report.from_year, report.to_year, section, category,
                label(Vocabulary.SDG_CATEGORY, category, language), row.cases, row.victims,
                *(row.victims_by_group[group] for group in GROUPS),
                *(row.victims_by_sex[sex] for sex in SEXES),
            ])
        writer.writerow([report.country, report.from_year, report.to_year, section, "all",
                         TEXT[language]["all_cases"], figures.cases, figures.victims])
    return out.getvalue()


# --- HTML --------------------------------------------------------------------------------

TEXT: Mapping[Language, Mapping[str, str]] = {
    "en": {
        "title": "SDG indicator 16.10.1",
        "subtitle": "Killings, enforced disappearances, torture, arbitrary detention, kidnapping"
                    " and other harmful acts against journalists, trade unionists and human"
                    " rights defenders",
        "country": "Country", "period": "Period", "generated": "Generated",
        "organisation": "Organisation",
        "verified": "Verified cases",
        "verified_note": "Cases with at least {n} independent sources.",
        "not_verified": "Cases not (yet) verified",
        "not_verified_note": "Fewer than {n} independent sources; not added to the verified"
                             " figures.",
        "category": "Category", "cases": "Cases", "victims": "Victims",
        "by_group": "Victims by group", "by_sex": "Victims by sex",
        "all_cases": "All cases (each counted once)",
        "unspecified": "Group not recorded", "unknown": "Sex not recorded",
        "collective": "Collective",
        "method": "How the figures are counted",
        "method_text": "A case counts under every category its violations fall in, so the"
                       " category rows do not add up to the number of cases. Victims count"
                       " under each category of their case, and under each group they belong"
                       " to. Typology version {version}.",
    },
    "es": {
        "title": "Indicador ODS 16.10.1",
        "subtitle": "Asesinatos, desapariciones forzadas, torturas, detenciones arbitrarias,"
                    " secuestros y otros actos lesivos contra periodistas, sindicalistas y"
                    " defensores de derechos humanos",
        "country": "País", "period": "Período", "generated": "Generado",
        "organisation": "Organización",
        "verified": "Casos verificados",
        "verified_note": "Casos con al menos {n} fuentes independientes.",
        "not_verified": "Casos no verificados (todavía)",
        "not_verified_note": "Menos de {n} fuentes independientes; no se suman a las cifras"
                             " verificadas.",
        "category": "Categoría", "cases": "Casos", "victims": "Víctimas",
        "by_group": "Víctimas por grupo", "by_sex": "Víctimas por sexo",
        "all_cases": "Todos los casos (cada uno una vez)",
        "unspecified": "Grupo no registrado", "unknown": "Sexo no registrado",
        "collective": "Colectivo",
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


def report_html(
    report: SdgReport,
    *,
    language: Language = "en",
    organisation: str | None = None,
    generated_at: int | None = None,
) -> str:
    """A self-contained HTML page (inline CSS, A4 landscape when printed)."""
    text = TEXT[language]
    generated = (
        datetime.fromtimestamp(generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if generated_at is not None else None
    )
    sections = [
        (text["verified"], text["verified_note"].format(n=report.verified_sources),
         report.verified),
        (text["not_verified"], text["not_verified_note"].format(n=report.verified_sources),
         report.not_verified),
    ]
    return _ENVIRONMENT.get_template("sdg_16_10_1.html.jinja2").render(
        language=language, text=text, report=report, organisation=organisation,
        generated=generated, sections=sections,
        categories=[(c, label(Vocabulary.SDG_CATEGORY, c, language)) for c in CATEGORIES],
        groups=[(g, _group_label(g, language)) for g in GROUPS],
        sexes=[(s, _sex_label(s, language)) for s in SEXES],
        method=text["method_text"].format(version=report.typology_version),
    )
