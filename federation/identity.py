"""Organisation identity: keys, ids, safety codes, signed key statements and the key ring.

Each organisation holds three private keys:

- an Ed25519 **signing key** (signs records, envelopes, its roster entry),
- an X25519 **encryption key** (envelopes are sealed to it),
- an Ed25519 **revocation key**, exported once and kept offline; it only signs a revocation
  when the node is seized. A node keeps just its public half
  (:meth:`OrgKeys.without_revocation_key`).

The **org id** is a fingerprint of the organisation's *first* signing key and never changes;
key ids (``kid``) name individual keys and change with every rotation.

Signed statements are JSON objects with a ``type``; their signatures are Ed25519 over
``canonical_json`` of the statement without its signature field (``signature`` or
``signatures``). The ``type`` keeps the different statements (and envelopes) from being
confused with one another.

- **Member entry** (``minga.member/1``, roster state content): profile, current public keys,
  the chain of rotations back to the first signing key, self-signed by the current signing key.
- **Key rotation** (``minga.key-rotation/1``): new signing and encryption keys with the time
  they take effect, signed by the previous signing key *and* by the new one.
- **Revocation** (``minga.key-revocation/1``): signing key ids revoked from a time on, signed by
  the organisation's revocation key or by a quorum of other members.

:class:`KeyRing` accepts verified statements and answers "which key was valid when"; its rules
are in its docstring. Everything here is pure: times are unix seconds passed in by the caller.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from federation.canonical import MAX_SAFE_INTEGER, CanonicalJSONError, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.keys import KeyNotTrusted
from federation.secretbox import DEFAULT_PARAMS, Argon2Params, lock, unlock
from schemas.errors import describe_validation_error

MEMBER_TYPE = "minga.member/1"
ROTATION_TYPE = "minga.key-rotation/1"
REVOCATION_TYPE = "minga.key-revocation/1"
_KEY_FILE_TYPE = "minga.org-keys/1"
_REVOCATION_FILE_TYPE = "minga.revocation-key/1"
_KEY_FILE_PURPOSE = b"minga/org-keys/v1"
_REVOCATION_FILE_PURPOSE = b"minga/revocation-key/v1"

ORG_ID_PATTERN = r"^o[a-z2-7]{20,40}$"
KID_PATTERN = r"^[A-Za-z0-9_-]{16}$"
SAFETY_CODE_ITERATIONS = 5200


# --- errors -------------------------------------------------------------------------------------


class IdentityError(ValueError):
    """Base of every error raised while reading or applying identity statements."""


class MalformedStatement(IdentityError):
    """A statement, entry or key file does not have the expected shape."""


class BadStatementSignature(IdentityError):
    """A signature on a statement does not verify."""


class StatementRejected(IdentityError):
    """A statement is well formed and signed, but the key ring's rules refuse it."""


# --- fingerprints -------------------------------------------------------------------------------

PublicKey = Ed25519PublicKey | X25519PublicKey


def _raw(key: PublicKey) -> bytes:
    return key.public_bytes_raw()


def _short_hash(label: bytes, data: bytes, length: int) -> bytes:
    return hashlib.sha256(label + data).digest()[:length]


def org_id_for(first_signing_key: Ed25519PublicKey) -> str:
    """The org id: ``"o"`` + base32 (lowercase, unpadded) of 15 bytes of a labelled sha256."""
    digest = _short_hash(b"minga/org-id/v1", _raw(first_signing_key), 15)
    return "o" + base64.b32encode(digest).decode("ascii").lower()


def signing_kid(key: Ed25519PublicKey) -> str:
    return b64u_encode(_short_hash(b"minga/kid/v1/signing", _raw(key), 12))


def encryption_kid(key: X25519PublicKey) -> str:
    return b64u_encode(_short_hash(b"minga/kid/v1/encryption", _raw(key), 12))


def revocation_kid(key: Ed25519PublicKey) -> str:
    return b64u_encode(_short_hash(b"minga/kid/v1/revocation", _raw(key), 12))


# --- wire helpers -------------------------------------------------------------------------------

OrgIdText = Annotated[str, Field(pattern=ORG_ID_PATTERN)]
KidText = Annotated[str, Field(pattern=KID_PATTERN)]
KeyText = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]  # 32 bytes
SignatureText = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]  # 64 bytes
UnixTime = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


M = TypeVar("M", bound=_Wire)


def _parse(model: type[M], data: object, what: str) -> M:
    if not isinstance(data, Mapping):
        raise MalformedStatement(f"{what}: expected a JSON object")
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise MalformedStatement(f"{what}: {describe_validation_error(error)}") from None


