"""What a ProofMode proof bundle says about its media: our verdict from the checked facts (pure).

A ProofMode bundle (Guardian Project) is a ZIP holding, for each media file, a proof
``<id>.proof.json`` (the media's SHA-256 among device and place notes, and the same as CSV),
OpenPGP detached signatures over the media (``<id>.asc``) and over the proof
(``<id>.proof.json.asc``), and the device's public key ``pubkey.asc``. ``<id>`` is the media's
SHA-256 in the Android app's bundles and the media's own name in others; both are read. The
adapter (:mod:`.proofmode_check`) hashes the media and lets ``gpg`` check the signatures with only
the bundle's key; this module pairs the parts and turns those facts into the same verdict a C2PA
manifest gets (:mod:`.credentials`). The key is the device's own, self-asserted: a bundle whose
hashes and signatures verify is "valid, signer not on a trust list", never trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from node.features.evidence.credentials import Credentials, Problem, Verdict

PUBKEY: Final = "pubkey.asc"
PROOF_SUFFIX: Final = ".proof.json"
SIGNATURE_SUFFIX: Final = ".asc"
GENERATOR: Final = "ProofMode"
HASH_FIELD: Final = "File Hash SHA256"
PATH_FIELD: Final = "File Path"
MAX_PROOFS: Final = 100
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
_SIDE_SUFFIXES: Final = (".asc", ".proof.json", ".proof.csv", ".ots", ".gst", ".json", ".csv")


class Signature(StrEnum):
    """What ``gpg`` said about one detached signature, checked with only the bundle's key."""

    GOOD = "good"
    BAD = "bad"
    """It does not match the data, or it is not a signature at all."""
    UNKNOWN_KEY = "unknown-key"
    """Made by a key that is not the bundle's."""
    EXPIRED_KEY = "expired-key"
    REVOKED_KEY = "revoked-key"
    MISSING = "missing"
    """The bundle holds no such signature."""


@dataclass(frozen=True)
class Item:
    """Where one media file's parts are in the bundle (member names; empty when absent)."""

    proof: str
    media: str
    media_signature: str
    proof_signature: str


@dataclass(frozen=True)
class ItemFacts:
    """What the adapter found for one :class:`Item`."""

    media_found: bool
    expected_sha256: str
    """From the proof JSON; empty when it names none."""
    actual_sha256: str
    media_signature: Signature
    proof_signature: Signature
    fingerprint: str = ""
    """The fingerprint of the key that made the good signatures."""


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _stem(proof: str) -> str:
    return proof[: -len(PROOF_SUFFIX)]


def expected_hash(proof_json: bytes, proof_name: str) -> str:
    """The media's SHA-256 as the proof gives it (lower-case hex), or ""; where the proof is
    named by the hash (the Android app's bundles) and says none, its name."""
    try:
        proof = json.loads(proof_json)
    except ValueError:
        proof = None
    value = proof.get(HASH_FIELD) if isinstance(proof, dict) else None
    if isinstance(value, str) and _SHA256.match(value.strip().lower()):
        return value.strip().lower()
    stem = _base(_stem(proof_name)).lower()
    return stem if _SHA256.match(stem) else ""


def named_media(proof_json: bytes) -> str:
    """The base name of the media file the proof names (``File Path``), or ""."""
    try:
        proof = json.loads(proof_json)
    except ValueError:
        return ""
    value = proof.get(PATH_FIELD) if isinstance(proof, dict) else None
    return _base(value) if isinstance(value, str) else ""


def _is_media(name: str) -> bool:
    return (not name.endswith("/") and _base(name) != PUBKEY
            and not _base(name).lower().endswith(_SIDE_SUFFIXES))


