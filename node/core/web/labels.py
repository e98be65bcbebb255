"""Names shown for roles, case fields, field groups and notices; translated where shown.

Every string is marked with ``N_`` so the catalogue extraction finds it; templates translate
them with ``_()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from node.core.web.i18n import N_
from schemas.fields import FieldGroup
from schemas.typology import Vocabulary

ROLE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "admin": N_("Admin"),
    "editor": N_("Editor"),
    "viewer": N_("Viewer"),
})

ROLE_HINTS: Final[Mapping[str, str]] = MappingProxyType({
    "admin": N_("everything, including users, API tokens and the audit log"),
    "editor": N_("documents, changes and shares cases"),
    "viewer": N_("reads cases, received records and members"),
})

FIELD_GROUP_NAMES: Final[Mapping[FieldGroup, str]] = MappingProxyType({
    FieldGroup.CONTEXT: N_("Context (not identifying)"),
    FieldGroup.LOCATION: N_("Place"),
    FieldGroup.IDENTITY: N_("Names of people and collectives"),
    FieldGroup.NARRATIVE: N_("Free text (may identify people)"),
})

OTHER_PATH_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "attachments": N_("Files (photos, recordings, documents)"),
})
"""Disclosable paths that are not payload fields (``federation.consent.ATTACHMENTS``)."""

CASE_FIELD_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "title": N_("Title"),
    "incident_date": N_("Date of the incident"),
    "country": N_("Country"),
    "place": N_("Place"),
    "narrative": N_("What happened"),
    "violations": N_("Violations"),
    "victims": N_("People and collectives affected"),
    "victims.kind": N_("Affected: person or collective"),
    "victims.name": N_("Affected: name"),
    "victims.native_name": N_("Affected: name in its own script"),
    "victims.romanised_name": N_("Affected: name in Latin script"),
    "victims.groups": N_("Affected: groups"),
    "victims.gender": N_("Affected: gender"),
    "victims.description": N_("Affected: description"),
    "perpetrators": N_("Perpetrators"),
    "perpetrators.category": N_("Perpetrator: category"),
    "perpetrators.name": N_("Perpetrator: name"),
    "perpetrators.description": N_("Perpetrator: description"),
    "impunity_status": N_("Impunity status"),
    "verification_status": N_("Verification status"),
    "independent_sources": N_("Independent sources"),
    "sources": N_("Sources"),
    "consent_level": N_("Consent of the people concerned"),
    "consent_partners": N_("Partners named in the consent"),
    "consent_coalitions": N_("Coalitions the consent covers"),
    "risk_level": N_("Risk level"),
    "impact_story": N_("Story of impact"),
})

ELEMENT_FIELD_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "kind": N_("Person or collective"),
    "name": N_("Name"),
    "native_name": N_("Name in its own script"),
    "romanised_name": N_("Name in Latin script"),
    "groups": N_("Groups"),
    "gender": N_("Gender"),
    "description": N_("Description"),
    "category": N_("Category"),
})

CODED_FIELDS: Final[Mapping[str, Vocabulary]] = MappingProxyType({
    "violations": Vocabulary.VIOLATION,
    "impunity_status": Vocabulary.IMPUNITY_STATUS,
    "verification_status": Vocabulary.VERIFICATION_STATUS,
    "consent_level": Vocabulary.CONSENT_LEVEL,
    "risk_level": Vocabulary.RISK_LEVEL,
    "victims.kind": Vocabulary.VICTIM_KIND,
    "victims.groups": Vocabulary.VICTIM_GROUP,
    "victims.gender": Vocabulary.GENDER,
    "perpetrators.category": Vocabulary.PERPETRATOR_CATEGORY,
    "capabilities": Vocabulary.CAPABILITY,
})
"""Fields holding typology codes, shown with their labels."""

FLASH_MESSAGES: Final[Mapping[str, str]] = MappingProxyType({
    "logged_out": N_("You are logged out."),
    "logged_out_everywhere": N_("You are logged out on every device."),
    "case_created": N_("The case was saved."),
    "case_updated": N_("The case was saved as a new version."),
    "case_deleted": N_("The case was deleted. Its content is wiped from this node."),
    "shared": N_("The case is queued for sending; each recipient gets its own sealed copy."),
    "retracted": N_("A retraction was queued for everyone who received the case."),
    "countersign": N_("The request was sent. The countersignature will appear in the file's"
                      " custody log when the other member's node answers."),
    "password_changed": N_("Your password was changed. Other sessions of yours have ended."),
    "two_step_on": N_("Two-step login is on."),
    "two_step_off": N_("Two-step login is off."),
    "language_changed": N_("The language was changed."),
    "user_updated": N_("The account was changed."),
    "token_revoked": N_("The API token was revoked."),
    "sessions_ended": N_("Every session of this account has ended."),
})

KIND_NAMES: Final[dict[str, str]] = {
    "case": N_("Case"), "campaign": N_("Campaign"), "proposal": N_("Proposal"),
    "endorsement": N_("Endorsement"), "sign-on": N_("Signature"), "alert": N_("Alert"),
    "alert-ack": N_("Alert acknowledgement"), "aggregate": N_("Aggregate figures"),
    "retraction": N_("Retraction"), "member-profile": N_("Member profile"),
    "resource": N_("Resource"),
}
