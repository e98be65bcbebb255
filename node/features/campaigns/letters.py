"""Sign-on letters (M7): a letter text with a deadline and an audience, signed by organisations.

- A **letter** is a ``letter`` record (``minga.letter/1``: title, text, deadline, and the campaign
  whose participants are its audience, or none for a whole coalition). It travels like every
  record: sealed to each member of the audience, in the coalition's room or the campaign room.
  A letter belongs to one coalition (decision 0032): the one named when it is written, or its
  campaign's; its signatures go through that coalition only.
- A **signature** is a ``sign-on`` record from the signing organisation, sent to the same
  audience so every node shows the signatories live. It names the letter version and the
  SHA-256 of the letter (canonical JSON of title and text), and carries a *signatory statement*
  signature: Ed25519, by the organisation's signing key, over the canonical JSON (RFC 8785) of
  :func:`statement` (letter, version, hash, organisation id and name, signatory name and role,
  signing time, key id). That is what lets anyone check the exported letter without Minga.
- Signatures after the deadline are refused by the signing node with a clear message, and a late
  sign-on that arrives anyway is listed as late, never as a signatory.
- **Export**: plain text and print-ready HTML with the signatory list and a verification
  appendix (per signatory: the statement, the organisation's public key, its fingerprint and the
  signature). :func:`verify_letter_appendix` (pure) checks an exported text or its JSON data:
  it fails if the letter text, a signatory line or any appendix line was altered.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.canonical import canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.identity import signing_kid
from federation.keys import KeyNotTrusted
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sync_host import roster_trust
from node.features.campaigns.records import (
    CampaignItem,
    CampaignRecords,
    coalition_of_claims,
    first_coalition_id,
)
from node.features.campaigns.service import (
    CLOSED,
    CampaignError,
    CampaignNotFound,
    NotAllowed,
    ProposalState,
    coalition_of_state,
    issue,
    other_members,
    readable,
    state_of,
)
from schemas.common import RecordRef
from schemas.payloads import Letter, SignOn

SIGNATORIES_HEADING: Final = "SIGNATORIES"
APPENDIX_HEADING: Final = "VERIFICATION APPENDIX"
_APPENDIX_NOTE: Final = (
    "The letter SHA-256 is the SHA-256, in hex, of the UTF-8 bytes of the canonical JSON\n"
    "(RFC 8785) of an object with two members, \"text\" (the letter text) and \"title\"; for two\n"
    "strings that is, in Python: hashlib.sha256(json.dumps({\"text\": text, \"title\": title},\n"
    "sort_keys=True, separators=(\",\", \":\"), ensure_ascii=False).encode()).hexdigest().\n"
    "Each signature below is an Ed25519 signature by the organisation's signing key over the\n"
    "canonical JSON (RFC 8785) of the statement above it. The key fingerprint is the key id\n"
    "Minga shows for the organisation; compare it with the organisation out of band.")


class LetterError(CampaignError):
    pass


class LetterNotFound(LetterError):
    pass


class LateSignature(LetterError):
    pass


# --- the pure part ----------------------------------------------------------------------------


def letter_sha256(title: str, text: str) -> str:
    return hashlib.sha256(canonical_json({"title": title, "text": text})).hexdigest()


def statement(*, letter: RecordRef, letter_version: int, letter_hash: str, org_id: str,
              organisation: str, signatory_name: str, signatory_role: str | None,
              signed_at: int, kid: str) -> dict[str, Any]:
    """What a signing organisation signs, and what the appendix prints."""
    return {"letter": {"issuer": letter.issuer, "record_id": letter.record_id},
            "letter_version": letter_version, "letter_sha256": letter_hash, "org_id": org_id,
            "organisation": organisation, "signatory_name": signatory_name,
            "signatory_role": signatory_role, "signed_at": signed_at, "signing_kid": kid}


@dataclass(frozen=True)
class Signature:
    org_id: str
    statement: dict[str, Any]
    signature: str
    issued_at: int

    @property
    def signatory_name(self) -> str:
        return str(self.statement["signatory_name"])


@dataclass(frozen=True)
class LetterState:
    issuer: str
    record_id: str
    version: int
    issued_at: int
    letter: Letter
    sha256: str
    signatures: tuple[Signature, ...]
    late: tuple[str, ...]  # org ids whose signature came after the deadline
    open: bool
    coalition_id: str | None = None
    """The coalition the letter went to (decision 0032)."""

    @property
    def ref(self) -> RecordRef:
        return RecordRef(issuer=self.issuer, record_id=self.record_id)


def _signature(item: CampaignItem, letter: RecordRef, version: int, sha: str
               ) -> Signature | None:
    fields = SignOn.model_fields
    sign_on = SignOn.model_validate({k: v for k, v in item.claims.items() if k in fields})
    if sign_on.letter_sha256 != sha or sign_on.letter_version != version \
            or sign_on.signature is None or sign_on.signing_kid is None:
        return None
    said = statement(letter=letter, letter_version=version, letter_hash=sha, org_id=item.issuer,
                     organisation=sign_on.organisation_name or item.issuer,
                     signatory_name=sign_on.signatory_name,
                     signatory_role=sign_on.signatory_role, signed_at=item.issued_at,
                     kid=sign_on.signing_kid)
    return Signature(item.issuer, said, sign_on.signature, item.issued_at)


def letter_state(items: Sequence[CampaignItem], now: int,
                 first_coalition: str | None = None) -> LetterState | None:
    """The letter whose thread ``items`` are; one naming no coalition went to
    ``first_coalition`` (the node's first)."""
    items = readable(items)
    head = next((i for i in items if i.kind == "letter" and i.record_id == i.thread), None)
    if head is None:
        return None
    letter = Letter.model_validate({k: v for k, v in head.claims.items()
                                    if k in Letter.model_fields})
    coalition = coalition_of_claims(head.claims, first_coalition)
    # A signature that came through another coalition is not one of this letter's.
    items = [i for i in items if coalition_of_claims(i.claims, first_coalition) == coalition]
    ref = RecordRef(issuer=head.issuer, record_id=head.record_id)
    sha = letter_sha256(letter.title, letter.text)
    signatures, late = [], []
    for item in items:
        if item.kind != "sign-on":
            continue
        if item.issued_at > letter.deadline:
            late.append(item.issuer)
            continue
        found = _signature(item, ref, head.version, sha)
        if found is not None:
            signatures.append(found)
    return LetterState(head.issuer, head.record_id, head.version, head.issued_at, letter, sha,
                       tuple(sorted(signatures, key=lambda s: (s.issued_at, s.org_id))),
                       tuple(sorted(late)), now <= letter.deadline, coalition)


def signatory_line(number: int, said: Mapping[str, Any]) -> str:
    role = f", {said['signatory_role']}" if said.get("signatory_role") else ""
    return f"{number}. {said['signatory_name']}{role} — {said['organisation']} ({said['org_id']})"


@dataclass(frozen=True)
class AppendixEntry:
    statement: dict[str, Any]
    public_key: str
    key_fingerprint: str
    signature: str


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def export_data(state: LetterState, entries: Sequence[AppendixEntry]) -> dict[str, Any]:
    return {"title": state.letter.title, "text": state.letter.text,
            "letter": {"issuer": state.issuer, "record_id": state.record_id,
                       "version": state.version},
            "letter_sha256": state.sha256, "deadline": state.letter.deadline,
            "signatories": [{"statement": e.statement, "public_key": e.public_key,
                             "key_fingerprint": e.key_fingerprint, "signature": e.signature}
                            for e in entries]}


def export_text(state: LetterState, entries: Sequence[AppendixEntry]) -> str:
    title = state.letter.title
    lines = [title, "=" * max(3, min(len(title), 72)), "", state.letter.text, "",
             f"{SIGNATORIES_HEADING} ({len(entries)})"]
    lines += [signatory_line(n, e.statement) for n, e in enumerate(entries, 1)]
    lines += ["", APPENDIX_HEADING,
              f"Letter: {state.issuer}/{state.record_id} version {state.version}",
              f"Letter SHA-256: {state.sha256}",
              f"Signing deadline: {_when(state.letter.deadline)}", _APPENDIX_NOTE, ""]
    for n, entry in enumerate(entries, 1):
        lines += [f"[{n}] statement: {canonical_json(entry.statement).decode('utf-8')}",
                  f"[{n}] public key: {entry.public_key}",
                  f"[{n}] key fingerprint: {entry.key_fingerprint}",
                  f"[{n}] signature: {entry.signature}"]
    return "\n".join(lines) + "\n"


def export_html(state: LetterState, entries: Sequence[AppendixEntry]) -> str:
    e = html.escape
    paragraphs = "".join(f"<p>{e(p)}</p>" for p in state.letter.text.split("\n\n"))
    signatories = "".join(f"<li>{e(signatory_line(n, x.statement).split('. ', 1)[1])}</li>"
                          for n, x in enumerate(entries, 1))
    appendix = "".join(
        f"<li><pre>statement: {e(canonical_json(x.statement).decode('utf-8'))}\n"
        f"public key: {e(x.public_key)}\nkey fingerprint: {e(x.key_fingerprint)}\n"
        f"signature: {e(x.signature)}</pre></li>" for x in entries)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{e(state.letter.title)}</title><style>"
        "@page{size:A4;margin:2cm}body{font-family:Georgia,serif;max-width:42em;margin:auto}"
        "pre{white-space:pre-wrap;word-break:break-all;font-size:8pt}"
        ".appendix{page-break-before:always;font-size:9pt}</style></head><body>"
        f"<h1>{e(state.letter.title)}</h1>{paragraphs}"
        f"<h2>Signatories ({len(entries)})</h2><ol>{signatories}</ol>"
        f"<section class=\"appendix\"><h2>Verification appendix</h2>"
        f"<p>Letter {e(state.issuer)}/{e(state.record_id)} version {state.version}<br>"
        f"Letter SHA-256: <code>{state.sha256}</code><br>"
        f"Signing deadline: {_when(state.letter.deadline)}</p>"
        f"<p>{e(_APPENDIX_NOTE)}</p><ol>{appendix}</ol></section></body></html>")