def plan(names: list[str], named: dict[str, str]) -> list[Item]:
    """The parts of each media file among a bundle's member ``names``. ``named``: the media
    base name each proof's JSON gives (:func:`named_media`), by proof member name. The media
    is the member called as the proof's stem, else the one the proof names."""
    members = set(names)
    media_by_base = {_base(name): name for name in names if _is_media(name)}
    items: list[Item] = []
    for proof in sorted(name for name in names if name.endswith(PROOF_SUFFIX))[:MAX_PROOFS]:
        stem = _stem(proof)
        media = stem if stem in members and _is_media(stem) else \
            media_by_base.get(named.get(proof, ""), "")
        signature = f"{stem}{SIGNATURE_SUFFIX}"
        if signature not in members and media:
            signature = f"{media}{SIGNATURE_SUFFIX}"
        items.append(Item(proof=proof, media=media,
                          media_signature=signature if signature in members else "",
                          proof_signature=(f"{proof}{SIGNATURE_SUFFIX}"
                                           if f"{proof}{SIGNATURE_SUFFIX}" in members else "")))
    return items


_SIGNATURE_PROBLEMS: Final = {
    Signature.BAD: (Problem.SIGNATURE, "bad"),
    Signature.UNKNOWN_KEY: (Problem.SIGNATURE, "unknownKey"),
    Signature.EXPIRED_KEY: (Problem.EXPIRED, "keyExpired"),
    Signature.REVOKED_KEY: (Problem.REVOKED, "keyRevoked"),
}


def _item_findings(facts: ItemFacts, *,
                   has_key: bool) -> tuple[list[tuple[Problem, str]], list[str]]:
    """(problems with their codes, codes of missing parts) for one media file; without the
    bundle's key its signatures say nothing."""
    problems: list[tuple[Problem, str]] = []
    missing: list[str] = []
    if not facts.media_found:
        missing.append("media.missing")
    if not facts.expected_sha256:
        missing.append("proof.hashMissing")
    if facts.media_found and facts.expected_sha256 \
            and facts.actual_sha256 != facts.expected_sha256:
        problems.append((Problem.ALTERED, "media.hashMismatch"))
    for part, signature in (("mediaSignature", facts.media_signature),
                            ("proofSignature", facts.proof_signature)):
        if not has_key or (part == "mediaSignature" and not facts.media_found):
            continue  # nothing to check it with, or against
        if signature is Signature.MISSING:
            missing.append(f"{part}.missing")
        elif signature in _SIGNATURE_PROBLEMS:
            problem, code = _SIGNATURE_PROBLEMS[signature]
            problems.append((problem, f"{part}.{code}"))
    return problems, missing


def judge(*, has_key: bool, items: list[ItemFacts]) -> Credentials:
    """The verdict on a bundle: invalid when any media's hash or any signature fails (what
    failed is named even when other parts are missing), unreadable when parts are missing
    (the key, a proof, a media file, a signature) and nothing failed, else valid with the
    signing key's fingerprint as the signer, not trusted."""
    problems: list[Problem] = []
    codes: list[str] = [] if has_key else ["pubkey.missing"]
    if not items:
        codes.append("proof.missing")
    missing = not has_key or not items
    for facts in items:
        found, absent = _item_findings(facts, has_key=has_key)
        problems += [problem for problem, _ in found]
        codes += [code for _, code in found] + absent
        missing = missing or bool(absent)
    codes = list(dict.fromkeys(codes))
    fingerprints = {facts.fingerprint for facts in items if facts.fingerprint}
    signer = fingerprints.pop() if len(fingerprints) == 1 else ""
    if problems:
        return Credentials(Verdict.INVALID, problems=tuple(dict.fromkeys(problems)),
                           codes=tuple(codes), claim_generator=GENERATOR, signer=signer)
    if missing:
        return Credentials(Verdict.UNREADABLE, codes=tuple(codes), claim_generator=GENERATOR)
    return Credentials(Verdict.VALID, signer_trusted=False, claim_generator=GENERATOR,
                       signer=signer)


def unreadable(reason: str) -> Credentials:
    """The verdict on a bundle that could not be opened or checked at all (``reason``: a code
    such as ``bundle.unreadable``, never file content)."""
    return Credentials(Verdict.UNREADABLE, codes=(reason,), claim_generator=GENERATOR)

