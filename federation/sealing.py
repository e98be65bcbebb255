"""Sealed envelopes: a payload readable only by the listed organisations, signed by its sender.

Sealing (docs/architecture.md §5):

1. The payload is padded (Padmé, at least 256 bytes) so its exact length does not show.
2. It is encrypted once with a random 32-byte content key (ChaCha20-Poly1305, random nonce).
   The associated data is the header (type, envelope id, sender, sender kid, created_at and the
   recipients' key ids), so the ciphertext cannot be moved under another header.
3. The content key is wrapped for each recipient with HPKE base mode (RFC 9180:
   DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305). HPKE's ``info`` binds the
   envelope id, the sender and the recipient's key id.
4. The sender signs ``canonical_json`` of every other field with Ed25519 (HPKE base mode does not
   authenticate the sender).

In clear travel only: the sender's org id and key id, the creation time, and the recipients'
encryption key ids. Every binary field is unpadded base64url; the envelope holds only strings and
integers, so it can be Matrix event content as it is.

Opening checks the sender's signature first (with the key the resolver trusts for the sender at
``created_at``), then unwraps the content key for one of my encryption keys, then decrypts.
Each failure has its own exception type and ``reason`` so the inbox can quarantine with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from federation.canonical import MAX_SAFE_INTEGER, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode, b64u_length
from federation.identity import KidText, OrgIdText, OrgKeys, RecipientKey, UnixTime
from federation.keys import KeyNotTrusted, SigningKeyResolver
from schemas.errors import describe_validation_error

ENVELOPE_TYPE = "minga.envelope/1"
_KEY_INFO_TYPE = "minga.envelope-key/1"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_ENC_LENGTH = hpke.KEM.X25519.enc_length()
_CONTENT_KEY_LENGTH = 32
_TAG_LENGTH = 16
MIN_PADDED_LENGTH = 256
MAX_RECIPIENTS = 500


# --- errors -------------------------------------------------------------------------------------


class SealingError(Exception):
    """An envelope could not be opened; ``reason`` is a stable code for quarantine."""

    reason: ClassVar[str] = "error"


class EnvelopeMalformed(SealingError):
    reason = "malformed"


class SenderNotTrusted(SealingError):
    """Unknown sender or sender key, or the key was rotated away or revoked at ``created_at``."""

    reason = "sender-not-trusted"


class BadSignature(SealingError):
    reason = "bad-signature"


class NotARecipient(SealingError):
    reason = "not-a-recipient"


class Tampered(SealingError):
    """The signature holds but the key or payload does not decrypt (or its padding is wrong)."""

    reason = "tampered"


# --- wire format --------------------------------------------------------------------------------


def _binary(length: int | None = None, *, at_least: int = 1) -> Any:
    """A field validator: canonical base64url, of ``length`` bytes or at least ``at_least``.

    It checks the text without decoding it: opening decodes what it uses, once.
    """

    def check(value: str) -> str:
        try:
            size = b64u_length(value)
        except EncodingError as error:
            raise ValueError(str(error)) from None
        if length is not None and size != length:
            raise ValueError(f"expected {length} bytes")
        if size < at_least:
            raise ValueError(f"expected at least {at_least} bytes")
        return value

    return check


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RecipientSlot(_Wire):
    """The content key wrapped for one recipient encryption key."""

    kid: KidText
    enc: str  # HPKE encapsulated key
    key: str  # HPKE ciphertext of the content key

    _enc = field_validator("enc")(_binary(_ENC_LENGTH))
    _key = field_validator("key")(_binary(_CONTENT_KEY_LENGTH + _TAG_LENGTH))


ContextValue = (
    Annotated[str, Field(max_length=255)] | Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
)


class Envelope(_Wire):
    type: Literal["minga.envelope/1"]
    id: str
    sender: OrgIdText
    sender_kid: KidText
    created_at: UnixTime
    # Signed, AEAD-bound facts about where the envelope belongs (e.g. room, sequence number,
    # previous hash for the sync layer's chain); never content.
    context: Annotated[dict[str, ContextValue], Field(max_length=16)]
    recipients: Annotated[list[RecipientSlot], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    nonce: str
    ciphertext: str
    signature: str

    _id = field_validator("id")(_binary(16))
    _nonce = field_validator("nonce")(_binary(12))
    _ciphertext = field_validator("ciphertext")(_binary(at_least=MIN_PADDED_LENGTH + _TAG_LENGTH))
    _signature = field_validator("signature")(_binary(64))

    @field_validator("recipients")
    @classmethod
    def _distinct_recipients(cls, slots: list[RecipientSlot]) -> list[RecipientSlot]:
        if len({slot.kid for slot in slots}) != len(slots):
            raise ValueError("a recipient key id appears twice")
        return slots

    def to_wire(self) -> dict[str, Any]:
        """The envelope as JSON-ready content (strings and integers only)."""
        return self.model_dump()


@dataclass(frozen=True)
class Opened:
    """What an opened envelope says: who sent it, when, and the payload."""

    sender: str
    sender_kid: str
    envelope_id: str
    created_at: int
    context: dict[str, str | int]
    payload: bytes = field(repr=False)


def parse_envelope(data: object) -> Envelope:
    """An :class:`Envelope` from JSON content; :class:`EnvelopeMalformed` names what is wrong."""
    if isinstance(data, Envelope):
        return data
    if not isinstance(data, Mapping):
        raise EnvelopeMalformed("envelope: expected a JSON object")
    try:
        return Envelope.model_validate(dict(data))
    except ValidationError as error:
        raise EnvelopeMalformed(f"envelope: {describe_validation_error(error)}") from None


# --- padding ------------------------------------------------------------------------------------


def padded_length(length: int) -> int:
    """Padmé (Nikitin et al., 2019): at most 12% larger, leaks O(log log n) bits of the length."""
    if length <= MIN_PADDED_LENGTH:
        return MIN_PADDED_LENGTH
    exponent = length.bit_length() - 1
    mask = (1 << (exponent - exponent.bit_length())) - 1
    return (length + mask) & ~mask


def _pad(payload: bytes) -> bytes:
    marked = payload + b"\x80"
    return marked + bytes(padded_length(len(marked)) - len(marked))


def _unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise Tampered("payload padding is wrong")
    return stripped[:-1]


# --- binding ------------------------------------------------------------------------------------


def _header(
    envelope_id: str,
    sender: str,
    sender_kid: str,
    created_at: int,
    context: Mapping[str, str | int],
    kids: Sequence[str],
) -> bytes:
    return canonical_json(
        {
            "type": ENVELOPE_TYPE,
            "id": envelope_id,
            "sender": sender,
            "sender_kid": sender_kid,
            "created_at": created_at,
            "context": dict(context),
            "recipients": list(kids),
        }
    )


def _key_info(envelope_id: str, sender: str, sender_kid: str, recipient_kid: str) -> bytes:
    return canonical_json(
        {
            "type": _KEY_INFO_TYPE,
            "id": envelope_id,
            "sender": sender,
            "sender_kid": sender_kid,
            "recipient": recipient_kid,
        }
    )


_FIRST_SIGNED_FIELD = "ciphertext"


def _signed_content(fields: Mapping[str, Any]) -> bytes:
    """``canonical_json`` of every field but the signature.

    The ciphertext, kilobytes of base64url, is the first key in canonical order and needs no
    JSON escaping, so it is put in as it is instead of going through the JSON string escaper;
    the bytes are the same (``tests/test_sealing_speed.py`` compares them).
    """
    rest = {
        name: value for name, value in fields.items() if name not in ("signature", "ciphertext")
    }
    ciphertext = fields.get(_FIRST_SIGNED_FIELD)
    if not (isinstance(ciphertext, str) and rest and min(rest) > _FIRST_SIGNED_FIELD):
        return canonical_json(
            {name: value for name, value in fields.items() if name != "signature"}
        )
    try:
        b64u_length(ciphertext)
    except EncodingError:
        return canonical_json({**rest, _FIRST_SIGNED_FIELD: ciphertext})
    return b'{"ciphertext":"' + ciphertext.encode("ascii") + b'",' + canonical_json(rest)[1:]


# --- seal and open ------------------------------------------------------------------------------


def seal(
    payload: bytes,
    sender: OrgKeys,
    recipients: Sequence[RecipientKey],
    created_at: int,
    *,
    envelope_id: str | None = None,
    context: Mapping[str, str | int] | None = None,
) -> Envelope:
    """Seal ``payload`` for ``recipients`` (each an org's current encryption key), signed by
    ``sender``'s current signing key. ``envelope_id`` (16 bytes, base64url) is random if omitted.
    ``context`` (up to 16 short strings or integers) is signed and bound to the ciphertext.
    """
    context = dict(context or {})
    _check_context(context)
    kids = [recipient.kid for recipient in recipients]
    if not kids or len(kids) > MAX_RECIPIENTS:
        raise ValueError(f"an envelope needs 1 to {MAX_RECIPIENTS} recipients")
    if len(set(kids)) != len(kids):
        raise ValueError("a recipient key appears twice")
    if isinstance(created_at, bool) or not 0 <= created_at <= MAX_SAFE_INTEGER:
        raise ValueError("created_at must be unix seconds between 0 and 2**53 - 1")
    if envelope_id:
        _check_envelope_id(envelope_id)
    else:
        envelope_id = b64u_encode(os.urandom(16))
    sender_id, sender_kid = sender.org_id, sender.signing_kid
    content_key, nonce = ChaCha20Poly1305.generate_key(), os.urandom(12)
    header = _header(envelope_id, sender_id, sender_kid, created_at, context, kids)
    ciphertext = ChaCha20Poly1305(content_key).encrypt(nonce, _pad(payload), header)
    slots = [
        _wrap(content_key, recipient, _key_info(envelope_id, sender_id, sender_kid, recipient.kid))
        for recipient in recipients
    ]
    fields: dict[str, Any] = {
        "type": ENVELOPE_TYPE,
        "id": envelope_id,
        "sender": sender_id,
        "sender_kid": sender_kid,
        "created_at": created_at,
        "context": context,
        "recipients": slots,
        "nonce": b64u_encode(nonce),
        "ciphertext": b64u_encode(ciphertext),
    }
    fields["signature"] = b64u_encode(sender.signing.sign(_signed_content(fields)))
    # Every field was just made here in its valid form, so skip re-validating the ciphertext.
    slot_models = [RecipientSlot.model_construct(None, **slot) for slot in slots]
    return Envelope.model_construct(None, **{**fields, "recipients": slot_models})


def _check_context(context: Mapping[str, str | int]) -> None:
    if len(context) > 16:
        raise ValueError("an envelope context holds at most 16 entries")
    for name, value in context.items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"context.{name}: must be a string or an integer")
        if isinstance(value, str) and len(value) > 255:
            raise ValueError(f"context.{name}: at most 255 characters")
        if isinstance(value, int) and not 0 <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"context.{name}: must be between 0 and 2**53 - 1")


def _check_envelope_id(envelope_id: str) -> None:
    try:
        valid = len(b64u_decode(envelope_id)) == 16
    except EncodingError:
        valid = False
    if not valid:
        raise ValueError("envelope_id must be 16 bytes in unpadded base64url")


def _wrap(content_key: bytes, recipient: RecipientKey, info: bytes) -> dict[str, str]:
    sealed = _SUITE.encrypt(content_key, recipient.key, info=info)
    return {
        "kid": recipient.kid,
        "enc": b64u_encode(sealed[:_ENC_LENGTH]),
        "key": b64u_encode(sealed[_ENC_LENGTH:]),
    }


def verify_envelope(
    envelope: Envelope | Mapping[str, Any], resolver: SigningKeyResolver
) -> Envelope:
    """Check shape and sender signature only: what a member who is not a recipient can know.

    Raises :class:`EnvelopeMalformed`, :class:`SenderNotTrusted` or :class:`BadSignature`.
    """
    sealed = parse_envelope(envelope)
    _verify_sender(sealed, resolver)
    return sealed


def open_envelope(
    envelope: Envelope | Mapping[str, Any], my_keys: OrgKeys, resolver: SigningKeyResolver
) -> Opened:
    """Verify the sender, then unwrap and decrypt the payload for one of ``my_keys``.

    Raises, in the order checked: :class:`EnvelopeMalformed`, :class:`SenderNotTrusted`,
    :class:`BadSignature`, :class:`NotARecipient`, :class:`Tampered`.
    """
    return open_verified(verify_envelope(envelope, resolver), my_keys)


def open_verified(sealed: Envelope, my_keys: OrgKeys) -> Opened:
    """:func:`open_envelope` for an envelope :func:`verify_envelope` has just returned: its
    signature is not checked twice (an Ed25519 verification, a tenth of a millisecond here).

    Raises :class:`NotARecipient` or :class:`Tampered`.
    """
    slot, private_key = _my_slot(sealed, my_keys)
    info = _key_info(sealed.id, sealed.sender, sealed.sender_kid, slot.kid)
    try:
        content_key = _SUITE.decrypt(
            b64u_decode(slot.enc) + b64u_decode(slot.key), private_key, info
        )
    except InvalidTag:
        raise Tampered("the content key does not unwrap") from None
    kids = [recipient.kid for recipient in sealed.recipients]
    header = _header(
        sealed.id, sealed.sender, sealed.sender_kid, sealed.created_at, sealed.context, kids
    )
    try:
        padded = ChaCha20Poly1305(content_key).decrypt(
            b64u_decode(sealed.nonce), b64u_decode(sealed.ciphertext), header
        )
    except InvalidTag:
        raise Tampered("the payload does not decrypt") from None
    return Opened(
        sealed.sender,
        sealed.sender_kid,
        sealed.id,
        sealed.created_at,
        dict(sealed.context),
        _unpad(padded),
    )


def _verify_sender(sealed: Envelope, resolver: SigningKeyResolver) -> None:
    try:
        key = resolver.signing_key_for(sealed.sender, sealed.sender_kid, sealed.created_at)
    except KeyNotTrusted as error:
        raise SenderNotTrusted(f"sender not trusted: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SenderNotTrusted("sender key is not an Ed25519 key")
    try:
        key.verify(b64u_decode(sealed.signature), _signed_content(sealed.to_wire()))
    except InvalidSignature:
        raise BadSignature("the sender's signature does not verify") from None


def _my_slot(sealed: Envelope, my_keys: OrgKeys) -> tuple[RecipientSlot, X25519PrivateKey]:
    mine = my_keys.decryption_keys()
    for slot in sealed.recipients:
        if slot.kid in mine:
            return slot, mine[slot.kid]
    raise NotARecipient("none of my encryption keys is among the recipients")