# --- verification (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class AppendixVerification:
    valid: bool
    signatories: int
    problems: tuple[str, ...]


def _check_entry(number: int, entry: Mapping[str, Any], sha: str) -> list[str]:
    where = f"signatory {number}"
    said = entry.get("statement")
    if not isinstance(said, Mapping):
        return [f"{where}: no statement"]
    try:
        key = Ed25519PublicKey.from_public_bytes(b64u_decode(str(entry.get("public_key"))))
        key.verify(b64u_decode(str(entry.get("signature"))), canonical_json(dict(said)))
    except (InvalidSignature, EncodingError, ValueError):
        return [f"{where}: the signature does not verify"]
    problems = []
    if signing_kid(key) != entry.get("key_fingerprint") or said.get("signing_kid") != \
            entry.get("key_fingerprint"):
        problems.append(f"{where}: the key fingerprint does not match the public key")
    if said.get("letter_sha256") != sha:
        problems.append(f"{where}: signed another text of the letter")
    return problems


def _verify_data(data: Mapping[str, Any], listed: Sequence[str] | None) -> AppendixVerification:
    sha = data.get("letter_sha256")
    problems = []
    if sha != letter_sha256(str(data.get("title")), str(data.get("text"))):
        problems.append("the letter text does not match its SHA-256")
    entries = data.get("signatories")
    entries = entries if isinstance(entries, list) else []
    for number, entry in enumerate(entries, 1):
        problems += _check_entry(number, entry if isinstance(entry, Mapping) else {}, str(sha))
    if listed is not None:
        expected = [signatory_line(n, e["statement"]) for n, e in enumerate(entries, 1)
                    if isinstance(e, Mapping) and isinstance(e.get("statement"), Mapping)]
        if list(listed) != expected:
            problems.append("the signatory list does not match the signed statements")
    return AppendixVerification(not problems, len(entries), tuple(problems))


