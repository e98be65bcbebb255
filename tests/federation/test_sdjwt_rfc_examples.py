"""The examples of RFC 9901 itself, checked against federation.sdjwt (vectors in
tests/support/vectors)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from federation.keys import KeyNotTrusted, VerificationKey
from federation.sdjwt import (
    SD,
    SD_ALG,
    BadSignature,
    DuplicateDigest,
    InvalidDisclosure,
    IssuerKeyNotTrusted,
    KeyBindingInvalid,
    SdJwtError,
    UnreferencedDisclosure,
    digest_of,
    join_compact,
    public_key_from_jwk,
    reconstruct,
    split_compact,
    verify_sd_jwt,
    verify_sd_jwt_with,
)
from tests.support import VECTORS

ISSUER = "https://issuer.example.com"


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"rfc9901_{name}.json").read_text("utf-8"))
    return vector


ALL_WITH_DISCLOSURES = [
    "5_simple",
    "6_1_flat",
    "6_2_structured",
    "6_3_recursive",
    "a1_simple_structured",
    "a2_complex_structured",
    "a3_sd_jwt_vc",
    "a4_w3c_vc",
]
WITH_PRESENTATION = ["5_simple", "a1_simple_structured", "a2_complex_structured", "a3_sd_jwt_vc"]
WITH_ISSUANCE = ["5_simple", "a3_sd_jwt_vc", "a4_w3c_vc"]

RFC_KEY = public_key_from_jwk(load("issuer_key")["jwk"])


class OneIssuer:
    """A resolver that trusts one key for one issuer, and records what it was asked."""

    def __init__(self, issuer: str, key: VerificationKey) -> None:
        self.issuer, self.key = issuer, key
        self.asked: list[tuple[str, str, int]] = []

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
        self.asked.append((issuer, kid, issued_at))
        if issuer != self.issuer:
            raise KeyNotTrusted("unknown issuer")
        return self.key


def rfc_key(_header: object, _payload: object) -> VerificationKey:
    return RFC_KEY


def payload_without_sd_alg(vector: dict[str, Any], name: str = "sd_jwt_payload") -> dict[str, Any]:
    return {key: value for key, value in vector[name].items() if key != SD_ALG}


def fully_disclosed(vector: dict[str, Any]) -> dict[str, Any]:
    """The input claims plus the claims the issuer added in clear (iss, iat, exp, cnf...)."""
    added = {
        key: value
        for key, value in vector["sd_jwt_payload"].items()
        if key not in (SD, SD_ALG) and key not in vector["input_claims"]
    }
    return {**added, **vector["input_claims"]}


@pytest.mark.parametrize("name", ALL_WITH_DISCLOSURES)
def test_digests_reproduce_the_rfc(name: str) -> None:
    vector = load(name)
    for entry in vector["disclosures"]:
        assert digest_of(entry["disclosure"]) == entry["digest"]


@pytest.mark.parametrize("name", ALL_WITH_DISCLOSURES)
def test_all_disclosures_rebuild_the_input_claims(name: str) -> None:
    vector = load(name)
    disclosures = [entry["disclosure"] for entry in vector["disclosures"]]
    result = reconstruct(payload_without_sd_alg(vector), disclosures)
    assert result.claims == fully_disclosed(vector)
    assert {node.encoded for node in result.nodes} == set(disclosures)


def test_structured_address_with_one_claim_in_clear() -> None:
    vector = load("6_2_structured")
    without_country = [e["disclosure"] for e in vector["disclosures"][:3]]
    result = reconstruct(payload_without_sd_alg(vector, "sd_jwt_payload_one_open"), without_country)
    assert result.claims["address"] == vector["input_claims"]["address"]


def test_recursive_disclosure_paths_and_parents() -> None:
    vector = load("6_3_recursive")
    disclosures = [e["disclosure"] for e in vector["disclosures"]]
    nodes = reconstruct(payload_without_sd_alg(vector), disclosures).nodes
    address = next(node for node in nodes if node.path == "address")
    assert address.parent is None
    inner = [node for node in nodes if node.path.startswith("address.")]
    assert {node.path for node in inner} == {
        "address.street_address",
        "address.locality",
        "address.region",
        "address.country",
    }
    assert all(node.parent == address.encoded for node in inner)


def test_sub_claims_without_their_recursive_parent_are_unreferenced() -> None:
    vector = load("6_3_recursive")
    inner_only = [e["disclosure"] for e in vector["disclosures"][:4]]
    with pytest.raises(UnreferencedDisclosure):
        reconstruct(payload_without_sd_alg(vector), inner_only)


@pytest.mark.parametrize("name", WITH_PRESENTATION)
def test_rfc_presentations_verify_through_the_resolver(name: str) -> None:
    vector = load(name)
    resolver = OneIssuer(
        ISSUER if name != "a3_sd_jwt_vc" else vector["input_claims"]["iss"], RFC_KEY
    )
    result = verify_sd_jwt(vector["presentation"], resolver)
    assert result.claims == vector["processed_payload"]
    assert resolver.asked == [(result.issuer, "", vector["sd_jwt_payload"]["iat"])]
    assert result.key_binding == vector.get("key_binding_payload")


def test_w3c_example_without_iss_verifies_with_a_key_lookup() -> None:
    vector = load("a4_w3c_vc")
    result = verify_sd_jwt_with(vector["presentation"], rfc_key)
    assert result.claims == vector["processed_payload"]
    assert result.key_binding is not None


@pytest.mark.parametrize("name", WITH_ISSUANCE)
def test_rfc_issuances_verify_with_every_disclosure(name: str) -> None:
    vector = load(name)
    result = verify_sd_jwt_with(vector["issuance"], rfc_key)
    assert result.claims == fully_disclosed(vector)
    assert result.key_binding is None


def test_issuer_signed_jwt_alone_shows_only_clear_claims() -> None:
    vector = load("5_simple")
    result = verify_sd_jwt_with(vector["issuer_signed_jwt"] + "~", rfc_key)
    assert result.disclosed_paths == frozenset()
    assert result.claims == {
        "iss": ISSUER,
        "iat": 1683000000,
        "exp": 1883000000,
        "sub": "user_42",
        "nationalities": [],
        "cnf": vector["sd_jwt_payload"]["cnf"],
    }


def test_decoys_of_appendix_a1_are_in_the_payload_and_ignored() -> None:
    vector = load("a1_simple_structured")
    payload = vector["sd_jwt_payload"]
    all_digests = set(payload[SD]) | set(payload["address"][SD])
    assert set(vector["decoy_digests"]) <= all_digests
    real = {entry["digest"] for entry in vector["disclosures"]}
    assert not real & set(vector["decoy_digests"])


def test_another_key_is_a_bad_signature() -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(BadSignature):
        verify_sd_jwt(load("5_simple")["presentation"], OneIssuer(ISSUER, other))


def test_an_untrusted_issuer_is_rejected() -> None:
    with pytest.raises(IssuerKeyNotTrusted):
        verify_sd_jwt(load("5_simple")["presentation"], OneIssuer("https://other.example", RFC_KEY))


def test_a_disclosure_from_another_token_is_unreferenced() -> None:
    vector = load("5_simple")
    stranger = load("a2_complex_structured")["disclosures"][0]["disclosure"]
    compact = split_compact(vector["issuance"])
    with pytest.raises(UnreferencedDisclosure):
        verify_sd_jwt_with(join_compact(compact.jwt, [*compact.disclosures, stranger]), rfc_key)


def test_the_same_disclosure_twice_is_rejected() -> None:
    compact = split_compact(load("5_simple")["issuance"])
    twice = join_compact(compact.jwt, [*compact.disclosures, compact.disclosures[0]])
    with pytest.raises(InvalidDisclosure):
        verify_sd_jwt_with(twice, rfc_key)


def test_a_digest_repeated_in_the_payload_is_rejected() -> None:
    vector = load("6_2_structured")
    payload = payload_without_sd_alg(vector)
    digest = payload["address"][SD][0]
    payload[SD] = [digest]
    with pytest.raises(DuplicateDigest):
        reconstruct(payload, [])


def test_key_binding_jwt_is_bound_to_the_presented_disclosures() -> None:
    vector = load("5_simple")
    compact = split_compact(vector["presentation"])
    assert compact.key_binding_jwt is not None
    fewer = "~".join((compact.jwt, *compact.disclosures[:-1], compact.key_binding_jwt))
    with pytest.raises(KeyBindingInvalid):
        verify_sd_jwt_with(fewer, rfc_key)


def test_every_single_character_change_of_the_rfc_presentation_is_rejected() -> None:
    presentation = load("5_simple")["presentation"]
    for position, character in enumerate(presentation):
        replacement = "A" if character != "A" else "B"
        altered = presentation[:position] + replacement + presentation[position + 1 :]
        with pytest.raises(SdJwtError):
            verify_sd_jwt_with(altered, rfc_key)
