"""Sign-on letters, the pure part: signatories, late signatures, export and its verification."""

from __future__ import annotations

import hashlib
import json

import pytest

from federation.canonical import canonical_json
from federation.encoding import b64u_encode
from federation.identity import OrgKeys, signing_kid
from node.core.sharing import record_claims
from node.features.campaigns.letters import (
    APPENDIX_HEADING,
    AppendixEntry,
    LetterState,
    export_data,
    export_html,
    export_text,
    letter_sha256,
    letter_state,
    statement,
    verify_letter_appendix,
)
from node.features.campaigns.records import CampaignItem, thread_of
from schemas.common import RecordRef
from schemas.fields import disclosable_paths
from schemas.ids import new_record_id
from schemas.payloads import Letter, SignOn
from schemas.records import Payload, build_record

AUTHOR, SIGNER_B, SIGNER_C = OrgKeys.generate(), OrgKeys.generate(), OrgKeys.generate()
T0 = 1_717_000_000
DEADLINE = T0 + 100
TITLE = "Carta abierta: liberen a Ligaya"
TEXT = "Exigimos su liberación inmediata.\n\nWe call for all charges to be dropped."


def item(issuer: str, payload: Payload, at: int, record_id: str | None = None) -> CampaignItem:
    record = build_record(issuer, payload, record_id=record_id or new_record_id(), issued_at=at)
    claims = record_claims(record, disclosable_paths(record.record_kind))
    thread = thread_of(record.kind, record.record_id, claims)
    assert thread is not None
    return CampaignItem(issuer, record.record_id, 1, record.kind, thread, at, claims)


LETTER = item(AUTHOR.org_id, Letter(title=TITLE, text=TEXT, deadline=DEADLINE), T0)
REF = RecordRef(issuer=LETTER.issuer, record_id=LETTER.record_id)


def sign(keys: OrgKeys, organisation: str, name: str, at: int, role: str | None = None,
         sha: str | None = None) -> CampaignItem:
    sha = sha or letter_sha256(TITLE, TEXT)
    said = statement(letter=REF, letter_version=1, letter_hash=sha, org_id=keys.org_id,
                     organisation=organisation, signatory_name=name, signatory_role=role,
                     signed_at=at, kid=keys.signing_kid)
    signature = b64u_encode(keys.signing.sign(canonical_json(said)))
    return item(keys.org_id, SignOn(letter=REF, letter_version=1, letter_sha256=sha,
                                    signatory_name=name, signatory_role=role,
                                    organisation_name=organisation, signing_kid=keys.signing_kid,
                                    signature=signature), at)


def entries(state: LetterState, keys: dict[str, OrgKeys]) -> list[AppendixEntry]:
    found = []
    for s in state.signatures:
        public = keys[s.org_id].signing.public_key()
        found.append(AppendixEntry(s.statement, b64u_encode(public.public_bytes_raw()),
                                   signing_kid(public), s.signature))
    return found


def signed_state() -> tuple[LetterState, list[AppendixEntry]]:
    items = [LETTER, sign(AUTHOR, "Corporación Tierra Viva", "Óscar Ñañez", T0 + 5, "Director"),
             sign(SIGNER_B, "Haki Ardhi Trust", "Wanjiru Atieno", T0 + 6),
             sign(SIGNER_C, "Bantay Katutubo", "Datu Makabayan", DEADLINE + 1)]
    state = letter_state(items, T0 + 10)
    assert state is not None
    keys = {k.org_id: k for k in (AUTHOR, SIGNER_B, SIGNER_C)}
    return state, entries(state, keys)


def test_signatures_before_the_deadline_count_and_late_ones_are_listed_as_late() -> None:
    state, _ = signed_state()
    assert [s.signatory_name for s in state.signatures] == ["Óscar Ñañez", "Wanjiru Atieno"]
    assert state.late == (SIGNER_C.org_id,) and state.open


