"""RFC 9901 Selective Disclosure for JWTs (SD-JWT), written on ``cryptography`` alone.

This module is the generic machinery: compact JWS (EdDSA and ES256), disclosures and their
sha-256 digests, decoy digests, the compact ``<jwt>~<disclosure>~...~[<kb-jwt>]`` form, and the
verifier's processing of RFC 9901 §7.1 (including array-element disclosures and Key Binding JWTs,
which the RFC's own examples use). How Minga chooses what to withhold lives in
``federation.disclosure``.

Verification is strict where the RFC leaves room, so that changing any character of a token is
detected: the signature segment must be canonical base64url (the header, payload and disclosures
are covered character for character by the signature or by their digests); JSON must be UTF-8
without floats, NaN or duplicate object keys. Every error is a :class:`SdJwtError` subclass whose
``reason`` is a short stable code (for quarantine records); messages name fields and problems,
never claim values.

Verification cost is one signature check plus one linear pass: each disclosure is hashed,
decoded and placed once; nothing is re-encoded.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NamedTuple, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from federation.canonical import CanonicalJSONError, canonical_json, is_plain
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.keys import KeyNotTrusted, SigningKeyResolver, VerificationKey
from schemas.common import wire_value_problem

SD: Final = "_sd"
SD_ALG: Final = "_sd_alg"
ARRAY_DIGEST: Final = "..."
SHA_256: Final = "sha-256"
SALT_BYTES: Final = 16  # 128-bit salts, RFC 9901 §9.3
KEY_BINDING_TYP: Final = "kb+jwt"
ALL_ALGORITHMS: Final = frozenset({"EdDSA", "Ed25519", "ES256"})

# A tuple, not ``dict | list``: that expression builds a new union object at every check.
CONTAINERS: Final = (dict, list)

SigningKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
RandomBytes = Callable[[int], bytes]


class SdJwtError(ValueError):
    """An SD-JWT was rejected; ``reason`` is a short stable code, the message says why."""

    reason: ClassVar[str] = "invalid_sd_jwt"


class MalformedSdJwt(SdJwtError):
    reason = "malformed"


class UnsupportedAlgorithm(SdJwtError):
    reason = "unsupported_algorithm"


class UnexpectedTokenType(SdJwtError):
    reason = "unexpected_type"


class IssuerKeyNotTrusted(SdJwtError):
    reason = "issuer_key_not_trusted"


class BadSignature(SdJwtError):
    reason = "bad_signature"


class InvalidDisclosure(SdJwtError):
    reason = "invalid_disclosure"


class DuplicateDigest(SdJwtError):
    reason = "duplicate_digest"


class UnreferencedDisclosure(SdJwtError):
    reason = "unreferenced_disclosure"


class ClaimCollision(SdJwtError):
    reason = "claim_collision"


class AudienceMismatch(SdJwtError):
    reason = "audience_mismatch"


class KeyBindingInvalid(SdJwtError):
    reason = "key_binding_invalid"


# --- JSON -------------------------------------------------------------------------------------


def _refuse_float(_text: str) -> NoReturn:
    raise ValueError("floats are not allowed")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


_DECODER: Final = json.JSONDecoder(
    parse_float=_refuse_float,
    parse_constant=_refuse_float,
    object_pairs_hook=_object_without_duplicates,
)


# The C scanner behind decode(): typeshed does not declare it, but every JSONDecoder has it.
_SCAN_VALUE: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``_DECODER.decode(text)``, skipping its two whitespace scans when there is no whitespace
    around the value (always, for what Minga signs; about a third of a disclosure's cost).
    """
    try:
        value, end = _SCAN_VALUE(text, 0)
    except StopIteration:
        return _DECODER.decode(text)  # leading whitespace, or no value: let decode() judge
    return value if end == len(text) else _DECODER.decode(text)


def _decode_segment(text: str, what: str, error: type[SdJwtError]) -> bytes:
    try:
        return b64u_decode(text)
    except EncodingError as problem:
        raise error(f"{what}: {problem}") from None


_URL_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URL: Final = bytes.maketrans(b"+/", b"-_")


def _json_segment(text: str, what: str, error: type[SdJwtError]) -> Any:
    """The JSON value in base64url ``text`` whose exact characters a signature or digest covers.

    Any change to such text already breaks its signature or digest, so this skips the canonical
    form check of :func:`b64u_decode` (the signature segment itself is checked strictly).
    """
    try:
        data = binascii.a2b_base64(text.encode("ascii").translate(_URL_TO_STANDARD) + b"==")
        return _loads(data.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError, RecursionError) as problem:
        # JSONDecodeError is a ValueError; its message holds no document text beyond a position.
        raise error(f"{what} is not base64url JSON for Minga: {problem}") from None


