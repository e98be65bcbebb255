"""The countersignature statement: a witness signs a salted commitment to a file's hash, and
anyone with the witness's keys checks it against the file (node.features.evidence.witness)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.encoding import b64u_encode
from federation.identity import OrgKeys, signing_kid
from node.features.evidence.witness import (
    check_countersignature,
    commitment,
    sign_statement,
)

HOLDER, WITNESS = OrgKeys.generate(), OrgKeys.generate()
FILE_SHA = hashlib.sha256(b"acta de levantamiento").hexdigest()
SALT = b"\x07" * 16
KEYS = {signing_kid(WITNESS.signing.public_key()): WITNESS.signing.public_key()}


def _statement() -> dict[str, object]:
    return sign_statement(WITNESS.signing, WITNESS.org_id, holder=HOLDER.org_id,
                          commitment=commitment(FILE_SHA, SALT), at=1_760_000_000)


def _check(statement: dict[str, object], *, sha: str = FILE_SHA, salt: bytes = SALT,
           holder: str = HOLDER.org_id) -> list[str]:
    return check_countersignature(statement, sha256_hex=sha, salt=b64u_encode(salt),
                                  holder=holder, keys=KEYS)


def test_a_countersignature_verifies_against_the_file_and_the_witness_key() -> None:
    statement = _statement()
    assert _check(statement) == []
    assert FILE_SHA not in str(statement)  # the witness never saw the file's hash


def test_the_salt_hides_the_hash_and_binds_the_statement_to_the_file() -> None:
    assert commitment(FILE_SHA, SALT) != commitment(FILE_SHA, b"\x08" * 16)
    statement = _statement()
    assert _check(statement, sha=hashlib.sha256(b"otro").hexdigest()) == [
        "the countersignature is about another file"]
    assert _check(statement, salt=b"\x08" * 16) == ["the countersignature is about another file"]


def test_a_changed_time_another_holder_or_another_key_is_refused() -> None:
    later = {**_statement(), "at": 1_760_000_001}
    assert _check(later) == ["the witness's signature does not verify"]
    assert "the countersignature was given to another organisation" in _check(
        _statement(), holder=WITNESS.org_id)
    forged = sign_statement(Ed25519PrivateKey.generate(), WITNESS.org_id, holder=HOLDER.org_id,
                            commitment=commitment(FILE_SHA, SALT), at=1_760_000_000)
    assert _check(forged)[0].startswith("signed with a key that is not the witness's")
    assert _check({"type": "minga.countersignature/1"}) == ["the countersignature is malformed"]