def _parse_text(text: str) -> tuple[dict[str, Any], list[str]]:
    """The export data and the printed signatory lines of an exported plain text."""
    title, _, rest = text.partition("\n")
    _, _, body = rest.partition("\n\n")
    marker = body.rfind(f"\n\n{SIGNATORIES_HEADING} (")
    appendix_at = body.rfind(f"\n\n{APPENDIX_HEADING}\n")
    if marker < 0 or appendix_at < marker:
        raise ValueError("this is not an exported Minga letter")
    listed = body[marker + 2:appendix_at].split("\n")[1:]
    data: dict[str, Any] = {"title": title, "text": body[:marker], "signatories": []}
    entries: dict[str, dict[str, Any]] = {}
    for line in body[appendix_at:].split("\n"):
        if line.startswith("Letter SHA-256: "):
            data["letter_sha256"] = line.removeprefix("Letter SHA-256: ")
        if not line.startswith("[") or "] " not in line:
            continue
        number, _, field = line[1:].partition("] ")
        name, _, value = field.partition(": ")
        entry = entries.setdefault(number, {})
        entry[name.replace(" ", "_")] = json.loads(value) if name == "statement" else value
    data["signatories"] = list(entries.values())
    return data, listed


def verify_letter_appendix(text_or_data: str | Mapping[str, Any]) -> AppendixVerification:
    """Check an exported letter (the plain text, or its JSON data): the letter hash, every
    signatory's signature and key fingerprint, and (text) the printed signatory list."""
    if isinstance(text_or_data, Mapping):
        return _verify_data(text_or_data, None)
    try:
        data, listed = _parse_text(text_or_data)
    except (ValueError, json.JSONDecodeError) as error:
        return AppendixVerification(False, 0, (f"unreadable export: {type(error).__name__}",))
    return _verify_data(data, listed)