def _key_bytes(text: str, what: str) -> bytes:
    try:
        raw = b64u_decode(text)
    except EncodingError as error:
        raise MalformedStatement(f"{what}: {error}") from None
    if len(raw) != 32:
        raise MalformedStatement(f"{what}: expected a 32-byte key")
    return raw


def _ed25519(text: str, what: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_key_bytes(text, what))


def _x25519(text: str, what: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(_key_bytes(text, what))


def _signed_content(model: _Wire, signature_field: str) -> bytes:
    return canonical_json(model.model_dump(exclude={signature_field}))


def _verify(key: Ed25519PublicKey, signature: str, message: bytes, what: str) -> None:
    try:
        key.verify(b64u_decode(signature), message)
    except (InvalidSignature, EncodingError):
        raise BadStatementSignature(f"{what}: signature does not verify") from None


def _sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return b64u_encode(key.sign(message))


def _check_time(value: int, what: str) -> None:
    if isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"{what} must be unix seconds between 0 and 2**53 - 1")


# --- public keys --------------------------------------------------------------------------------


class OrgPublicKeys(_Wire):
    """An organisation's current public keys, as they travel (unpadded base64url, 32 bytes)."""

    org_id: OrgIdText
    signing_key: KeyText
    encryption_key: KeyText
    revocation_key: KeyText

    @field_validator("signing_key", "encryption_key", "revocation_key")
    @classmethod
    def _decodes_to_32_bytes(cls, value: str) -> str:
        try:
            _key_bytes(value, "key")
        except MalformedStatement as error:
            raise ValueError(str(error)) from None
        return value

    def signing_public(self) -> Ed25519PublicKey:
        return _ed25519(self.signing_key, "signing_key")

    def encryption_public(self) -> X25519PublicKey:
        return _x25519(self.encryption_key, "encryption_key")

    def revocation_public(self) -> Ed25519PublicKey:
        return _ed25519(self.revocation_key, "revocation_key")

    @property
    def signing_kid(self) -> str:
        return signing_kid(self.signing_public())

    @property
    def encryption_kid(self) -> str:
        return encryption_kid(self.encryption_public())

    @property
    def revocation_kid(self) -> str:
        return revocation_kid(self.revocation_public())

    def safety_code(self) -> str:
        return safety_code(self)


@dataclass(frozen=True)
class RecipientKey:
    """Where to seal for one organisation: its id and current X25519 encryption key."""

    org_id: str
    key: X25519PublicKey

    @property
    def kid(self) -> str:
        return encryption_kid(self.key)


# --- safety codes -------------------------------------------------------------------------------


def safety_code(keys: OrgPublicKeys) -> str:
    """Six groups of five digits that people compare out of band (like Signal's safety numbers).

    It covers the org id and all three public keys, so it changes whenever any of them changes
    (also after a rotation: people then compare again). The hash is iterated so that finding other
    keys with the same 30 digits costs thousands of times more than computing one code.
    """
    seed = b"minga/safety-code/v1" + keys.org_id.encode("ascii")
    for text in (keys.signing_key, keys.encryption_key, keys.revocation_key):
        seed += b64u_decode(text)
    digest = seed
    for _ in range(SAFETY_CODE_ITERATIONS):
        digest = hashlib.sha512(digest + seed).digest()
    groups = (int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5))
    return " ".join(f"{group:05d}" for group in groups)


def pairwise_safety_code(a: OrgPublicKeys, b: OrgPublicKeys) -> str:
    """One code for a pair of organisations, the same on both sides (the two codes, sorted)."""
    return " ".join(sorted((safety_code(a), safety_code(b))))


# --- private keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevocationKey:
    """An organisation's offline revocation key."""

    org_id: str
    private: Ed25519PrivateKey = field(repr=False)
    first_signing_kid: str | None = None
    """The kid of the organisation's first signing key: a revocation naming it revokes every
    key rotated from it (None in key files made before it was written there)."""

    @property
    def kid(self) -> str:
        return revocation_kid(self.private.public_key())


