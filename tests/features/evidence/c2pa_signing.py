"""C2PA-signed JPEGs for the tests, made with the C2PA library's own Builder and a certificate
chain (a CA and an ES256 end-entity certificate) generated here with ``cryptography``: nothing
is downloaded and no key is committed."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.features.evidence.samples import jpeg_with_gps

SIGNER_NAME = "Minga test camera"
ORGANISATION = "Minga tests"
GENERATOR = "minga-tests"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)])


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=not sign, crl_sign=not sign, encipher_only=False,
                         decipher_only=False)


def signing_chain() -> tuple[bytes, bytes]:
    """PEM certificates (end entity, then CA) and the end entity's PKCS #8 private key."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Minga test CA"))
          .issuer_name(_name("Minga test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_usage(sign=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(SIGNER_NAME)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = (leaf.public_bytes(serialization.Encoding.PEM)
             + ca.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return chain, private


def signed_jpeg() -> bytes:
    """The GPS sample photo with a C2PA manifest ("created by a digital capture") signed ES256."""
    chain, private = signing_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, private, None))
    manifest = {
        "claim_generator_info": [{"name": GENERATOR, "version": "1"}], "title": "photo.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
        }]}}],
    }
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg_with_gps()), out)
    return out.getvalue()


def altered(signed: bytes) -> bytes:
    """The signed JPEG with one byte of its image data changed after signing."""
    changed = bytearray(signed)
    changed[-10] ^= 0xFF
    return bytes(changed)
