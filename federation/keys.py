"""The contract between verifiers and whoever knows organisations' keys.

Verifying a signed record (SD-JWT, sealed envelope, key statement) needs the issuer's public
signing key *as it was trusted at the record's issue time*. ``federation.identity`` implements
:class:`SigningKeyResolver` from the roster and key statements; verifiers depend only on this file.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VerificationKey = Ed25519PublicKey | EllipticCurvePublicKey


class KeyNotTrusted(Exception):
    """No trusted key matches: unknown issuer or key id, rotated away, or revoked at that time."""


class SigningKeyResolver(Protocol):
    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
        """The key ``kid`` of ``issuer`` if it was valid at ``issued_at`` (unix seconds).

        Raises :class:`KeyNotTrusted` (with the reason) otherwise.
        """
        ...