# --- keys and JWS -----------------------------------------------------------------------------


def algorithm_for(key: SigningKey) -> str:
    """The JWS ``alg`` that ``key`` signs with: EdDSA for Ed25519, ES256 for P-256."""
    if isinstance(key, Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise UnsupportedAlgorithm("signing keys must be Ed25519 or ECDSA P-256")


def _sign(key: SigningKey, message: bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(message)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _check_signature(alg: str, key: VerificationKey, message: bytes, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``alg``'s signature of ``message``."""
    try:
        if alg in ("EdDSA", "Ed25519") and isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
            return
        if (
            alg == "ES256"
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
        ):
            if len(signature) != 64:
                raise BadSignature("an ES256 signature is 64 bytes")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature:
        raise BadSignature("the signature does not match the token") from None
    raise UnsupportedAlgorithm(f"the trusted key cannot verify alg {alg!r}")


def sign_jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWS of ``payload`` (canonical JSON); ``alg`` is set from the key."""
    protected = b64u_encode(canonical_json({**header, "alg": algorithm_for(key)}))
    body = b64u_encode(canonical_json(payload))
    signing_input = f"{protected}.{body}"
    return f"{signing_input}.{b64u_encode(_sign(key, signing_input.encode('ascii')))}"


@dataclass(frozen=True, slots=True)
class _Jws:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse_jws(jwt: str, what: str, error: type[SdJwtError]) -> _Jws:
    segments = jwt.split(".")
    if len(segments) != 3:
        raise error(f"{what} must have three dot-separated parts")
    header = _json_segment(segments[0], f"{what} header", error)
    payload = _json_segment(segments[1], f"{what} payload", error)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise error(f"{what} header and payload must be JSON objects")
    signature = _decode_segment(segments[2], f"{what} signature", error)
    signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")
    return _Jws(header, payload, signing_input, signature)


def unverified_payload(jwt: str) -> dict[str, Any]:
    """The payload of an issuer-signed JWT, *without* checking its signature (holder use only)."""
    return _parse_jws(jwt, "issuer-signed JWT", MalformedSdJwt).payload


def public_key_from_jwk(jwk: Any) -> VerificationKey:
    """The public key of a JWK: EC P-256 or OKP Ed25519 (RFC 7517 / RFC 8037)."""
    if not isinstance(jwk, dict):
        raise MalformedSdJwt("a JWK must be a JSON object")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519" and isinstance(jwk.get("x"), str):
        x = _decode_segment(jwk["x"], "JWK x", MalformedSdJwt)
        if len(x) != 32:
            raise MalformedSdJwt("an Ed25519 JWK x is 32 bytes")
        return Ed25519PublicKey.from_public_bytes(x)
    if (
        kty == "EC"
        and crv == "P-256"
        and isinstance(jwk.get("x"), str)
        and isinstance(jwk.get("y"), str)
    ):
        x = _decode_segment(jwk["x"], "JWK x", MalformedSdJwt)
        y = _decode_segment(jwk["y"], "JWK y", MalformedSdJwt)
        if len(x) != 32 or len(y) != 32:
            raise MalformedSdJwt("P-256 JWK coordinates are 32 bytes")
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        )
        try:
            return numbers.public_key()
        except ValueError:
            raise MalformedSdJwt("the JWK point is not on the P-256 curve") from None
    raise UnsupportedAlgorithm("only EC P-256 and OKP Ed25519 JWKs are supported")


# --- disclosures ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A disclosure as it travels (base64url text) and the digest that the JWT carries for it."""

    encoded: str
    digest: str


def _digest_text(data: bytes) -> str:
    """sha-256 of ``data`` as base64url (32 bytes: 43 characters and one padding character)."""
    digest = hashlib.sha256(data).digest()
    return binascii.b2a_base64(digest, newline=False)[:43].translate(_STANDARD_TO_URL).decode()


def digest_of(encoded: str) -> str:
    """The sha-256 digest of a disclosure: over its base64url text, base64url-encoded (§4.2.3)."""
    return _digest_text(encoded.encode("ascii"))


def new_salt(random_bytes: RandomBytes) -> str:
    return b64u_encode(random_bytes(SALT_BYTES))


class Salts:
    """Fresh 128-bit salts and decoy digests, drawn from ``random_bytes`` a block at a time.

    One call for a block of random bytes instead of one per salt: the bytes are the same
    kind of randomness, sliced, and no slice is used twice.
    """

    __slots__ = ("_block", "_offset", "_random")
    _PER_DRAW: ClassVar[int] = 64

    def __init__(self, random_bytes: RandomBytes) -> None:
        self._random = random_bytes
        self._block, self._offset = b"", 0

    def _next(self) -> bytes:
        start = self._offset
        if start == len(self._block):
            size = SALT_BYTES * self._PER_DRAW
            block = self._random(size)
            if len(block) != size:
                raise ValueError(f"random_bytes({size}) returned {len(block)} bytes")
            self._block, start = block, 0
        self._offset = start + SALT_BYTES
        return self._block[start : start + SALT_BYTES]

    def salt(self) -> str:
        """A new salt, as base64url text (16 bytes: 22 characters and two of padding)."""
        return (
            binascii.b2a_base64(self._next(), newline=False)[:22]
            .translate(_STANDARD_TO_URL)
            .decode()
        )

    def decoy_digest(self) -> str:
        """A digest over new random bytes, indistinguishable from a real one (§4.2.5)."""
        return _digest_text(self._next())


# A disclosure's digest covers its exact text and no verifier re-encodes it, so it need not be
# canonical: compact JSON built around the C string encoder costs a fraction of canonical_json
# (which copies and sorts every object). Values still obey the wire rules: no floats, safe
# integers, string keys.
_DISCLOSURE_JSON: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
)
_json_string: Final = json.encoder.encode_basestring


def _compact_encoder() -> Callable[[Any], str]:
    """``_DISCLOSURE_JSON.encode`` without building a new C encoder on every call."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return _DISCLOSURE_JSON.encode
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    encoder = make(
        None, _DISCLOSURE_JSON.default, _json_string, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


# Circular values never reach it: is_plain() or wire_value_problem() recurse first and raise.
_compact_json: Final = _compact_encoder()


def _json_text(value: Any) -> str:
    if type(value) is str:
        return _json_string(value)
    if not is_plain(value):  # the quick check passes nearly everything; this one names problems
        problem = wire_value_problem(value)
        if problem is not None:
            raise CanonicalJSONError(problem)
    return _compact_json(value)


def _encode(text: str) -> tuple[str, str]:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("a string holds a lone surrogate, which is not Unicode") from None
    # The digest is over the ASCII bytes of the base64url text, so hash them before decoding.
    encoded = binascii.b2a_base64(data, newline=False).translate(_STANDARD_TO_URL).rstrip(b"=")
    return encoded.decode("ascii"), _digest_text(encoded)


def claim_disclosure(salt: str, name: str, value: Any) -> tuple[str, str]:
    """:func:`object_disclosure` as a plain ``(encoded, digest)`` pair, for issuers of many.

    ``salt`` and ``name`` are strings, and ``name`` is already known not to be ``_sd`` or ``...``.
    """
    value_text = _json_string(value) if type(value) is str else _json_text(value)
    return _encode(f"[{_json_string(salt)},{_json_string(name)},{value_text}]")


def object_disclosure(salt: str, name: str, value: Any) -> Disclosure:
    """The disclosure of the object property ``name`` (§4.2.1), as compact JSON.

    Raises :class:`CanonicalJSONError` if ``value`` holds a float, an integer beyond
    ±(2**53 - 1), a non-string key or a non-JSON type.
    """
    if name in (SD, ARRAY_DIGEST):
        raise CanonicalJSONError(f"{name!r} cannot be a selectively disclosable claim name")
    return Disclosure(*_encode(f"[{_json_text(salt)},{_json_text(name)},{_json_text(value)}]"))


def array_element_disclosure(salt: str, value: Any) -> Disclosure:
    """The disclosure of one array element (§4.2.2), as compact JSON."""
    return Disclosure(*_encode(f"[{_json_text(salt)},{_json_text(value)}]"))


def decoy_digest(random_bytes: RandomBytes) -> str:
    """A digest over random bytes, indistinguishable from a real one (§4.2.5)."""
    return b64u_encode(hashlib.sha256(random_bytes(SALT_BYTES)).digest())


# --- compact serialisation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompactSdJwt:
    jwt: str
    disclosures: tuple[str, ...]
    key_binding_jwt: str | None

    def without_key_binding(self) -> str:
        """The ``<jwt>~<d1>~...~`` text, as hashed into a Key Binding JWT's ``sd_hash``."""
        return "~".join((self.jwt, *self.disclosures, ""))


def split_compact(text: str) -> CompactSdJwt:
    """Split ``<jwt>~<d1>~...~<dn>~[<kb-jwt>]`` into its parts (§4)."""
    if not isinstance(text, str) or not text.isascii():
        raise MalformedSdJwt("an SD-JWT is ASCII text")
    parts = text.split("~")
    if len(parts) < 2 or not parts[0]:
        raise MalformedSdJwt("an SD-JWT is <jwt>~<disclosures>~ with a trailing tilde")
    disclosures = tuple(parts[1:-1])
    if not all(disclosures):
        raise MalformedSdJwt("empty disclosure between two tildes")
    return CompactSdJwt(parts[0], disclosures, parts[-1] or None)


def join_compact(jwt: str, disclosures: Sequence[str]) -> str:
    return "~".join((jwt, *disclosures, ""))


# --- processing (RFC 9901 §7.1 step 3) --------------------------------------------------------


def join_path(parent: str, name: str) -> str:
    """Paths are dot-separated claim names; array positions are not part of a path."""
    return f"{parent}.{name}" if parent else name


class DisclosureNode(NamedTuple):
    """Where a disclosure sits: its path and the disclosure whose value holds its digest."""

    encoded: str
    path: str
    parent: str | None  # encoded parent disclosure; None when its digest is in the signed JWT


_Node = tuple[str, str, str | None]  # a DisclosureNode's fields, before anyone asks for one


@dataclass(frozen=True, slots=True)
class Reconstruction:
    claims: dict[str, Any]
    placed: tuple[_Node, ...]  # (encoded, path, parent) per disclosure, in the order placed

    @property
    def nodes(self) -> tuple[DisclosureNode, ...]:
        return tuple(DisclosureNode(*node) for node in self.placed)

    @property
    def disclosed_paths(self) -> frozenset[str]:
        return frozenset(path for _encoded, path, _parent in self.placed)


def _object_disclosure_content(encoded: str) -> tuple[str, Any]:
    # Parsed JSON holds exact built-in types, so type() checks say the same as isinstance().
    content = _json_segment(encoded, "disclosure", InvalidDisclosure)
    if type(content) is not list or len(content) != 3:
        raise InvalidDisclosure("a claim disclosure must be [salt, claim name, value]")
    salt, name, value = content
    if type(salt) is not str or type(name) is not str:
        raise InvalidDisclosure("a claim disclosure must be [salt, claim name, value]")
    if name in (SD, ARRAY_DIGEST):
        raise InvalidDisclosure("a disclosure may not carry a claim named '_sd' or '...'")
    return name, value


def _array_disclosure_content(encoded: str) -> Any:
    content = _json_segment(encoded, "disclosure", InvalidDisclosure)
    if not (isinstance(content, list) and len(content) == 2 and isinstance(content[0], str)):
        raise InvalidDisclosure("an array element disclosure must be [salt, value]")
    return content[1]


class _Reconstructor:
    """One pass over the payload; each digest and each disclosure is looked at once."""

    __slots__ = ("_nodes", "_parent", "_pending", "_seen")

    def __init__(self, disclosures: Sequence[str]) -> None:
        digests = [_digest_text(encoded.encode("ascii")) for encoded in disclosures]
        self._pending: dict[str, str] = dict(zip(digests, disclosures, strict=True))
        if len(self._pending) != len(digests):
            raise InvalidDisclosure("the same disclosure is present twice")
        self._seen: set[str] = set()
        self._nodes: list[_Node] = []
        self._parent: str | None = None

    def run(self, payload: Mapping[str, Any]) -> Reconstruction:
        claims = self._object(payload, "")
        if self._pending:
            raise UnreferencedDisclosure(
                f"{len(self._pending)} disclosure(s) match no digest in the signed token"
            )
        return Reconstruction(claims, tuple(self._nodes))

    def _claim_digest(self, digest: Any) -> str | None:
        if not isinstance(digest, str):
            raise MalformedSdJwt("digests must be strings")
        if digest in self._seen:
            raise DuplicateDigest("a digest appears more than once in the token")
        self._seen.add(digest)
        return self._pending.pop(digest, None)

    def _value(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return self._object(value, path)
        if isinstance(value, list):
            return self._array(value, path)
        return value

    def _disclosed(self, encoded: str, value: Any, path: str) -> Any:
        self._nodes.append((encoded, path, self._parent))
        if not isinstance(value, CONTAINERS):
            return value
        # No try/finally: an exception ends the whole reconstruction anyway.
        outer, self._parent = self._parent, encoded
        value = self._value(value, path)
        self._parent = outer
        return value

    def _object(self, obj: Mapping[str, Any], path: str) -> dict[str, Any]:
        prefix = f"{path}." if path else ""
        result = {}
        for key, value in obj.items():
            if key == SD:
                continue
            if isinstance(value, CONTAINERS):  # scalars, the common case, need no call
                value = self._value(value, prefix + key)
            result[key] = value
        if SD not in obj:
            return result
        digests = obj[SD]
        if not isinstance(digests, list):
            raise MalformedSdJwt("'_sd' must be an array of digests")
        for digest in digests:
            encoded = self._claim_digest(digest)
            if encoded is None:
                continue  # a decoy, or a disclosure the holder did not present
            name, value = _object_disclosure_content(encoded)
            if name in result:
                raise ClaimCollision(f"disclosed claim {name[:64]!r} already exists at its level")
            result[name] = self._disclosed(encoded, value, prefix + name)
        return result

    def _array(self, items: list[Any], path: str) -> list[Any]:
        result = []
        for item in items:
            if isinstance(item, dict) and ARRAY_DIGEST in item:
                if len(item) != 1:
                    raise MalformedSdJwt("an array element digest object has only the key '...'")
                encoded = self._claim_digest(item[ARRAY_DIGEST])
                if encoded is not None:
                    value = _array_disclosure_content(encoded)
                    result.append(self._disclosed(encoded, value, path))
            else:
                result.append(self._value(item, path) if isinstance(item, CONTAINERS) else item)
        return result


def reconstruct(payload: Mapping[str, Any], disclosures: Sequence[str]) -> Reconstruction:
    """Apply ``disclosures`` to a signed payload (§7.1 step 3-5), without the signature check.

    ``payload`` must not contain ``_sd_alg`` any more (see :func:`verify_sd_jwt`). Raises
    :class:`SdJwtError` on duplicate digests, unreferenced or malformed disclosures and
    collisions.
    """
    try:
        return _Reconstructor(disclosures).run(payload)
    except RecursionError:
        raise MalformedSdJwt("the token is nested too deeply") from None


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessedSdJwt:
    """A verified SD-JWT: its header and the processed claims (only what was disclosed).

    ``disclosed_paths`` are the paths of the disclosures presented (an array-element disclosure
    counts as its array's path); ``key_binding`` is the verified KB-JWT payload, if any.
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    disclosed_paths: frozenset[str]
    key_binding: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class VerifiedSdJwt(ProcessedSdJwt):
    """Verified with the issuer key that the resolver trusted for (issuer, kid, issued_at)."""

    issuer: str
    kid: str
    issued_at: int


KeyLookup = Callable[[Mapping[str, Any], Mapping[str, Any]], VerificationKey]


def _check_audience(claims: Mapping[str, Any], expected: str) -> None:
    aud = claims.get("aud")
    if aud == expected or (isinstance(aud, list) and expected in aud):
        return
    raise AudienceMismatch("the token is not addressed to this recipient")


def verify_key_binding(compact: CompactSdJwt, claims: Mapping[str, Any]) -> dict[str, Any]:
    """Check a Key Binding JWT (§7.3 step 5): typ, holder signature with ``cnf.jwk``, sd_hash.

    Returns its payload; checking ``aud``, ``nonce`` and ``iat`` freshness is the caller's.
    """
    if compact.key_binding_jwt is None:
        raise KeyBindingInvalid("no Key Binding JWT")
    kb = _parse_jws(compact.key_binding_jwt, "Key Binding JWT", KeyBindingInvalid)
    if kb.header.get("typ") != KEY_BINDING_TYP:
        raise KeyBindingInvalid("the Key Binding JWT typ must be 'kb+jwt'")
    alg = kb.header.get("alg")
    if not isinstance(alg, str) or alg not in ALL_ALGORITHMS:
        raise KeyBindingInvalid("unsupported Key Binding JWT alg")
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or "jwk" not in cnf:
        raise KeyBindingInvalid("the SD-JWT has no cnf.jwk holder key to bind to")
    try:
        _check_signature(alg, public_key_from_jwk(cnf["jwk"]), kb.signing_input, kb.signature)
    except SdJwtError as problem:
        raise KeyBindingInvalid(f"Key Binding JWT: {problem}") from None
    payload = kb.payload
    for name, kind in (("iat", int), ("aud", str), ("nonce", str), ("sd_hash", str)):
        if not isinstance(payload.get(name), kind) or isinstance(payload.get(name), bool):
            raise KeyBindingInvalid(f"the Key Binding JWT needs {name!r}")
    if payload["sd_hash"] != digest_of(compact.without_key_binding()):
        raise KeyBindingInvalid("sd_hash does not match the presented SD-JWT")
    return payload


def verify_sd_jwt_with(
    text: str,
    key_for: KeyLookup,
    *,
    expected_typ: str | None = None,
    algorithms: Collection[str] = ALL_ALGORITHMS,
    expected_audience: str | None = None,
) -> ProcessedSdJwt:
    """Verify a compact SD-JWT or SD-JWT+KB (RFC 9901 §7.1, §7.3) and return what it discloses.

    ``key_for(header, payload)`` returns the issuer key to check the signature with (or raises
    an :class:`SdJwtError`); it sees the payload before the signature is checked. A Key Binding
    JWT, if present, is verified against the payload's ``cnf.jwk``.
    """
    compact = split_compact(text)
    jws = _parse_jws(compact.jwt, "issuer-signed JWT", MalformedSdJwt)
    header, payload = jws.header, jws.payload
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in ALL_ALGORITHMS:
        raise UnsupportedAlgorithm("the token's alg is not accepted here")
    if "crit" in header:
        raise MalformedSdJwt("critical JWS header extensions are not supported")
    if expected_typ is not None and header.get("typ") != expected_typ:
        raise UnexpectedTokenType(f"the token's typ is not {expected_typ!r}")
    _check_signature(alg, key_for(header, payload), jws.signing_input, jws.signature)
    if payload.get(SD_ALG, SHA_256) != SHA_256:
        raise UnsupportedAlgorithm("only the sha-256 disclosure digest is supported")
    body = {name: value for name, value in payload.items() if name != SD_ALG}
    result = reconstruct(body, compact.disclosures)
    if expected_audience is not None:
        _check_audience(result.claims, expected_audience)
    key_binding = None
    if compact.key_binding_jwt is not None:
        key_binding = verify_key_binding(compact, result.claims)
    return ProcessedSdJwt(header, result.claims, result.disclosed_paths, key_binding)


@dataclass(frozen=True, slots=True)
class _IssuerIdentity:
    issuer: str
    kid: str
    issued_at: int

    @classmethod
    def of(cls, header: Mapping[str, Any], payload: Mapping[str, Any]) -> _IssuerIdentity:
        issuer, issued_at, kid = payload.get("iss"), payload.get("iat"), header.get("kid", "")
        if not isinstance(issuer, str):
            raise MalformedSdJwt("the issuer-signed JWT needs a string 'iss' in clear")
        if not isinstance(issued_at, int) or isinstance(issued_at, bool):
            raise MalformedSdJwt("the issuer-signed JWT needs an integer 'iat' in clear")
        if not isinstance(kid, str):
            raise MalformedSdJwt("the header kid must be a string")
        return cls(issuer, kid, issued_at)


def verify_sd_jwt(
    text: str,
    resolver: SigningKeyResolver,
    *,
    expected_typ: str | None = None,
    algorithms: Collection[str] = ALL_ALGORITHMS,
    expected_audience: str | None = None,
) -> VerifiedSdJwt:
    """:func:`verify_sd_jwt_with` the key ``resolver`` trusts for the token's issuer.

    The key is ``resolver.signing_key_for(iss, kid, iat)``: ``iss`` and ``iat`` must be in clear
    in the payload, ``kid`` is the header's (``""`` when absent).
    """
    identities: list[_IssuerIdentity] = []

    def key_for(header: Mapping[str, Any], payload: Mapping[str, Any]) -> VerificationKey:
        identity = _IssuerIdentity.of(header, payload)
        identities.append(identity)
        try:
            return resolver.signing_key_for(identity.issuer, identity.kid, identity.issued_at)
        except KeyNotTrusted as problem:
            raise IssuerKeyNotTrusted(f"issuer key not trusted: {problem}") from None

    processed = verify_sd_jwt_with(
        text,
        key_for,
        expected_typ=expected_typ,
        algorithms=algorithms,
        expected_audience=expected_audience,
    )
    identity = identities[0]
    return VerifiedSdJwt(
        header=processed.header,
        claims=processed.claims,
        disclosed_paths=processed.disclosed_paths,
        key_binding=processed.key_binding,
        issuer=identity.issuer,
        kid=identity.kid,
        issued_at=identity.issued_at,
    )
