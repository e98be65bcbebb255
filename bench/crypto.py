"""Benchmark of the M2 trust core: consent gate, SD-JWT and sealing, against their limits.

Usage: .venv/bin/python bench/crypto.py [--min-time SECONDS] [--rounds N]

One realistic case (two victims, two perpetrators, every field filled; disclosing all 21 case
field paths makes 32 disclosures, one per field of each victim and perpetrator) is shared the
way a real share does it: for **each** recipient, the consent gate and one SD-JWT issued for
that recipient alone (``disclose_case``: fresh salts, ``aud`` = the recipient), sealed in an
envelope to that recipient alone. One envelope per recipient because each recipient's SD-JWT is
its own copy: sealing them all in one envelope would show every recipient the others' copies.
Opening is one recipient's work: verify the envelope's sender signature, unwrap, decrypt, then
verify the SD-JWT against the key ring.

Printed side by side, all measured in this run on this machine:

- cases/s built and sealed for 1, 5 and 20 recipients, and opened and verified;
- the raw primitive cost of the same operations with bare ``cryptography`` calls. For a share,
  per recipient: two Ed25519 signatures (SD-JWT and envelope, over messages of their real
  lengths), one HPKE wrap of the 32-byte content key (X25519, HKDF-SHA256, ChaCha20-Poly1305) and
  one ChaCha20-Poly1305 encryption of the padded payload. For open + verify: two Ed25519
  verifications, one HPKE unwrap and one decryption. Hashing, salts, JSON, base64 and
  validation are not counted as primitive cost: the ratios charge all of that to us;
- issue/s and verify/s of the ``sd-jwt`` reference package (PyPI, EdDSA with an Ed25519 key
  through jwcrypto) on the same claims with the same selectively disclosable fields (the same 32
  disclosures, nested the same way; no decoys, which only spares it work), next to ours:
  ``disclose_case`` (gate included) and ``federation.disclosure.verify`` (typ, kid, key lookup in
  the key ring at issue time, audience, every RFC 9901 check).

Every verification checks every signature and every digest; nothing is cached between
iterations except what a node computes once per record kind or requested field set
(``federation.disclosure``'s issuance plan: which paths are withheld at which level; the consent
gate's split of the field paths). Records, tokens, keys looked up in the ring, salts and
signatures are made anew every time. Timing: see :class:`Stopwatch`.
The last line is ``verify_vs_reference=<N>x seal_vs_raw=<N>x``: the reference's SD-JWT verify
time over ours (target >= 3), and our build + seal time over its raw primitive cost, the worst
of 1, 5 and 20 recipients (target <= 2).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from federation.canonical import canonical_json
from federation.consent import CASE_PATHS, Recipient, case_claims, disclose_case
from federation.consent_decision import HEADER_CLAIMS
from federation.disclosure import verify
from federation.identity import KeyRing, OrgKeys, sign_member_entry
from federation.sdjwt import split_compact
from federation.sealing import open_envelope, padded_length, seal
from schemas.ids import new_record_id
from schemas.records import CaseRecord, RecordKind, build_record, parse_payload

RECIPIENT_COUNTS = (1, 5, 20)
T0 = 1_760_000_000
NOW = T0 + 86_400


def the_case(issuer: str) -> CaseRecord:
    payload = parse_payload(
        RecordKind.CASE,
        {
            "title": "Amenazas y detención de lideresa de la vereda El Porvenir",
            "incident_date": "2024-03/2024-05-17",
            "country": "CO",
            "place": "Vereda El Porvenir, municipio de San Aurelio, Nariño",
            "narrative": (
                "María Fernanda Quiñones Ibargüen recibió tres panfletos firmados por un grupo "
                "armado y luego fue detenida sin orden judicial durante 36 horas. Durante la "
                "detención fue interrogada sobre el proceso de restitución de tierras."
            ),
            "violations": ["death_threat", "arbitrary_detention", "stigmatisation"],
            "victims": [
                {
                    "kind": "individual",
                    "name": "María Fernanda Quiñones Ibargüen",
                    "native_name": "María Fernanda Quiñones Ibargüen",
                    "romanised_name": "Maria Fernanda Quinones Ibarguen",
                    "groups": ["land_environmental_defender", "woman_hrd"],
                    "gender": "woman",
                    "description": "Lideresa del consejo comunitario, 41 años.",
                },
                {
                    "kind": "collective",
                    "name": "Consejo Comunitario Río Añil",
                    "native_name": "Consejo Comunitario Río Añil",
                    "romanised_name": "Consejo Comunitario Rio Anil",
                    "groups": ["community"],
                    "description": "Consejo comunitario afrodescendiente, 300 familias.",
                },
            ],
            "perpetrators": [
                {
                    "category": "armed_group",
                    "name": "Frente sin nombre",
                    "description": "Panfletos firmados",
                },
                {
                    "category": "police",
                    "name": "Estación de Policía San Aurelio",
                    "description": "Detención sin orden judicial",
                },
            ],
            "impunity_status": "reported_no_action",
            "verification_status": "verified",
            "independent_sources": 2,
            "sources": ["Testimonio directo", "Acta de la Defensoría del Pueblo regional"],
            "consent_level": "coalition",
            "risk_level": "high",
            "impact_story": (
                "Tras la detención, la comunidad suspendió las reuniones sobre la restitución de "
                "tierras durante dos meses."
            ),
        },
    )
    record = build_record(
        issuer, payload, record_id=new_record_id(T0 * 1000, os.urandom(10)), issued_at=T0
    )
    assert isinstance(record, CaseRecord)
    return record


# --- timing -----------------------------------------------------------------------------------


class Stopwatch:
    """Times named operations in interleaved rounds, keeping each one's best round.

    Each round runs every operation once (an auto-ranged loop of at least ``min_time``
    seconds), so a busy moment on a shared machine hits all of them alike instead of skewing
    whichever happened to run then; the best of the rounds is the least disturbed.
    """

    def __init__(self, min_time: float, rounds: int) -> None:
        self.min_time, self.rounds = min_time, rounds
        self._operations: dict[str, tuple[timeit.Timer, int]] = {}
        self.best: dict[str, float] = {}

    def add(self, name: str, operation: Callable[[], object]) -> None:
        timer, number = timeit.Timer(operation), 1
        while timer.timeit(number) < self.min_time / 4:
            number *= 2
        self._operations[name] = (timer, number * 4)

    def run(self) -> None:
        for _ in range(self.rounds):
            for name, (timer, number) in self._operations.items():
                seconds = timer.timeit(number) / number
                self.best[name] = min(seconds, self.best.get(name, seconds))


# --- the network ------------------------------------------------------------------------------


@dataclass
class Network:
    sender: OrgKeys
    recipients: list[OrgKeys]
    ring: KeyRing
    record: CaseRecord

    @classmethod
    def create(cls) -> Network:
        sender = OrgKeys.generate()
        recipients = [OrgKeys.generate() for _ in range(max(RECIPIENT_COUNTS))]
        ring = KeyRing()
        for org in (sender, *recipients):
            ring.add_member_entry(sign_member_entry(org, {"name": "bench", "country": "CO"}))
        return cls(sender, recipients, ring, the_case(sender.org_id))

    def disclose(self, org_id: str) -> str:
        return disclose_case(
            self.record,
            CASE_PATHS,
            Recipient.member(org_id),
            signing_key=self.sender.signing,
            kid=self.sender.signing_kid,
            issued_at=NOW,
        )

    def share(self, count: int) -> list[dict[str, Any]]:
        """What a share of the case with ``count`` members builds: one envelope per recipient."""
        envelopes = []
        for org in self.recipients[:count]:
            token = self.disclose(org.org_id)
            recipient_key = self.ring.encryption_key_for(org.org_id)
            envelope = seal(token.encode("ascii"), self.sender, [recipient_key], NOW)
            envelopes.append(envelope.to_wire())
        return envelopes

    def open_and_verify(self, envelope: dict[str, Any]) -> dict[str, Any]:
        me = self.recipients[0]
        opened = open_envelope(envelope, me, self.ring)
        return verify(opened.payload.decode("ascii"), self.ring, expected_audience=me.org_id).claims


# --- raw primitives ---------------------------------------------------------------------------


def add_raw_primitives(watch: Stopwatch, token: str, envelope: dict[str, Any]) -> None:
    """Bare ``cryptography`` calls on inputs of the sizes the real operations use."""
    signing_key = Ed25519PrivateKey.generate()
    public_key = signing_key.public_key()
    token_message = split_compact(token).jwt.rpartition(".")[0].encode("ascii")
    envelope_message = canonical_json({k: v for k, v in envelope.items() if k != "signature"})
    token_signature = signing_key.sign(token_message)
    envelope_signature = signing_key.sign(envelope_message)

    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    x_private = X25519PrivateKey.generate()
    x_public = x_private.public_key()
    content_key = ChaCha20Poly1305.generate_key()
    info = os.urandom(160)  # about the size of the envelope's key info
    wrapped = suite.encrypt(content_key, x_public, info=info)

    nonce = os.urandom(12)
    padded = os.urandom(padded_length(len(token)))
    header = os.urandom(300)  # about the size of the envelope header bound as associated data
    ciphertext = ChaCha20Poly1305(content_key).encrypt(nonce, padded, header)

    watch.add("sign token", lambda: signing_key.sign(token_message))
    watch.add("sign envelope", lambda: signing_key.sign(envelope_message))
    watch.add("verify token", lambda: public_key.verify(token_signature, token_message))
    watch.add("verify envelope", lambda: public_key.verify(envelope_signature, envelope_message))
    watch.add("hpke wrap", lambda: suite.encrypt(content_key, x_public, info=info))
    watch.add("hpke unwrap", lambda: suite.decrypt(wrapped, x_private, info=info))
    watch.add("aead encrypt", lambda: ChaCha20Poly1305(content_key).encrypt(nonce, padded, header))
    watch.add(
        "aead decrypt", lambda: ChaCha20Poly1305(content_key).decrypt(nonce, ciphertext, header)
    )


RAW_SHARE_PER_RECIPIENT = ("sign token", "sign envelope", "hpke wrap", "aead encrypt")
RAW_SEAL = ("sign envelope", "hpke wrap", "aead encrypt")
RAW_OPEN = ("verify envelope", "hpke unwrap", "aead decrypt")
RAW_OPEN_AND_VERIFY = (*RAW_OPEN, "verify token")


# --- the reference package --------------------------------------------------------------------


def reference_claims(claims: dict[str, Any], issuer: str, audience: str) -> dict[Any, Any]:
    """Our claims marked for the reference issuer: the same disclosures, nested the same way."""
    marked: dict[Any, Any] = {"iss": issuer, "iat": NOW, "aud": audience}
    for name, value in claims.items():
        if name in HEADER_CLAIMS:
            marked[name] = value
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            marked[SDObj(name)] = [{SDObj(key): item for key, item in e.items()} for e in value]
        else:
            marked[SDObj(name)] = value
    return marked


def add_reference(watch: Stopwatch, network: Network, ours: dict[str, Any]) -> int:
    """Time the reference package on our claims; returns its disclosure count."""
    audience = network.recipients[0].org_id
    claims = case_claims(network.record, CASE_PATHS)
    marked = reference_claims(claims, network.record.issuer, audience)
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519")
    public_jwk = JWK.from_json(issuer_key.export_public())

    def reference_issue() -> str:
        issuance: str = SDJWTIssuer(marked, issuer_key, sign_alg="EdDSA").sd_jwt_issuance
        return issuance

    token = reference_issue()

    def reference_verify() -> dict[str, Any]:
        verifier = SDJWTVerifier(token, lambda _issuer, _header: public_jwk)
        payload: dict[str, Any] = verifier.get_verified_payload()
        return payload

    if reference_verify() != ours:
        raise SystemExit("the reference verified other claims than ours: no fair comparison")
    watch.add("reference issue", reference_issue)
    watch.add("reference verify", reference_verify)
    return len(split_compact(token).disclosures)


# --- the run ----------------------------------------------------------------------------------


def line(name: str, seconds: float, raw: float | None = None) -> str:
    text = f"{name:46} {1 / seconds:9.0f} {seconds * 1e6:9.1f}"
    if raw is None:
        return text
    return f"{text} {raw * 1e6:9.1f} {seconds / raw:8.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per timed loop")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    options = parser.parse_args()
    watch = Stopwatch(options.min_time, options.rounds)

    network = Network.create()
    me = network.recipients[0]
    envelope = network.share(1)[0]
    token = network.disclose(me.org_id)
    claims = network.open_and_verify(envelope)
    recipient_key = network.ring.encryption_key_for(me.org_id)

    for count in RECIPIENT_COUNTS:
        watch.add(f"share {count}", functools.partial(network.share, count))
    watch.add("open and verify", lambda: network.open_and_verify(envelope))
    watch.add("issue", lambda: network.disclose(me.org_id))
    watch.add("seal", lambda: seal(token.encode("ascii"), network.sender, [recipient_key], NOW))
    watch.add("verify", lambda: verify(token, network.ring, expected_audience=me.org_id))
    watch.add("open", lambda: open_envelope(envelope, me, network.ring))
    add_raw_primitives(watch, token, envelope)
    reference_disclosures = add_reference(watch, network, claims)
    watch.run()
    best = watch.best

    def raw(*names: str) -> float:
        return sum(best[name] for name in names)

    print("Minga M2 crypto benchmark")
    print(
        f"python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{backend.openssl_version_text()}, {os.cpu_count()} CPU(s), {platform.machine()}; "
        f"best of {options.rounds} interleaved rounds"
    )
    print(
        f"case: {len(split_compact(token).disclosures)} disclosures, SD-JWT {len(token)} B, "
        f"envelope {len(json.dumps(envelope))} B as JSON; a share issues one SD-JWT and seals "
        "one envelope per recipient"
    )
    print()
    print(f"{'operation':46} {'ops/s':>9} {'us/op':>9} {'raw us':>9} {'ours/raw':>9}")
    seal_ratios = []
    for count in RECIPIENT_COUNTS:
        share, share_raw = best[f"share {count}"], raw(*RAW_SHARE_PER_RECIPIENT) * count
        seal_ratios.append(share / share_raw)
        print(line(f"build + seal one case for {count:2} recipient(s)", share, share_raw))
    print(
        line("open + verify it (one recipient)", best["open and verify"], raw(*RAW_OPEN_AND_VERIFY))
    )
    print("  parts, per recipient:")
    print(line("  SD-JWT issue (gate + disclose_case)", best["issue"], raw("sign token")))
    print(line("  seal (one envelope, one recipient)", best["seal"], raw(*RAW_SEAL)))
    print(line("  SD-JWT verify (disclosure.verify)", best["verify"], raw("verify token")))
    print(line("  open_envelope", best["open"], raw(*RAW_OPEN)))
    print()
    token_input = split_compact(token).jwt.rpartition(".")[0]
    padded = padded_length(len(token))
    print("raw primitives (bare cryptography calls, same run):")
    for name, label in (
        ("sign token", f"Ed25519 sign ({len(token_input)} B SD-JWT input)"),
        ("sign envelope", "Ed25519 sign (envelope content)"),
        ("verify token", "Ed25519 verify (SD-JWT input)"),
        ("verify envelope", "Ed25519 verify (envelope content)"),
        ("hpke wrap", "HPKE wrap of the 32-byte content key"),
        ("hpke unwrap", "HPKE unwrap"),
        ("aead encrypt", f"ChaCha20-Poly1305 encrypt {padded} B"),
        ("aead decrypt", f"ChaCha20-Poly1305 decrypt {padded} B"),
    ):
        print(line(f"  {label}", best[name]))
    print()
    print(
        f"sd-jwt {version('sd-jwt')} reference package (EdDSA via jwcrypto; "
        f"{reference_disclosures} disclosures, no decoys; verifies to the same claims as ours):"
    )
    print(f"{'':46} {'ours/s':>9} {'ref/s':>9} {'ours/ref':>9}")
    for name in ("issue", "verify"):
        ours, reference = best[name], best[f"reference {name}"]
        print(f"  {name:44} {1 / ours:9.0f} {1 / reference:9.0f} {reference / ours:8.2f}x")
    print()
    verify_vs_reference = best["reference verify"] / best["verify"]
    print(f"verify_vs_reference={verify_vs_reference:.1f}x seal_vs_raw={max(seal_ratios):.1f}x")


if __name__ == "__main__":
    main()