# --- the shell --------------------------------------------------------------------------------


async def letter_of(node: Node, issuer: str, record_id: str, now: int) -> LetterState:
    async with node.store.read() as tx:
        items = await CampaignRecords(tx.session, tx.cipher).latest(thread=record_id)
        first = await first_coalition_id(tx)
    state = letter_state(items, now, first)
    if state is None or state.issuer != issuer:
        raise LetterNotFound(f"no letter {issuer}/{record_id} on this node")
    return await _open_as_signing_is(node, state, now)


async def _open_as_signing_is(node: Node, state: LetterState, now: int) -> LetterState:
    """The state, ``open`` only while signing is allowed: before the deadline and, for a
    campaign's letter, while the campaign has an open room (what :func:`sign_letter` needs)."""
    campaign = state.letter.campaign
    if not state.open or campaign is None:
        return state
    try:
        allowed = open_signing_room(await state_of(node, campaign.issuer, campaign.record_id,
                                                   now)) is not None
    except CampaignNotFound:
        allowed = False
    return state if allowed else replace(state, open=False)


def open_signing_room(campaign: ProposalState) -> str | None:
    """The room where a joint campaign's letter is signed, while the campaign is open."""
    if campaign.campaign is None or campaign.status == CLOSED:
        return None
    return campaign.campaign.room_id


async def all_letters(node: Node, now: int) -> list[LetterState]:
    async with node.store.read() as tx:
        records = CampaignRecords(tx.session, tx.cipher)
        threads = [await records.latest(thread=head.record_id)
                   for head in await records.latest(kind="letter")]
        first = await first_coalition_id(tx)
    states = [await _open_as_signing_is(node, state, now)
              for state in (letter_state(items, now, first) for items in threads)
              if state is not None]
    return sorted(states, key=lambda s: -s.issued_at)


