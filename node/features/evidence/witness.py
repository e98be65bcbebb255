"""A second organisation's word on time: the countersignature statement (pure).

The holder of a file asks another member (the *witness*) to attest that the file existed at a
time. The witness never sees the file nor its hash: it signs a **commitment**,
``SHA-256("minga/countersign/v1|" + salt + sha256_hex)`` with a random 16-byte salt that only the
holder keeps, so it cannot tell whether it is a file it has seen. The statement
(``minga.countersignature/1``) names the commitment, the holder, the witness and its key id, and
the time by the witness's clock, signed with the witness's Ed25519 signing key over its canonical
JSON, as the other signed statements are. The holder keeps the statement and the salt in the
file's custody log; anyone with the witness's public keys checks it offline
(:func:`check_countersignature`), the file's own SHA-256 reopening the commitment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.canonical import canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.identity import KidText, OrgIdText, UnixTime, signing_kid
from node.features.evidence.custody import SHA256_HEX

STATEMENT_TYPE: Final = "minga.countersignature/1"
SALT_BYTES: Final = 16


class Statement(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    type: Literal["minga.countersignature/1"]
    commitment: Annotated[str, Field(pattern=SHA256_HEX)]
    holder: OrgIdText
    witness: OrgIdText
    kid: KidText
    at: UnixTime
    signature: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]


def commitment(sha256_hex: str, salt: bytes) -> str:
    return hashlib.sha256(b"minga/countersign/v1|" + salt + sha256_hex.encode()).hexdigest()


def _unsigned(statement: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in statement.items() if k != "signature"})


def sign_statement(signing: Ed25519PrivateKey, witness: str, *, holder: str, commitment: str,
                   at: int) -> dict[str, Any]:
    """The witness's statement that ``commitment`` was shown to it by ``holder`` at ``at``."""
    statement: dict[str, Any] = {"type": STATEMENT_TYPE, "commitment": commitment,
                                 "holder": holder, "witness": witness,
                                 "kid": signing_kid(signing.public_key()), "at": at}
    statement["signature"] = b64u_encode(signing.sign(_unsigned(statement)))
    Statement.model_validate(statement)
    return statement


def check_countersignature(statement: Mapping[str, Any], *, sha256_hex: str, salt: str,
                           holder: str, keys: Mapping[str, Ed25519PublicKey]) -> list[str]:
    """What is wrong with a countersignature of the file whose SHA-256 is ``sha256_hex``, kept
    with its ``salt`` (base64url); ``keys`` are the witness's signing keys by kid. Empty when it
    verifies."""
    try:
        parsed = Statement.model_validate(statement)
    except ValidationError:
        return ["the countersignature is malformed"]
    problems = []
    try:
        opened = commitment(sha256_hex, b64u_decode(salt))
    except EncodingError:
        opened = ""
    if opened != parsed.commitment:
        problems.append("the countersignature is about another file")
    if parsed.holder != holder:
        problems.append("the countersignature was given to another organisation")
    key = keys.get(parsed.kid)
    if key is None:
        problems.append(f"signed with a key that is not the witness's ({parsed.witness})")
    else:
        try:
            key.verify(b64u_decode(parsed.signature), _unsigned(statement))
        except (InvalidSignature, EncodingError):
            problems.append("the witness's signature does not verify")
    return problems
