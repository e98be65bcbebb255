"""The custody log of an attachment: append-only, hash-chained, every entry signed by the node.

Each entry is a JSON statement (``minga.custody/1``) naming the attachment, its place in the log
(``seq``, from 1), the hash of the entry before it (``prev``; empty for the first), the time, the
action (ingest, view, download, working copy made, export, share, retraction, countersignature,
C2PA content credentials or a ProofMode bundle checked), the SHA-256 of the original file,
details (content-free: which copy, to whom by org id, what metadata names were removed), and
who signed it (org id and signing key id). The node signs
``canonical_json`` of the entry without its ``signature`` with its Ed25519 signing key, as the
other signed statements of ``federation.identity`` are signed.

The hash of an entry (:func:`entry_hash`) covers its signature too, so each entry commits to the
whole log before it: editing an entry breaks its signature and the next ``prev``; removing or
reordering entries breaks ``seq`` and ``prev``. Removing entries from the *end* leaves a valid
shorter log, so an evidence package also carries a signed head (:mod:`.package`) naming the
number of entries and the last hash.

Everything here is pure; :func:`verify_log` reports every problem it finds instead of stopping
at the first, so a person can see what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.canonical import MAX_SAFE_INTEGER, CanonicalJSONError, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.identity import KidText, OrgIdText, signing_kid
from schemas.errors import describe_validation_error

CUSTODY_TYPE: Final = "minga.custody/1"
SHA256_HEX: Final = r"^[0-9a-f]{64}$"
ENTRY_HASH: Final = r"^[A-Za-z0-9_-]{43}$"


class Action(StrEnum):
    INGEST = "ingest"
    VIEW = "view"
    DOWNLOAD = "download"
    WORKING_COPY = "working-copy"
    EXPORT = "export"
    SHARE = "share"
    RETRACTION = "retraction"
    COUNTERSIGNATURE = "countersignature"
    C2PA_CHECK = "c2pa-check"
    PROOFMODE_CHECK = "proofmode-check"


class Copy(StrEnum):
    ORIGINAL = "original"
    WORKING = "working"


class CustodyEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    type: Literal["minga.custody/1"]
    attachment: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
    prev: Annotated[str, Field(pattern=r"^([A-Za-z0-9_-]{43})?$")]
    at: Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
    action: Annotated[Action, Field(strict=False)]
    sha256: Annotated[str, Field(pattern=SHA256_HEX)]
    details: dict[str, Any]
    org: OrgIdText
    kid: KidText
    signature: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _unsigned(entry: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in entry.items() if k != "signature"})


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash the next entry names as ``prev``: SHA-256 of the whole entry's canonical JSON."""
    return b64u_encode(hashlib.sha256(canonical_json(dict(entry))).digest())


@dataclass(frozen=True)
class LogHead:
    """Where a log ends: how many entries, and the hash of the last ("" when empty)."""

    entries: int = 0
    last_hash: str = ""


def sign_entry(
    signing: Ed25519PrivateKey, org_id: str, head: LogHead, *, attachment: str, at: int,
    action: Action, sha256: str, details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The next entry after ``head``, signed."""
    entry: dict[str, Any] = {
        "type": CUSTODY_TYPE, "attachment": attachment, "seq": head.entries + 1,
        "prev": head.last_hash, "at": at, "action": action.value, "sha256": sha256,
        "details": dict(details or {}), "org": org_id,
        "kid": signing_kid(signing.public_key()),
    }
    entry["signature"] = b64u_encode(signing.sign(_unsigned(entry)))
    CustodyEntry.model_validate(entry)  # what we sign must be what a verifier accepts
    return entry


def head_after(entries: Sequence[Mapping[str, Any]]) -> LogHead:
    return LogHead(len(entries), entry_hash(entries[-1])) if entries else LogHead()


@dataclass(frozen=True)
class LogReport:
    """What :func:`verify_log` found: the problems (empty when the log verifies) and the head."""

    problems: tuple[str, ...]
    head: LogHead
    entries: tuple[CustodyEntry, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _signature_ok(entry: Mapping[str, Any], key: Ed25519PublicKey, signature: str) -> bool:
    try:
        key.verify(b64u_decode(signature), _unsigned(entry))
    except (InvalidSignature, EncodingError):
        return False
    return True


def verify_log(
    entries: Sequence[Any], keys: Mapping[str, Ed25519PublicKey], *,
    attachment: str | None = None, sha256: str | None = None,
) -> LogReport:
    """Check a whole custody log: every entry well-formed and signed by one of ``keys`` (by
    kid), numbered 1, 2, ... without holes, each naming the hash of the one before, all about the
    same attachment and original (``attachment`` and ``sha256`` when given), the first an
    ingest. Every problem is reported with the entry's position (1-based)."""
    problems: list[str] = []
    parsed: list[CustodyEntry] = []
    previous_hash = ""
    attachment = attachment if attachment is not None else _first(entries, "attachment")
    sha256 = sha256 if sha256 is not None else _first(entries, "sha256")
    for position, raw in enumerate(entries, start=1):
        where = f"entry {position}"
        try:
            entry = CustodyEntry.model_validate(raw)
        except ValidationError as error:
            problems.append(f"{where}: malformed ({describe_validation_error(error)})")
            previous_hash = _hash_if_possible(raw)
            continue
        problems.extend(f"{where}: {problem}"
                        for problem in _entry_problems(entry, raw, keys, position,
                                                       previous_hash, attachment, sha256))
        parsed.append(entry)
        previous_hash = entry_hash(raw)
    if not entries:
        problems.append("the log is empty")
    elif parsed and parsed[0].action is not Action.INGEST:
        problems.append("entry 1: the log does not begin with the file's ingest")
    head = LogHead(len(entries), previous_hash)
    return LogReport(tuple(problems), head, tuple(parsed))


def _hash_if_possible(raw: Any) -> str:
    try:
        return entry_hash(raw) if isinstance(raw, Mapping) else ""
    except CanonicalJSONError:
        return ""


def _first(entries: Sequence[Any], name: str) -> str | None:
    if entries and isinstance(entries[0], Mapping):
        value = entries[0].get(name)
        return value if isinstance(value, str) else None
    return None


def _entry_problems(
    entry: CustodyEntry, raw: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey],
    position: int, previous_hash: str, attachment: str | None, sha256: str | None,
) -> list[str]:
    problems = []
    key = keys.get(entry.kid)
    if key is None:
        problems.append("signed with a key that is not the issuer's")
    elif not _signature_ok(raw, key, entry.signature):
        problems.append("the signature does not verify: the entry was changed after signing")
    if entry.seq != position:
        problems.append(f"numbered {entry.seq}, expected {position}: an entry before it was"
                        " removed, or entries were reordered")
    if entry.prev != previous_hash:
        problems.append("does not follow the entry before it: an entry was changed, removed or"
                        " reordered")
    if attachment is not None and entry.attachment != attachment:
        problems.append("is about another attachment")
    if sha256 is not None and entry.sha256 != sha256:
        problems.append("names another original file (SHA-256 differs)")
    return problems