@dataclass(frozen=True, eq=False)
class OrgKeys:
    """An organisation's private keys.

    ``rotations`` is the chain of rotation statements from the first signing key to the current
    one (it goes into every member entry). ``retired_encryption`` keeps earlier encryption keys
    so envelopes sealed before a rotation can still be opened. ``revocation`` is None on a node
    whose revocation key was exported and removed.
    """

    org_id: str
    signing: Ed25519PrivateKey = field(repr=False)
    encryption: X25519PrivateKey = field(repr=False)
    revocation_public: Ed25519PublicKey = field(repr=False)
    revocation: Ed25519PrivateKey | None = field(default=None, repr=False)
    rotations: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    retired_encryption: tuple[X25519PrivateKey, ...] = field(default=(), repr=False)

    @classmethod
    def generate(cls) -> OrgKeys:
        signing = Ed25519PrivateKey.generate()
        revocation = Ed25519PrivateKey.generate()
        return cls(
            org_id=org_id_for(signing.public_key()),
            signing=signing,
            encryption=X25519PrivateKey.generate(),
            revocation_public=revocation.public_key(),
            revocation=revocation,
        )

    def public(self) -> OrgPublicKeys:
        return OrgPublicKeys(
            org_id=self.org_id,
            signing_key=b64u_encode(_raw(self.signing.public_key())),
            encryption_key=b64u_encode(_raw(self.encryption.public_key())),
            revocation_key=b64u_encode(_raw(self.revocation_public)),
        )

    @property
    def signing_kid(self) -> str:
        return signing_kid(self.signing.public_key())

    @property
    def encryption_kid(self) -> str:
        return encryption_kid(self.encryption.public_key())

    def recipient_key(self) -> RecipientKey:
        return RecipientKey(self.org_id, self.encryption.public_key())

    def decryption_keys(self) -> dict[str, X25519PrivateKey]:
        """Every encryption private key this organisation holds, by kid (current one included)."""
        keys = {encryption_kid(key.public_key()): key for key in self.retired_encryption}
        keys[self.encryption_kid] = self.encryption
        return keys

    def revocation_key(self) -> RevocationKey:
        if self.revocation is None:
            raise ValueError("these keys no longer hold the revocation key (it is kept offline)")
        return RevocationKey(self.org_id, self.revocation, self.first_signing_kid)

    @property
    def first_signing_kid(self) -> str:
        if self.rotations:
            return verify_rotation(self.rotations[0]).previous_kid
        return self.signing_kid

    def without_revocation_key(self) -> OrgKeys:
        """The keys a node keeps after the revocation key was exported for offline keeping."""
        return replace(self, revocation=None)


# --- key files (passphrase-protected) -----------------------------------------------------------


class _KeyFile(_Wire):
    type: Literal["minga.org-keys/1"]
    org_id: OrgIdText
    signing: KeyText
    encryption: KeyText
    revocation_public: KeyText
    revocation: KeyText | None = None
    rotations: list[dict[str, Any]]
    retired_encryption: list[KeyText]


class _RevocationFile(_Wire):
    type: Literal["minga.revocation-key/1"]
    org_id: OrgIdText
    revocation: KeyText
    first_signing_kid: KidText | None = None


