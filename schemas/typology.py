"""The shared controlled vocabulary (docs/architecture.md §13), version ``TYPOLOGY_VERSION``.

Every term has a stable ``code`` (what records carry), an English and a Spanish label (what people
see), and optionally synonyms accepted when matching spreadsheet text. Every violation term maps to
exactly one SDG indicator 16.10.1 category; every perpetrator category has a parent perpetrator
type (state / non-state / unknown).

Codes are never renamed or reused: a later version may add terms and labels, and deprecates
instead of removing, so that records written under version 1 keep their meaning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, get_args

from schemas.errors import UnknownLanguageError, UnknownTermError

TYPOLOGY_VERSION = "1"

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = get_args(Language)


class Vocabulary(StrEnum):
    SDG_CATEGORY = "sdg_category"
    VIOLATION = "violation"
    VICTIM_KIND = "victim_kind"
    VICTIM_GROUP = "victim_group"
    GENDER = "gender"
    PERPETRATOR_TYPE = "perpetrator_type"
    PERPETRATOR_CATEGORY = "perpetrator_category"
    IMPUNITY_STATUS = "impunity_status"
    VERIFICATION_STATUS = "verification_status"
    CONSENT_LEVEL = "consent_level"
    RISK_LEVEL = "risk_level"
    ALERT_TYPE = "alert_type"
    ALERT_ASK = "alert_ask"
    ALERT_STATUS = "alert_status"
    ACK_STATUS = "ack_status"
    CAPABILITY = "capability"
    CAMPAIGN_TARGET_TYPE = "campaign_target_type"
    CAMPAIGN_ROLE = "campaign_role"
    CAMPAIGN_STATUS = "campaign_status"
    CAMPAIGN_POST_TYPE = "campaign_post_type"
    PROPOSAL_RESPONSE = "proposal_response"
    RETRACTION_REASON = "retraction_reason"
    RESOURCE_TYPE = "resource_type"
    SCORE_BAND = "score_band"


class SdgCategory(StrEnum):
    """The six categories of SDG indicator 16.10.1 (OHCHR's refined formulation)."""

    KILLING = "killing"
    ENFORCED_DISAPPEARANCE = "enforced_disappearance"
    TORTURE = "torture"
    ARBITRARY_DETENTION = "arbitrary_detention"
    KIDNAPPING = "kidnapping"
    OTHER_HARMFUL_ACTS = "other_harmful_acts"


class ConsentLevel(StrEnum):
    """What the defender agreed to; the consent gate enforces it."""

    NONE = "none"
    ANONYMISED = "anonymised"
    COALITION = "coalition"
    NAMED_PARTNERS = "named_partners"
    PUBLIC = "public"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Term:
    code: str
    en: str
    es: str
    sdg: SdgCategory | None = None
    parent: str | None = None
    synonyms: tuple[str, ...] = ()

    def label(self, language: Language) -> str:
        if language == "es":
            return self.es
        if language == "en":
            return self.en
        raise UnknownLanguageError(language, LANGUAGES)


_T = Term
_S = SdgCategory

_VOCABULARIES: dict[Vocabulary, tuple[Term, ...]] = {
    Vocabulary.SDG_CATEGORY: (
        _T("killing", "Killing", "Asesinato"),
        _T("enforced_disappearance", "Enforced disappearance", "Desaparición forzada"),
        _T("torture", "Torture", "Tortura"),
        _T("arbitrary_detention", "Arbitrary detention", "Detención arbitraria"),
        _T("kidnapping", "Kidnapping", "Secuestro"),
        _T("other_harmful_acts", "Other harmful acts", "Otros actos lesivos"),
    ),
    Vocabulary.VIOLATION: (
        _T("killing", "Killing", "Asesinato", _S.KILLING,
           synonyms=("murder", "homicide", "homicidio", "extrajudicial execution",
                     "ejecución extrajudicial")),
        _T("attempted_killing", "Attempted killing", "Intento de asesinato",
           _S.OTHER_HARMFUL_ACTS, synonyms=("atentado contra la vida",)),
        _T("enforced_disappearance", "Enforced disappearance", "Desaparición forzada",
           _S.ENFORCED_DISAPPEARANCE),
        _T("kidnapping", "Abduction / kidnapping", "Secuestro / rapto", _S.KIDNAPPING,
           synonyms=("abduction", "kidnapping", "secuestro", "rapto")),
        _T("arbitrary_detention", "Arbitrary arrest / detention",
           "Detención / arresto arbitrario", _S.ARBITRARY_DETENTION,
           synonyms=("arbitrary arrest", "arbitrary detention", "detención arbitraria",
                     "arresto arbitrario")),
        _T("torture", "Torture / ill-treatment", "Tortura / malos tratos", _S.TORTURE,
           synonyms=("torture", "ill-treatment", "tortura", "malos tratos",
                     "tratos crueles, inhumanos o degradantes")),
        _T("physical_assault", "Physical assault", "Agresión física", _S.OTHER_HARMFUL_ACTS,
           synonyms=("assault", "agresión", "ataque físico")),
        _T("sexual_violence", "Sexual violence", "Violencia sexual", _S.OTHER_HARMFUL_ACTS),
        _T("death_threat", "Death threat", "Amenaza de muerte", _S.OTHER_HARMFUL_ACTS),
        _T("threat_intimidation", "Threat / intimidation", "Amenaza / intimidación",
           _S.OTHER_HARMFUL_ACTS,
           synonyms=("threat", "intimidation", "amenaza", "intimidación")),
        _T("harassment", "Harassment", "Hostigamiento", _S.OTHER_HARMFUL_ACTS,
           synonyms=("acoso",)),
        _T("surveillance", "Surveillance", "Vigilancia", _S.OTHER_HARMFUL_ACTS,
           synonyms=("seguimiento", "monitoring")),
        _T("raid", "Raid or search", "Allanamiento o registro", _S.OTHER_HARMFUL_ACTS,
           synonyms=("raid", "allanamiento")),
        _T("judicial_harassment", "Judicial harassment / criminalisation",
           "Hostigamiento judicial / criminalización", _S.OTHER_HARMFUL_ACTS,
           synonyms=("judicial harassment", "criminalisation", "criminalization",
                     "hostigamiento judicial", "criminalización", "judicialización",
                     "SLAPP", "SLAPP suit")),
        _T("stigmatisation", "Stigmatisation / defamation / smear campaign",
           "Estigmatización / difamación / campaña de desprestigio", _S.OTHER_HARMFUL_ACTS,
           synonyms=("stigmatisation", "stigmatization", "defamation", "smear campaign",
                     "estigmatización", "difamación", "campaña de desprestigio")),
        _T("digital_attack", "Digital attack", "Ataque digital", _S.OTHER_HARMFUL_ACTS,
           synonyms=("hacking", "cyberattack", "ciberataque")),
        _T("forced_displacement", "Forced displacement / eviction",
           "Desplazamiento forzado / desalojo", _S.OTHER_HARMFUL_ACTS,
           synonyms=("forced displacement", "eviction", "desplazamiento forzado",
                     "desalojo", "desalojo forzoso")),
        _T("property_destruction", "Destruction or theft of property",
           "Destrucción o robo de bienes", _S.OTHER_HARMFUL_ACTS,
           synonyms=("theft", "robo", "destruction of property", "destrucción de bienes")),
        _T("travel_ban", "Travel ban", "Prohibición de viajar", _S.OTHER_HARMFUL_ACTS,
           synonyms=("restricción de viaje",)),
        _T("administrative_restriction", "Administrative or funding restriction",
           "Restricción administrativa o de financiación", _S.OTHER_HARMFUL_ACTS,
           synonyms=("funding restriction", "restricción de financiación")),
        _T("attack_on_relatives", "Attack on relatives", "Ataque a familiares",
           _S.OTHER_HARMFUL_ACTS, synonyms=("agresión a familiares",)),
        _T("other", "Other", "Otra", _S.OTHER_HARMFUL_ACTS, synonyms=("otro",)),
    ),
    Vocabulary.VICTIM_KIND: (
        _T("individual", "Individual person", "Persona", synonyms=("individual", "person")),
        _T("collective", "Collective or community", "Colectivo o comunidad",
           synonyms=("collective", "colectivo", "community", "comunidad")),
    ),
    Vocabulary.VICTIM_GROUP: (
        _T("defender", "Human rights defender", "Defensor/a de derechos humanos",
           synonyms=("HRD", "defensor de derechos humanos")),
        _T("land_environmental_defender", "Land or environmental defender",
           "Defensor/a de la tierra o del medio ambiente",
           synonyms=("land defender", "environmental defender", "ambientalista",
                     "defensor ambiental", "defensora ambiental")),
        _T("indigenous_leader", "Indigenous leader", "Líder/lideresa indígena",
           synonyms=("líder indígena", "lideresa indígena", "autoridad indígena")),
        _T("woman_hrd", "Woman human rights defender", "Defensora de derechos humanos",
           synonyms=("WHRD", "woman defender")),
        _T("lgbtiq_defender", "LGBTIQ+ defender", "Defensor/a LGBTIQ+",
           synonyms=("LGBTI defender", "defensora LGBTIQ+", "defensor LGBTIQ+")),
        _T("journalist", "Journalist or media worker", "Periodista o trabajador/a de medios",
           synonyms=("journalist", "periodista", "comunicador", "comunicadora")),
        _T("trade_unionist", "Trade unionist", "Sindicalista",
           synonyms=("union leader", "líder sindical")),
        _T("lawyer", "Lawyer", "Abogado/a", synonyms=("abogado", "abogada")),
        _T("community", "Community or collective", "Comunidad o colectivo"),
        _T("other", "Other", "Otro", synonyms=("otra",)),
    ),
    Vocabulary.GENDER: (
        _T("woman", "Woman", "Mujer", synonyms=("female", "femenino")),
        _T("man", "Man", "Hombre", synonyms=("male", "masculino")),
        _T("non_binary", "Non-binary", "No binario", synonyms=("no binaria",)),
        _T("other", "Other", "Otro", synonyms=("otra",)),
    ),
    Vocabulary.PERPETRATOR_TYPE: (
        _T("state", "State actor", "Actor estatal"),
        _T("non_state", "Non-state actor", "Actor no estatal"),
        _T("unknown", "Unknown", "Desconocido"),
    ),
    Vocabulary.PERPETRATOR_CATEGORY: (
        _T("police", "Police", "Policía", parent="state"),
        _T("military", "Military", "Fuerzas militares", parent="state",
           synonyms=("army", "ejército", "militares")),
        _T("judiciary", "Judiciary or prosecution", "Poder judicial o fiscalía", parent="state",
           synonyms=("judiciary", "prosecution", "poder judicial", "fiscalía")),
        _T("public_officials", "Public officials", "Funcionarios públicos", parent="state",
           synonyms=("officials", "government officials", "funcionarios")),
        _T("company", "Company", "Empresa", parent="non_state"),
        _T("private_security", "Private security", "Seguridad privada", parent="non_state"),
        _T("organised_crime", "Organised crime", "Crimen organizado", parent="non_state",
           synonyms=("organized crime", "cartel", "delincuencia organizada")),
        _T("armed_group", "Armed group", "Grupo armado", parent="non_state",
           synonyms=("paramilitary", "paramilitares", "guerrilla")),
        _T("other_non_state", "Other non-state actor", "Otro actor no estatal",
           parent="non_state"),
        _T("unknown", "Unknown", "Desconocido", parent="unknown",
           synonyms=("unidentified", "sin identificar")),
    ),
    Vocabulary.IMPUNITY_STATUS: (
        _T("not_reported", "Not reported to the authorities", "No denunciado ante las autoridades"),
        _T("reported_no_action", "Reported, not investigated", "Denunciado, sin investigación"),
        _T("under_investigation", "Under investigation", "En investigación"),
        _T("prosecution", "Charges brought or on trial", "Con acusación formal o en juicio"),
        _T("conviction", "Perpetrators convicted", "Responsables condenados"),
        _T("acquittal", "Acquittal", "Absolución"),
        _T("closed_without_result", "Closed without result", "Archivado sin resultado"),
        _T("unknown", "Unknown", "Desconocido"),
    ),
    Vocabulary.VERIFICATION_STATUS: (
        _T("unverified", "Unverified", "Sin verificar"),
        _T("in_progress", "Verification in progress", "En proceso de verificación"),
        _T("verified", "Verified", "Verificado"),
        _T("disputed", "Disputed", "Cuestionado"),
    ),
    Vocabulary.CONSENT_LEVEL: (
        _T(ConsentLevel.NONE.value, "No consent to share", "Sin consentimiento para compartir"),
        _T(ConsentLevel.ANONYMISED.value, "Anonymised only", "Solo de forma anónima"),
        _T(ConsentLevel.COALITION.value, "Within the coalition", "Dentro de la coalición"),
        _T(ConsentLevel.NAMED_PARTNERS.value, "Named partners only",
           "Solo organizaciones nombradas"),
        _T(ConsentLevel.PUBLIC.value, "Public", "Público"),
    ),
    Vocabulary.RISK_LEVEL: (
        _T(RiskLevel.LOW.value, "Low", "Bajo"),
        _T(RiskLevel.MEDIUM.value, "Medium", "Medio"),
        _T(RiskLevel.HIGH.value, "High", "Alto"),
        _T(RiskLevel.CRITICAL.value, "Critical", "Crítico"),
    ),
    Vocabulary.ALERT_TYPE: (
        _T("arrest", "Arrest", "Arresto", synonyms=("captura",)),
        _T("detention", "Detention", "Detención"),
        _T("enforced_disappearance", "Enforced disappearance", "Desaparición forzada"),
        _T("raid", "Raid", "Allanamiento"),
        _T("attack", "Attack", "Ataque", synonyms=("agresión",)),
        _T("threat", "Threat", "Amenaza"),
        _T("other", "Other", "Otra", synonyms=("otro",)),
    ),
    Vocabulary.ALERT_ASK: (
        _T("legal_support", "Legal support", "Apoyo jurídico"),
        _T("relocation", "Relocation", "Reubicación"),
        _T("public_statement", "Public statement", "Pronunciamiento público"),
        _T("diplomatic_contact", "Diplomatic contact", "Contacto diplomático"),
        _T("medical", "Medical care", "Atención médica"),
        _T("funds", "Emergency funds", "Fondos de emergencia"),
    ),
    Vocabulary.ALERT_STATUS: (
        _T("active", "Active", "Activa"),
        _T("released", "Person released", "Persona liberada"),
        _T("closed", "Closed", "Cerrada"),
    ),
    Vocabulary.ACK_STATUS: (
        _T("delivered", "Delivered", "Entregada"),
        _T("seen", "Seen", "Vista"),
        _T("helping", "Helping", "Apoyando"),
    ),
    Vocabulary.CAPABILITY: (
        _T("legal_support", "Legal support", "Apoyo jurídico", synonyms=("legal aid",)),
        _T("relocation", "Relocation", "Reubicación"),
        _T("public_statement", "Public statements", "Pronunciamientos públicos"),
        _T("diplomatic_contact", "Diplomatic contacts", "Contactos diplomáticos"),
        _T("medical", "Medical care", "Atención médica"),
        _T("funds", "Emergency funds", "Fondos de emergencia"),
        _T("psychosocial_support", "Psychosocial support", "Apoyo psicosocial"),
        _T("un_advocacy", "UN advocacy", "Incidencia ante la ONU"),
        _T("documentation", "Documentation", "Documentación"),
        _T("media", "Media and communications", "Medios y comunicación"),
        _T("digital_security", "Digital security", "Seguridad digital"),
    ),
    Vocabulary.CAMPAIGN_TARGET_TYPE: (
        _T("institution", "Institution", "Institución"),
        _T("company", "Company", "Empresa"),
        _T("government", "Government", "Gobierno"),
        _T("other", "Other", "Otro"),
    ),
    Vocabulary.CAMPAIGN_ROLE: (
        _T("legal", "Legal", "Jurídico"),
        _T("advocacy", "Advocacy", "Incidencia"),
        _T("media", "Media", "Medios"),
        _T("funding", "Funding", "Financiación"),
        _T("field_support", "Field support", "Apoyo en terreno"),
        _T("research", "Research", "Investigación"),
        _T("other", "Other", "Otro"),
    ),
    Vocabulary.CAMPAIGN_STATUS: (
        _T("planned", "Planned", "Planificada"),
        _T("active", "Active", "Activa"),
        _T("closed", "Closed", "Cerrada"),
    ),
    Vocabulary.CAMPAIGN_POST_TYPE: (
        _T("update", "Update", "Novedad"),
        _T("task", "Task", "Tarea"),
        _T("key_message", "Key message", "Mensaje clave"),
        _T("timeline", "Timeline entry", "Hito del cronograma"),
        _T("leave", "Leaving the campaign", "Salida de la campaña"),
        _T("close_vote", "Vote to close", "Voto para cerrar"),
    ),
    Vocabulary.PROPOSAL_RESPONSE: (
        _T("join", "Join", "Unirse"),
        _T("endorse", "Endorse only", "Solo respaldar"),
        _T("decline", "Decline", "Declinar"),
    ),
    Vocabulary.RETRACTION_REASON: (
        _T("consent_withdrawn", "Consent withdrawn", "Consentimiento retirado"),
        _T("error", "Recorded in error", "Registrado por error"),
        _T("duplicate", "Duplicate", "Duplicado"),
        _T("security", "Security risk", "Riesgo de seguridad"),
        _T("other", "Other", "Otro"),
    ),
    Vocabulary.RESOURCE_TYPE: (
        _T("guide", "Guide", "Guía"),
        _T("template", "Template", "Plantilla"),
        _T("document", "Document", "Documento"),
        _T("contact", "Contact", "Contacto"),
        _T("service", "Service", "Servicio"),
        _T("other", "Other", "Otro"),
    ),
    Vocabulary.SCORE_BAND: (
        _T("none", "No match", "Sin coincidencia"),
        _T("low", "Low", "Baja"),
        _T("medium", "Medium", "Media"),
        _T("high", "High", "Alta"),
    ),
}

VOCABULARIES: Mapping[Vocabulary, tuple[Term, ...]] = MappingProxyType(_VOCABULARIES)

_BY_CODE: dict[Vocabulary, dict[str, Term]] = {
    vocabulary: {term.code: term for term in terms} for vocabulary, terms in _VOCABULARIES.items()
}

_NON_WORD = re.compile(r"[\W_]+")


def normalise_label(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used to match labels."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", without_marks.casefold()).strip()


class AmbiguousTypologyError(Exception):
    """Two terms of one vocabulary share a label or synonym (a bug in this file)."""


def _match_keys(term: Term) -> set[str]:
    return {normalise_label(text) for text in (term.code, term.en, term.es, *term.synonyms)}


def _build_match_index(vocabulary: Vocabulary) -> dict[str, Term]:
    index: dict[str, Term] = {}
    for term in _VOCABULARIES[vocabulary]:
        for key in _match_keys(term):
            if index.setdefault(key, term) is not term:
                raise AmbiguousTypologyError(f"{vocabulary}: {key!r} names two terms")
    return index


_MATCH_INDEX: dict[Vocabulary, dict[str, Term]] = {
    vocabulary: _build_match_index(vocabulary) for vocabulary in Vocabulary
}


def terms(vocabulary: Vocabulary) -> tuple[Term, ...]:
    return _VOCABULARIES[vocabulary]


def codes(vocabulary: Vocabulary) -> tuple[str, ...]:
    return tuple(term.code for term in _VOCABULARIES[vocabulary])


def is_code(vocabulary: Vocabulary, code: object) -> bool:
    return isinstance(code, str) and code in _BY_CODE[vocabulary]


def term(vocabulary: Vocabulary, code: str) -> Term:
    """The term with this code; :class:`UnknownTermError` naming the code otherwise."""
    try:
        return _BY_CODE[vocabulary][code]
    except (KeyError, TypeError):
        raise UnknownTermError(vocabulary.value, code) from None


def label(vocabulary: Vocabulary, code: str, language: Language = "en") -> str:
    return term(vocabulary, code).label(language)


def sdg_category(violation_code: str) -> SdgCategory:
    category = term(Vocabulary.VIOLATION, violation_code).sdg
    assert category is not None  # every violation has one; tests hold this
    return category


def perpetrator_type(category_code: str) -> str:
    """``state``, ``non_state`` or ``unknown`` for a perpetrator category code."""
    parent = term(Vocabulary.PERPETRATOR_CATEGORY, category_code).parent
    assert parent is not None  # every perpetrator category has one; tests hold this
    return parent


def match_term(text: str, vocabulary: Vocabulary) -> Term | None:
    """The term whose code, English or Spanish label, or synonym matches ``text``.

    Case, accents, punctuation and spacing are ignored ("DESAPARICION  forzada" matches).
    ``None`` when nothing matches; the caller decides whether that is an error.
    """
    return _MATCH_INDEX[vocabulary].get(normalise_label(text))


def typology_document() -> dict[str, object]:
    """The whole vocabulary as JSON-safe data, for export and for other tools."""
    return {
        "version": TYPOLOGY_VERSION,
        "languages": list(LANGUAGES),
        "vocabularies": {
            vocabulary.value: [_term_document(item) for item in terms_]
            for vocabulary, terms_ in _VOCABULARIES.items()
        },
    }


def _term_document(item: Term) -> dict[str, object]:
    document: dict[str, object] = {"code": str(item.code), "en": item.en, "es": item.es}
    if item.sdg is not None:
        document["sdg_category"] = item.sdg.value
    if item.parent is not None:
        document["parent"] = item.parent
    if item.synonyms:
        document["synonyms"] = list(item.synonyms)
    return document