def test_a_signature_on_another_text_is_not_a_signatory() -> None:
    other = sign(SIGNER_B, "Haki Ardhi Trust", "Wanjiru", T0 + 6, sha="ab" * 32)
    state = letter_state([LETTER, other], T0 + 7)
    assert state is not None and state.signatures == ()


def test_the_exported_text_verifies() -> None:
    state, appendix = signed_state()
    text = export_text(state, appendix)
    result = verify_letter_appendix(text)
    assert result.valid and result.signatories == 2, result.problems
    assert verify_letter_appendix(export_data(state, appendix)).valid


@pytest.mark.parametrize(("title", "text"), [
    (TITLE, TEXT), ("Ñandú «ß» \u2028 tab\there", "línea\r\nctrl \x01 \x7f end \\ \" done"),
    ("𝄞 emoji 🙂", "日本語のテキスト"),
])
def test_the_appendix_says_how_to_recompute_the_letter_hash_with_plain_json(
    title: str, text: str
) -> None:
    """An outside verifier without Minga follows the appendix's recipe and gets the same hash."""
    recipe = hashlib.sha256(json.dumps({"text": text, "title": title}, sort_keys=True,
                                       separators=(",", ":"), ensure_ascii=False).encode())
    assert recipe.hexdigest() == letter_sha256(title, text)
    state, appendix = signed_state()
    exported = export_text(state, appendix)
    assert "hashlib.sha256(json.dumps(" in exported and "RFC 8785" in exported


def _signatory_lines(text: str) -> list[int]:
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("SIGNATORIES ("))
    return [i for i, line in enumerate(lines)
            if (i > start and line[:1].isdigit() and ". " in line) or line.startswith("[")]


def test_altering_any_signatory_line_fails_verification() -> None:
    state, appendix = signed_state()
    text = export_text(state, appendix)
    lines = text.split("\n")
    numbers = _signatory_lines(text)
    assert len(numbers) == 2 + 4 * 2
    for number in numbers:
        for position in (len(lines[number]) - 1, len(lines[number]) // 2):
            changed = list(lines)
            original = changed[number][position]
            replacement = "B" if original != "B" else "C"
            changed[number] = changed[number][:position] + replacement + \
                changed[number][position + 1:]
            result = verify_letter_appendix("\n".join(changed))
            assert not result.valid, (number, position)


def test_dropping_a_signatory_or_changing_the_letter_fails() -> None:
    state, appendix = signed_state()
    text = export_text(state, appendix)
    assert not verify_letter_appendix(text.replace("Exigimos", "Pedimos", 1)).valid
    without_b = [line for line in text.split("\n") if "Wanjiru" not in line]
    assert not verify_letter_appendix("\n".join(without_b)).valid
    data = export_data(state, appendix)
    data["signatories"][1]["statement"]["organisation"] = "Another Trust"
    assert not verify_letter_appendix(data).valid


def test_a_key_that_is_not_the_signers_fails() -> None:
    state, appendix = signed_state()
    impostor = OrgKeys.generate().signing.public_key()
    appendix[1] = AppendixEntry(appendix[1].statement,
                                b64u_encode(impostor.public_bytes_raw()),
                                signing_kid(impostor), appendix[1].signature)
    result = verify_letter_appendix(export_text(state, appendix))
    assert not result.valid and any("signature" in p for p in result.problems)


@pytest.mark.parametrize("text", ["", "just a note", f"T\n===\n\nbody\n\n{APPENDIX_HEADING}\n"])
def test_something_that_is_not_an_export_does_not_verify(text: str) -> None:
    assert not verify_letter_appendix(text).valid


def test_the_html_export_escapes_and_lists_every_signatory() -> None:
    state, appendix = signed_state()
    page = export_html(state, appendix)
    assert page.startswith("<!doctype html>") and "Óscar Ñañez, Director" in page
    assert page.count("<li><pre>statement:") == 2 and "<script" not in page