async def _audience(node: Node, campaign: RecordRef | None, coalition_id: str | None, now: int
                    ) -> tuple[list[str], str, str]:
    """(recipients, room, coalition): the campaign's other participants in its room, or the
    members of the coalition ``coalition_id`` in its room."""
    if campaign is None:
        try:
            coalition = await node.chosen_coalition(coalition_id)
        except CoalitionNotChosen:
            if coalition_id is None:
                raise
            raise NotAllowed("this node left the coalition of this letter") from None
        return (await other_members(node, coalition.coalition_id), coalition.room_id,
                coalition.coalition_id)
    state = await state_of(node, campaign.issuer, campaign.record_id, now)
    room = open_signing_room(state)
    if room is None:
        raise NotAllowed("the campaign has no open room")
    if node.org_id not in state.participants:
        raise NotAllowed("this organisation does not take part in the campaign")
    coalition = await coalition_of_state(node, state)
    return ([p for p in state.participants if p != node.org_id], room,
            coalition.coalition_id)


async def create_letter(node: Node, title: str, text: str, deadline: int,
                        campaign: RecordRef | None, *, actor: str, now: int,
                        coalition_id: str | None = None) -> LetterState:
    """A letter to the coalition ``coalition_id`` (the node's only one when None), or to a
    campaign's participants (the campaign's coalition)."""
    if deadline <= now:
        raise LateSignature("deadline: must be in the future")
    letter = Letter(title=title, text=text, deadline=deadline, campaign=campaign)
    recipients, room, coalition = await _audience(node, campaign, coalition_id, now)
    record = await issue(node, letter, recipients, room, coalition, actor=actor, issued_at=now)
    return await letter_of(node, node.org_id, record.record_id, now)


def _late_message(deadline: int) -> str:
    return (f"the signing deadline of this letter passed at {_when(deadline)}; "
            "late signatures are not accepted")


async def sign_letter(node: Node, issuer: str, record_id: str, signatory_name: str,
                      signatory_role: str | None, *, actor: str, now: int) -> LetterState:
    """Sign for this organisation (again: a new version replaces the signatory)."""
    state = await letter_of(node, issuer, record_id, now)
    if now > state.letter.deadline:
        raise LateSignature(_late_message(state.letter.deadline))
    kid = node.keys.signing_kid
    said = statement(letter=state.ref, letter_version=state.version, letter_hash=state.sha256,
                     org_id=node.org_id, organisation=node.own.name,
                     signatory_name=signatory_name, signatory_role=signatory_role,
                     signed_at=now, kid=kid)
    sign_on = SignOn(letter=state.ref, letter_version=state.version, letter_sha256=state.sha256,
                     signatory_name=signatory_name, signatory_role=signatory_role,
                     organisation_name=node.own.name, signing_kid=kid,
                     signature=b64u_encode(node.keys.signing.sign(canonical_json(said))))
    if state.letter.campaign is None and state.coalition_id is None:
        raise LetterError("this node is in no coalition yet")
    recipients, room, coalition = await _audience(node, state.letter.campaign,
                                                  state.coalition_id, now)
    if issuer != node.org_id and issuer not in recipients:
        recipients.append(issuer)
    async with node.store.read() as tx:
        mine = [i for i in await CampaignRecords(tx.session, tx.cipher).latest(
            kind="sign-on", thread=record_id) if i.issuer == node.org_id]
    await issue(node, sign_on, recipients, room, coalition, actor=actor, issued_at=now,
                record_id=mine[0].record_id if mine else None,
                version=mine[0].version + 1 if mine else 1)
    return await letter_of(node, issuer, record_id, now)


async def appendix_entries(node: Node, state: LetterState) -> list[AppendixEntry]:
    """Each signatory's statement with the key the roster trusts for it; a signature that does
    not verify under that key is left out."""
    resolver = (await roster_trust(node)).resolver
    entries = []
    for signature in state.signatures:
        kid = str(signature.statement["signing_kid"])
        if signature.org_id == node.org_id:
            key = node.keys.signing.public_key()
        else:
            try:
                found = resolver.signing_key_for(signature.org_id, kid, signature.issued_at)
            except KeyNotTrusted:
                continue
            if not isinstance(found, Ed25519PublicKey):
                continue
            key = found
        entry = AppendixEntry(signature.statement, b64u_encode(key.public_bytes_raw()),
                              signing_kid(key), signature.signature)
        if not _check_entry(0, export_data(state, [entry])["signatories"][0], state.sha256):
            entries.append(entry)
    return entries