def _private_text(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    return b64u_encode(key.private_bytes_raw())


def export_private(
    keys: OrgKeys, passphrase: str, *, params: Argon2Params = DEFAULT_PARAMS
) -> bytes:
    """All of ``keys`` in a secret box opened by ``passphrase``."""
    content: dict[str, Any] = {
        "type": _KEY_FILE_TYPE,
        "org_id": keys.org_id,
        "signing": _private_text(keys.signing),
        "encryption": _private_text(keys.encryption),
        "revocation_public": b64u_encode(_raw(keys.revocation_public)),
        "rotations": list(keys.rotations),
        "retired_encryption": [_private_text(key) for key in keys.retired_encryption],
    }
    if keys.revocation is not None:
        content["revocation"] = _private_text(keys.revocation)
    return lock(canonical_json(content), passphrase, purpose=_KEY_FILE_PURPOSE, params=params)


def _load_json(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise MalformedStatement(f"{what}: not JSON") from None


def import_private(blob: bytes, passphrase: str) -> OrgKeys:
    """The keys in a box made by :func:`export_private`.

    Raises ``WrongPassphrase`` (from ``federation.secretbox``) if the passphrase does not open it.
    """
    plain = unlock(blob, passphrase, purpose=_KEY_FILE_PURPOSE)
    data = _parse(_KeyFile, _load_json(plain, "key file"), "key file")
    keys = OrgKeys(
        org_id=data.org_id,
        signing=Ed25519PrivateKey.from_private_bytes(_key_bytes(data.signing, "signing")),
        encryption=X25519PrivateKey.from_private_bytes(_key_bytes(data.encryption, "encryption")),
        revocation_public=_ed25519(data.revocation_public, "revocation_public"),
        revocation=None
        if data.revocation is None
        else Ed25519PrivateKey.from_private_bytes(_key_bytes(data.revocation, "revocation")),
        rotations=tuple(data.rotations),
        retired_encryption=tuple(
            X25519PrivateKey.from_private_bytes(_key_bytes(text, "retired_encryption"))
            for text in data.retired_encryption
        ),
    )
    _check_key_file(keys)
    return keys


def _check_key_file(keys: OrgKeys) -> None:
    chain = [verify_rotation(statement) for statement in keys.rotations]
    first = chain[0].previous_signing if chain else keys.signing.public_key()
    if org_id_for(first) != keys.org_id:
        raise MalformedStatement("key file: org_id does not match the first signing key")
    if chain and chain[-1].signing != keys.signing.public_key():
        raise MalformedStatement("key file: signing key is not the last rotation's key")
    if keys.revocation and keys.revocation.public_key() != keys.revocation_public:
        raise MalformedStatement("key file: revocation key does not match its public half")


def export_revocation_key(
    keys: OrgKeys | RevocationKey, passphrase: str, *, params: Argon2Params = DEFAULT_PARAMS
) -> bytes:
    """The revocation key alone, in a secret box, for keeping offline (paper, USB stick)."""
    revocation = keys.revocation_key() if isinstance(keys, OrgKeys) else keys
    content = {
        "type": _REVOCATION_FILE_TYPE,
        "org_id": revocation.org_id,
        "revocation": _private_text(revocation.private),
    }
    if revocation.first_signing_kid is not None:
        content["first_signing_kid"] = revocation.first_signing_kid
    return lock(
        canonical_json(content), passphrase, purpose=_REVOCATION_FILE_PURPOSE, params=params
    )


def import_revocation_key(blob: bytes, passphrase: str) -> RevocationKey:
    """The key in a box made by :func:`export_revocation_key` (``WrongPassphrase`` if not)."""
    plain = unlock(blob, passphrase, purpose=_REVOCATION_FILE_PURPOSE)
    data = _parse(_RevocationFile, _load_json(plain, "revocation key file"), "revocation key file")
    private = Ed25519PrivateKey.from_private_bytes(_key_bytes(data.revocation, "revocation"))
    return RevocationKey(data.org_id, private, data.first_signing_kid)


# --- key rotation -------------------------------------------------------------------------------


class _RotationSignatures(_Wire):
    previous: SignatureText
    new: SignatureText


class _RotationWire(_Wire):
    type: Literal["minga.key-rotation/1"]
    org_id: OrgIdText
    previous_signing_key: KeyText
    signing_key: KeyText
    encryption_key: KeyText
    effective_at: UnixTime
    signatures: _RotationSignatures


@dataclass(frozen=True)
class KeyRotation:
    """A verified rotation statement: both signatures hold (the key ring checks the rest)."""

    org_id: str
    previous_signing: Ed25519PublicKey
    signing: Ed25519PublicKey
    encryption: X25519PublicKey
    effective_at: int

    @property
    def previous_kid(self) -> str:
        return signing_kid(self.previous_signing)

    @property
    def kid(self) -> str:
        return signing_kid(self.signing)


def rotate_keys(keys: OrgKeys, effective_at: int) -> tuple[OrgKeys, dict[str, Any]]:
    """New signing and encryption keys from ``effective_at`` on, and the statement announcing them.

    The statement is signed by the current signing key and by the new one. The returned keys
    carry the statement in their rotation chain and keep the old encryption key for opening.
    """
    _check_time(effective_at, "effective_at")
    if keys.rotations and effective_at <= keys.rotations[-1]["effective_at"]:
        raise ValueError("effective_at must be later than the previous rotation")
    signing, encryption = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    statement: dict[str, Any] = {
        "type": ROTATION_TYPE,
        "org_id": keys.org_id,
        "previous_signing_key": b64u_encode(_raw(keys.signing.public_key())),
        "signing_key": b64u_encode(_raw(signing.public_key())),
        "encryption_key": b64u_encode(_raw(encryption.public_key())),
        "effective_at": effective_at,
    }
    message = canonical_json(statement)
    statement["signatures"] = {
        "previous": _sign(keys.signing, message),
        "new": _sign(signing, message),
    }
    rotated = replace(
        keys,
        signing=signing,
        encryption=encryption,
        rotations=(*keys.rotations, statement),
        retired_encryption=(*keys.retired_encryption, keys.encryption),
    )
    return rotated, statement


def verify_rotation(statement: Mapping[str, Any]) -> KeyRotation:
    """Check a rotation statement's shape and both of its signatures (not its place in history)."""
    wire = _parse(_RotationWire, statement, "key rotation")
    rotation = KeyRotation(
        org_id=wire.org_id,
        previous_signing=_ed25519(wire.previous_signing_key, "previous_signing_key"),
        signing=_ed25519(wire.signing_key, "signing_key"),
        encryption=_x25519(wire.encryption_key, "encryption_key"),
        effective_at=wire.effective_at,
    )
    if rotation.kid == rotation.previous_kid:
        raise MalformedStatement("key rotation: the new signing key equals the previous one")
    message = _signed_content(wire, "signatures")
    _verify(
        rotation.previous_signing, wire.signatures.previous, message, "key rotation (previous key)"
    )
    _verify(rotation.signing, wire.signatures.new, message, "key rotation (new key)")
    return rotation


# --- member entries -----------------------------------------------------------------------------


class _MemberKeys(_Wire):
    signing: KeyText
    encryption: KeyText
    revocation: KeyText


class _MemberWire(_Wire):
    type: Literal["minga.member/1"]
    org_id: OrgIdText
    profile: dict[str, Any]
    keys: _MemberKeys
    rotations: list[dict[str, Any]]
    signature: SignatureText


@dataclass(frozen=True)
class MemberEntry:
    """A verified member entry: current public keys, profile, and the rotation chain."""

    public: OrgPublicKeys
    profile: dict[str, Any]
    first_signing: Ed25519PublicKey
    rotations: tuple[KeyRotation, ...]


def sign_member_entry(keys: OrgKeys, profile: Mapping[str, Any]) -> dict[str, Any]:
    """The roster entry content for ``keys``' organisation, self-signed by its signing key.

    ``profile`` (name, country, capabilities, ...) is carried as given; it must be canonical-JSON
    values (no floats).
    """
    public = keys.public()
    entry: dict[str, Any] = {
        "type": MEMBER_TYPE,
        "org_id": keys.org_id,
        "profile": dict(profile),
        "keys": {
            "signing": public.signing_key,
            "encryption": public.encryption_key,
            "revocation": public.revocation_key,
        },
        "rotations": list(keys.rotations),
    }
    entry["signature"] = _sign(keys.signing, canonical_json(entry))
    return entry


def read_member_entry(entry: Mapping[str, Any]) -> MemberEntry:
    """Verify a member entry on its own and return what it says.

    Rules: every rotation in the chain verifies (both signatures) and names the entry's org; each
    rotation starts from the previous one's key and takes effect strictly later; the org id is
    the fingerprint of the first signing key (the first rotation's previous key, or the current
    key when there was no rotation); the current signing and encryption keys are the last
    rotation's; the entry's signature verifies with the current signing key.
    """
    wire = _parse(_MemberWire, entry, "member entry")
    chain = tuple(verify_rotation(statement) for statement in wire.rotations)
    current_signing = _ed25519(wire.keys.signing, "keys.signing")
    current_encryption = _x25519(wire.keys.encryption, "keys.encryption")
    _check_chain(wire.org_id, chain, current_signing, current_encryption)
    try:
        message = _signed_content(wire, "signature")
    except CanonicalJSONError as error:
        raise MalformedStatement(f"member entry: profile {error}") from None
    _verify(current_signing, wire.signature, message, "member entry")
    public = OrgPublicKeys(
        org_id=wire.org_id,
        signing_key=wire.keys.signing,
        encryption_key=wire.keys.encryption,
        revocation_key=wire.keys.revocation,
    )
    first = chain[0].previous_signing if chain else current_signing
    return MemberEntry(public, dict(wire.profile), first, chain)


def _check_chain(
    org_id: str,
    chain: Sequence[KeyRotation],
    current_signing: Ed25519PublicKey,
    current_encryption: X25519PublicKey,
) -> None:
    for earlier, later in itertools.pairwise(chain):
        if later.previous_signing != earlier.signing:
            raise StatementRejected("member entry: rotation chain is broken")
        if later.effective_at <= earlier.effective_at:
            raise StatementRejected("member entry: rotations must take effect in order")
    if any(rotation.org_id != org_id for rotation in chain):
        raise StatementRejected("member entry: a rotation names another organisation")
    first = chain[0].previous_signing if chain else current_signing
    if org_id_for(first) != org_id:
        raise StatementRejected("member entry: org_id is not the first signing key's fingerprint")
    if chain and (chain[-1].signing, chain[-1].encryption) != (current_signing, current_encryption):
        raise StatementRejected("member entry: current keys are not the last rotation's keys")


def verify_member_entry(entry: Mapping[str, Any]) -> OrgPublicKeys:
    """The current public keys of a self-consistent, correctly signed member entry."""
    return read_member_entry(entry).public


# --- revocation ---------------------------------------------------------------------------------


class _RevocationSignature(_Wire):
    signer: OrgIdText
    kid: KidText
    sig: SignatureText


class _RevocationWire(_Wire):
    type: Literal["minga.key-revocation/1"]
    org_id: OrgIdText
    revoked_kids: Annotated[list[KidText], Field(min_length=1, max_length=64)]
    revoked_at: UnixTime
    issued_at: UnixTime
    signatures: list[_RevocationSignature]


@dataclass(frozen=True)
class RevocationSummary:
    """What a revocation statement says (its signatures are checked by :class:`KeyRing`)."""

    org_id: str
    revoked_kids: tuple[str, ...]
    revoked_at: int
    issued_at: int
    statement_hash: str


def read_revocation(statement: Mapping[str, Any]) -> RevocationSummary:
    """The content of a well-formed revocation statement (:class:`MalformedStatement` if not)."""
    wire = _parse(_RevocationWire, statement, "revocation")
    digest = hashlib.sha256(canonical_json(wire.model_dump())).hexdigest()
    return RevocationSummary(wire.org_id, tuple(wire.revoked_kids), wire.revoked_at,
                             wire.issued_at, digest)


def revocation_request(
    org_id: str, revoked_kids: Iterable[str], revoked_at: int, issued_at: int
) -> dict[str, Any]:
    """An unsigned revocation of ``revoked_kids`` (signing key ids) from ``revoked_at`` on.

    Sign it with :func:`sign_revocation` (the org's own revocation key) or collect
    :func:`cosign_revocation` signatures from other members.
    """
    _check_time(revoked_at, "revoked_at")
    _check_time(issued_at, "issued_at")
    kids = sorted(set(revoked_kids))
    if not kids:
        raise ValueError("a revocation names at least one key id")
    return {
        "type": REVOCATION_TYPE,
        "org_id": org_id,
        "revoked_kids": kids,
        "revoked_at": revoked_at,
        "issued_at": issued_at,
        "signatures": [],
    }


def _add_signature(
    statement: Mapping[str, Any], signer: str, kid: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    wire = _parse(_RevocationWire, statement, "revocation")
    signed = wire.model_dump()
    signature = {
        "signer": signer,
        "kid": kid,
        "sig": _sign(key, _signed_content(wire, "signatures")),
    }
    signed["signatures"] = [*signed["signatures"], signature]
    return signed


def sign_revocation(statement: Mapping[str, Any], revocation_key: RevocationKey) -> dict[str, Any]:
    """``statement`` signed by the revoked organisation's own revocation key."""
    if revocation_key.org_id != statement.get("org_id"):
        raise ValueError("this revocation key belongs to another organisation")
    return _add_signature(
        statement, revocation_key.org_id, revocation_key.kid, revocation_key.private
    )


def cosign_revocation(statement: Mapping[str, Any], signer: OrgKeys) -> dict[str, Any]:
    """``statement`` with one more signature: another member's, with its current signing key."""
    if signer.org_id == statement.get("org_id"):
        raise ValueError("an organisation revokes its own keys with its revocation key")
    return _add_signature(statement, signer.org_id, signer.signing_kid, signer.signing)


# --- key ring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Period:
    """One signing key's life: valid for ``valid_from <= t < valid_until``, and t < revoked_from."""

    kid: str
    key: Ed25519PublicKey
    valid_from: int | None  # None: since forever (the first key)
    valid_until: int | None = None  # None: still current
    revoked_from: int | None = None

    def revoke(self, at: int) -> _Period:
        earliest = at if self.revoked_from is None else min(at, self.revoked_from)
        return replace(self, revoked_from=earliest)


@dataclass(frozen=True)
class _Org:
    public: OrgPublicKeys
    profile: dict[str, Any]
    periods: tuple[_Period, ...]

    @property
    def current(self) -> _Period:
        return self.periods[-1]

    def period(self, kid: str) -> tuple[int, _Period] | None:
        for index, period in enumerate(self.periods):
            if period.kid == kid:
                return index, period
        return None


class KeyRing:
    """What this node knows about member organisations' keys, and which key was valid when.

    Pure in-memory state; every method either applies a statement completely or raises and
    changes nothing. Rules:

    - **Member entries** (:meth:`add_member_entry`) must verify on their own
      (:func:`read_member_entry`). The first accepted entry of an org fixes its revocation key.
      A later entry of the same org must keep that revocation key, agree with the rotations
      already known (same keys, same times) and may extend them; rotations it adds follow the
      rotation rules below. An entry signed by a key that was since rotated away (stale) or that
      is revoked is refused.
    - **Signing key history**: the first signing key is valid from the beginning of time; a
      rotation effective at E ends the previous key's validity (valid for t < E) and starts the new
      key's (valid for t >= E).
    - **Rotations** (:meth:`apply_rotation`) must be signed by both keys, name a known org, start
      from its *current* signing key, take effect strictly after that key became valid, introduce
      a key never used before by that org, and the current key must not be revoked. Applying the
      same rotation again is a no-op.
    - **Revocations** (:meth:`apply_revocation`) revoke each named signing kid *and every key that
      succeeded it by rotation* (so a seized key cannot escape by rotating), for all
      t >= revoked_at.
      They are authorised by a signature of the org's own revocation key, or by signatures of at
      least ``revocation_quorum`` distinct *other* member organisations, each made with a signing
      key valid (per :meth:`signing_key_for`) at the revocation's ``issued_at``. Every signature
      present must verify and come from a known signer. Revocations never expire.
    - :meth:`signing_key_for` returns a key iff the kid is in the issuer's history, valid at
      ``issued_at`` by the rules above, and not revoked at or before ``issued_at``.
    """

    def __init__(self, *, revocation_quorum: int = 2) -> None:
        if revocation_quorum < 1:
            raise ValueError("revocation_quorum must be at least 1")
        self.revocation_quorum = revocation_quorum
        self._orgs: dict[str, _Org] = {}

    # reading

    def org_ids(self) -> list[str]:
        return sorted(self._orgs)

    def __contains__(self, org_id: object) -> bool:
        return org_id in self._orgs

    def _org(self, org_id: str) -> _Org:
        org = self._orgs.get(org_id)
        if org is None:
            raise KeyNotTrusted("unknown organisation")
        return org

    def current_keys(self, org_id: str) -> OrgPublicKeys:
        return self._org(org_id).public

    def profile(self, org_id: str) -> dict[str, Any]:
        return dict(self._org(org_id).profile)

    def current_signing_kid(self, org_id: str) -> str:
        return self._org(org_id).current.kid

    def is_revoked(self, org_id: str) -> bool:
        """Whether the organisation's current signing key is revoked (from any time)."""
        return self._org(org_id).current.revoked_from is not None

    def first_signing_kid(self, org_id: str) -> str:
        """The kid of the organisation's first signing key (a revocation naming it revokes
        every key it was rotated into)."""
        return self._org(org_id).periods[0].kid

    def revoked_from(self, issuer: str, kid: str) -> int | None:
        """Since when ``kid`` of ``issuer`` is revoked, or None (also for unknown keys)."""
        org = self._orgs.get(issuer)
        found = org.period(kid) if org is not None else None
        return found[1].revoked_from if found is not None else None

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> Ed25519PublicKey:
        found = self._org(issuer).period(kid)
        if found is None:
            raise KeyNotTrusted("key id is not one of this organisation's signing keys")
        period = found[1]
        if period.valid_from is not None and issued_at < period.valid_from:
            raise KeyNotTrusted("key was not yet in use at the issue time")
        if period.valid_until is not None and issued_at >= period.valid_until:
            raise KeyNotTrusted("key was rotated away before the issue time")
        if period.revoked_from is not None and issued_at >= period.revoked_from:
            raise KeyNotTrusted("key was revoked at or before the issue time")
        return period.key

    def encryption_key_for(self, org_id: str) -> RecipientKey:
        """Where to seal for ``org_id`` now; refused if its current keys are revoked."""
        org = self._org(org_id)
        if org.current.revoked_from is not None:
            raise KeyNotTrusted("organisation's current keys are revoked")
        return RecipientKey(org_id, org.public.encryption_public())

    # applying statements

    def add_member_entry(self, entry: Mapping[str, Any]) -> OrgPublicKeys:
        member = read_member_entry(entry)
        org_id = member.public.org_id
        known = self._orgs.get(org_id)
        org = _org_from_entry(member) if known is None else _merge_entry(known, member)
        self._orgs[org_id] = org
        return org.public

    def apply_rotation(self, statement: Mapping[str, Any]) -> None:
        rotation = verify_rotation(statement)
        known = self._orgs.get(rotation.org_id)
        if known is None:
            raise StatementRejected("key rotation for an unknown organisation")
        self._orgs[rotation.org_id] = _rotate(known, rotation)

    def apply_revocation(self, statement: Mapping[str, Any]) -> None:
        wire = _parse(_RevocationWire, statement, "revocation")
        org = self._orgs.get(wire.org_id)
        if org is None:
            raise StatementRejected("revocation for an unknown organisation")
        self._check_revocation_signatures(wire, org)
        indices = []
        for kid in wire.revoked_kids:
            found = org.period(kid)
            if found is None:
                raise StatementRejected("revocation names a key id this organisation never used")
            indices.append(found[0])
        first = min(indices)
        periods = tuple(
            period.revoke(wire.revoked_at) if index >= first else period
            for index, period in enumerate(org.periods)
        )
        self._orgs[wire.org_id] = replace(org, periods=periods)

    def _check_revocation_signatures(self, wire: _RevocationWire, org: _Org) -> None:
        message = _signed_content(wire, "signatures")
        own_key = org.public.revocation_public()
        cosigners: set[str] = set()
        by_revocation_key = False
        for signature in wire.signatures:
            if signature.signer == wire.org_id:
                if signature.kid != revocation_kid(own_key):
                    raise StatementRejected(
                        "revocation: the organisation itself may sign only with its revocation key"
                    )
                _verify(own_key, signature.sig, message, "revocation (revocation key)")
                by_revocation_key = True
                continue
            try:
                key = self.signing_key_for(signature.signer, signature.kid, wire.issued_at)
            except KeyNotTrusted as error:
                raise StatementRejected(f"revocation: co-signer not trusted ({error})") from None
            _verify(key, signature.sig, message, "revocation (co-signer)")
            cosigners.add(signature.signer)
        if not by_revocation_key and len(cosigners) < self.revocation_quorum:
            raise StatementRejected(
                f"revocation: needs the revocation key or {self.revocation_quorum} other members;"
                f" got {len(cosigners)}"
            )


def _org_from_entry(member: MemberEntry) -> _Org:
    periods = [_Period(signing_kid(member.first_signing), member.first_signing, None)]
    for rotation in member.rotations:
        periods[-1] = replace(periods[-1], valid_until=rotation.effective_at)
        periods.append(_Period(rotation.kid, rotation.signing, rotation.effective_at))
    return _Org(member.public, member.profile, tuple(periods))


def _merge_entry(known: _Org, member: MemberEntry) -> _Org:
    if member.public.revocation_key != known.public.revocation_key:
        raise StatementRejected("member entry: the revocation key of a known member cannot change")
    known_history = [(period.kid, period.valid_from) for period in known.periods]
    claimed = _org_from_entry(member).periods
    claimed_history = [(period.kid, period.valid_from) for period in claimed]
    if len(claimed_history) < len(known_history):
        raise StatementRejected("member entry: stale, signed by a key that was rotated away")
    if claimed_history[: len(known_history)] != known_history:
        raise StatementRejected("member entry: its key history conflicts with the known one")
    org = known
    for rotation in member.rotations[len(known_history) - 1 :]:
        org = _rotate(org, rotation)
    if org.current.revoked_from is not None:
        raise StatementRejected("member entry: signed by a revoked key")
    return replace(org, public=member.public, profile=member.profile)


def _rotate(org: _Org, rotation: KeyRotation) -> _Org:
    found = org.period(rotation.kid)
    if found is not None:
        index, period = found
        previous = org.periods[index - 1] if index else None
        same_predecessor = previous is not None and previous.kid == rotation.previous_kid
        if same_predecessor and period.valid_from == rotation.effective_at:
            return org  # the same rotation again
        raise StatementRejected("key rotation: introduces a key this organisation already used")
    current = org.current
    if rotation.previous_kid != current.kid:
        raise StatementRejected("key rotation: not signed by the organisation's current key")
    if current.revoked_from is not None:
        raise StatementRejected("key rotation: the current key is revoked")
    if current.valid_from is not None and rotation.effective_at <= current.valid_from:
        raise StatementRejected("key rotation: must take effect after the current key's start")
    new_public = org.public.model_copy(
        update={
            "signing_key": b64u_encode(_raw(rotation.signing)),
            "encryption_key": b64u_encode(_raw(rotation.encryption)),
        }
    )
    periods = (
        *org.periods[:-1],
        replace(current, valid_until=rotation.effective_at),
        _Period(rotation.kid, rotation.signing, rotation.effective_at),
    )
    return replace(org, public=new_public, periods=periods)


class RefuseRevokedKeys:
    """A :class:`federation.keys.SigningKeyResolver` for what arrives *now*: like ``keyring``,
    but a revoked key is refused whatever issue time the record claims.

    The key ring alone accepts a seized key for anything dated before the revocation time,
    and whoever holds the key can write any date. Records that arrived before the revocation
    was known were checked then; from then on, nothing signed by a revoked key gets in.
    """

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> Ed25519PublicKey:
        key = self.keyring.signing_key_for(issuer, kid, issued_at)
        revoked = self.keyring.revoked_from(issuer, kid)
        if revoked is not None:
            since = datetime.fromtimestamp(revoked, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise KeyNotTrusted(
                f"key revoked by its organisation from {since}; nothing signed with it is"
                " accepted any more, whatever date it carries")
        return key
