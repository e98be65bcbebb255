"""Minga's selective disclosure (federation.disclosure on top of federation.sdjwt)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.consent_decision import HEADER_CLAIMS, grant
from federation.disclosure import (
    MINGA_SD_JWT_TYP,
    ConsentRequired,
    InvalidAudience,
    InvalidClaims,
    InvalidPath,
    SdArrayTooSmall,
    addressed_to,
    issue,
    present,
    verify,
)
from federation.encoding import b64u_decode, b64u_encode
from federation.keys import KeyNotTrusted, VerificationKey
from federation.sdjwt import (
    SD,
    AudienceMismatch,
    BadSignature,
    ClaimCollision,
    DuplicateDigest,
    InvalidDisclosure,
    IssuerKeyNotTrusted,
    MalformedSdJwt,
    SdJwtError,
    UnexpectedTokenType,
    UnreferencedDisclosure,
    UnsupportedAlgorithm,
    array_element_disclosure,
    join_compact,
    object_disclosure,
    sign_jws,
    split_compact,
    unverified_payload,
    verify_sd_jwt_with,
)

ISSUER = "org-colombia"
KID = "key-1"
IAT = 1_760_000_000
SIGNING_KEY = Ed25519PrivateKey.generate()

# The withholdable paths the property tests draw from: top-level claims, a nested object and
# objects inside an array (recursive disclosures when both the array and its keys are withheld).
CANDIDATE_PATHS = (
    "narrative",
    "place",
    "date",
    "location",
    "location.place",
    "location.region",
    "victims",
    "victims.name",
    "victims.age",
    "victims.group",
)


class Roster:
    """A dict-based resolver: (issuer, kid) -> key, optionally revoked from some time on."""

    def __init__(
        self, keys: Mapping[tuple[str, str], VerificationKey], revoked_at: int | None = None
    ):
        self.keys, self.revoked_at = dict(keys), revoked_at

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
        key = self.keys.get((issuer, kid))
        if key is None:
            raise KeyNotTrusted("unknown issuer or key id")
        if self.revoked_at is not None and issued_at >= self.revoked_at:
            raise KeyNotTrusted("key revoked before the record was issued")
        return key


ROSTER = Roster({(ISSUER, KID): SIGNING_KEY.public_key()})


def issue_case(claims: Mapping[str, Any], withholdable: set[str], **options: Any) -> str:
    return issue(
        claims,
        issuer=ISSUER,
        kid=KID,
        signing_key=SIGNING_KEY,
        issued_at=IAT,
        withholdable=withholdable,
        **options,
    )


def join(level: str, name: str) -> str:
    return f"{level}.{name}" if level else name


# --- an independent model of what a presentation must show ------------------------------------


def project(value: Any, level: str, hidden: Callable[[str], bool]) -> Any:
    if isinstance(value, dict):
        return {
            name: project(item, join(level, name), hidden)
            for name, item in value.items()
            if not hidden(join(level, name))
        }
    if isinstance(value, list):
        return [project(item, level, hidden) for item in value]
    return value


def strings_under(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_under(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_under(item)


def hidden_strings(value: Any, level: str, hidden: Callable[[str], bool]) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            if hidden(join(level, name)):
                yield from strings_under(item)
            else:
                yield from hidden_strings(item, join(level, name), hidden)
    elif isinstance(value, list):
        for item in value:
            yield from hidden_strings(item, level, hidden)


def existing_paths(value: Any, level: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for name, item in value.items():
            paths.add(join(level, name))
            paths |= existing_paths(item, join(level, name))
    elif isinstance(value, list):
        for item in value:
            paths |= existing_paths(item, level)
    return paths


def decoded_disclosures(token: str) -> dict[str, list[Any]]:
    """digest -> decoded disclosure, computed here without federation.sdjwt."""
    import hashlib

    result = {}
    for encoded in split_compact(token).disclosures:
        digest = b64u_encode(hashlib.sha256(encoded.encode("ascii")).digest())
        result[digest] = json.loads(b64u_decode(encoded))
    return result


def jwt_payload(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(b64u_decode(token.split("~")[0].split(".")[1]))
    return payload


def sd_arrays(token: str) -> Iterator[tuple[str, list[str]]]:
    """Every (level, _sd array) in the payload and inside every disclosure of ``token``."""
    disclosures = decoded_disclosures(token)

    def walk(value: Any, level: str) -> Iterator[tuple[str, list[str]]]:
        if isinstance(value, dict):
            if SD in value:
                yield level, value[SD]
                for digest in value[SD]:
                    if digest in disclosures:
                        _salt, name, inner = disclosures[digest]
                        yield from walk(inner, join(level, name))
            for name, item in value.items():
                if name != SD:
                    yield from walk(item, join(level, name))
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, level)

    yield from walk(jwt_payload(token), "")


# --- strategies -------------------------------------------------------------------------------


@st.composite
def case_claims(draw: st.DrawFn) -> dict[str, Any]:
    """A case-like claim object whose every string is a unique sentinel."""
    counter = itertools.count()

    def sentinel() -> str:
        number = next(counter)
        script = draw(st.sampled_from(["sentinel", "séntinel-名前", "сентинел"]))
        return f"<{script}-{number:04d}>"

    def maybe(name: str, value: Callable[[], Any]) -> dict[str, Any]:
        return {name: value()} if draw(st.booleans()) else {}

    def victim() -> dict[str, Any]:
        return {
            **maybe("name", sentinel),
            **maybe("age", lambda: draw(st.integers(0, 120))),
            **maybe("group", sentinel),
            **maybe("note", sentinel),
        }

    claims = {
        "kind": "note",
        "schema": "minga.note/1",
        "record_id": sentinel(),
        "version": draw(st.integers(1, 5)),
        **maybe("narrative", sentinel),
        **maybe("place", sentinel),
        **maybe("date", sentinel),
        **maybe("consent", lambda: draw(st.sampled_from(["coalition", "public", None]))),
        **maybe("location", lambda: {**maybe("place", sentinel), **maybe("region", sentinel)}),
        **maybe("victims", lambda: [victim() for _ in range(draw(st.integers(0, 3)))]),
    }
    return claims


def with_containers(paths: set[str]) -> set[str]:
    """Each path and every path above it: ``victims.name`` -> ``victims``, ``victims.name``."""
    closed = set()
    for path in paths:
        names = path.split(".")
        closed |= {".".join(names[:depth]) for depth in range(1, len(names) + 1)}
    return closed


path_sets = st.sets(st.sampled_from(CANDIDATE_PATHS))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- properties -------------------------------------------------------------------------------


@FAST
@given(claims=case_claims(), withholdable=path_sets, asked=path_sets)
def test_a_presentation_reveals_exactly_the_chosen_paths(
    claims: dict[str, Any], withholdable: set[str], asked: set[str]
) -> None:
    withheld, shown = with_containers(withholdable), with_containers(asked)

    def hidden(path: str) -> bool:
        return path in withheld and path not in shown

    presentation = present(issue_case(claims, withholdable), asked)
    result = verify(presentation, ROSTER)

    assert result.claims == {**project(claims, "", hidden), "iss": ISSUER, "iat": IAT}
    visible_paths = existing_paths(project(claims, "", hidden))
    assert result.disclosed_paths == withheld & shown & visible_paths
    assert (result.issuer, result.kid, result.issued_at) == (ISSUER, KID, IAT)

    segments = [presentation, *presentation.replace("~", ".").split(".")]
    decoded = [b64u_decode(segment) for segment in segments[1:] if segment]
    for value in hidden_strings(claims, "", hidden):
        for form in (value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")):
            assert form not in presentation.encode("utf-8")
            assert all(form not in segment for segment in decoded)


@FAST
@given(claims=case_claims(), withholdable=path_sets)
def test_sd_arrays_have_the_declared_size_whatever_fields_are_present(
    claims: dict[str, Any], withholdable: set[str]
) -> None:
    declared: dict[str, int] = {}
    for path in with_containers(withholdable):
        level = path.rpartition(".")[0]
        declared[level] = declared.get(level, 0) + 1
    token = issue_case(claims, withholdable)
    for level, digests in sd_arrays(token):
        assert len(digests) == declared[level]
        assert len(set(digests)) == len(digests)
        assert digests == sorted(digests)  # positions must not tell which field is which
    if declared.get(""):
        assert len(jwt_payload(token)[SD]) == declared[""]


@FAST
@given(claims=case_claims(), withholdable=path_sets)
def test_two_issuances_share_no_salt_and_no_digest(
    claims: dict[str, Any], withholdable: set[str]
) -> None:
    first, second = issue_case(claims, withholdable), issue_case(claims, withholdable)

    def digests_and_salts(token: str) -> tuple[set[str], set[str]]:
        digests = {digest for _level, array in sd_arrays(token) for digest in array}
        salts = {content[0] for content in decoded_disclosures(token).values()}
        return digests, salts

    first_digests, first_salts = digests_and_salts(first)
    second_digests, second_salts = digests_and_salts(second)
    assert not first_digests & second_digests
    assert not first_salts & second_salts
    assert verify(first, ROSTER).claims == verify(second, ROSTER).claims


@FAST
@given(
    claims=case_claims(),
    withholdable=path_sets,
    asked=path_sets,
    where=st.floats(0, 1, exclude_max=True),
    byte=st.integers(0, 255),
)
def test_changing_any_byte_of_a_presentation_is_detected(
    claims: dict[str, Any], withholdable: set[str], asked: set[str], where: float, byte: int
) -> None:
    presentation = present(issue_case(claims, withholdable), asked)
    position = int(where * len(presentation))
    if chr(byte) == presentation[position]:
        byte ^= 1
    altered = presentation[:position] + chr(byte) + presentation[position + 1 :]
    with pytest.raises(SdJwtError):
        verify(altered, ROSTER)


def test_every_single_byte_change_of_one_presentation_is_detected() -> None:
    claims = {
        "kind": "note",
        "narrative": "n",
        "victims": [{"name": "a", "age": 3}, {"name": "b"}],
        "location": {"place": "p"},
    }
    withholdable = {"narrative", "victims.age", "victims.name", "location.place"}
    presentation = present(issue_case(claims, withholdable), {"victims.name"})
    for position, character in enumerate(presentation):
        for replacement in {"A" if character != "A" else "B", "~", "."} - {character}:
            altered = presentation[:position] + replacement + presentation[position + 1 :]
            with pytest.raises(SdJwtError):
                verify(altered, ROSTER)


def test_no_other_spelling_of_the_signature_verifies() -> None:
    """Base64url has spare bits in a final character; they must not give a second valid token."""
    token = issue_case({"narrative": "x"}, {"narrative"})
    end = token.index("~")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(end - 3, end):
        for character in alphabet.replace(token[position], ""):
            altered = token[:position] + character + token[position + 1 :]
            with pytest.raises(SdJwtError):
                verify(altered, ROSTER)


# --- issuance ---------------------------------------------------------------------------------


def test_header_and_clear_claims() -> None:
    token = issue_case({"kind": "note", "narrative": "x"}, {"narrative"}, audience="org-kenya")
    header = json.loads(b64u_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": MINGA_SD_JWT_TYP, "kid": KID}
    payload = jwt_payload(token)
    assert {key: payload[key] for key in ("iss", "iat", "aud", "kind", "_sd_alg")} == {
        "iss": ISSUER,
        "iat": IAT,
        "aud": "org-kenya",
        "kind": "note",
        "_sd_alg": "sha-256",
    }
    assert "narrative" not in payload


def test_larger_sd_sizes_pad_with_decoys_even_without_withholdable_keys() -> None:
    claims = {"narrative": "x", "location": {"place": "p"}}
    token = issue_case(claims, {"narrative"}, sd_sizes={"": 7, "location": 3})
    assert {level: len(array) for level, array in sd_arrays(token)} == {"": 7, "location": 3}
    assert verify(present(token, {"narrative"}), ROSTER).claims["narrative"] == "x"


def test_sd_size_below_the_declared_keys_is_refused() -> None:
    with pytest.raises(SdArrayTooSmall):
        issue_case({"a": 1}, {"a", "b", "c"}, sd_sizes={"": 2})


def test_injected_randomness_makes_issuance_reproducible() -> None:
    def counter_bytes() -> Callable[[int], bytes]:
        numbers = itertools.count()
        return lambda size: next(numbers).to_bytes(size, "big")

    claims = {"narrative": "x", "victims": [{"name": "a"}]}
    paths = {"narrative", "victims", "victims.name"}
    first = issue_case(claims, paths, random_bytes=counter_bytes())
    assert first == issue_case(claims, paths, random_bytes=counter_bytes())
    assert first != issue_case(claims, paths)


@pytest.mark.parametrize(
    "claims",
    [
        {"narrative": "x", "iss": "someone"},
        {"narrative": "x", "iat": 1},
        {"extra": {"_sd": ["x"]}},
        {"extra": [{"...": "x"}]},
        {"dotted.name": 1},
        {"age": 1.5},
        {"victims": [{"name": 0.5}]},
        {"victims": "not a list of objects"},
        {"huge": 2**60},
    ],
)
def test_unusable_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaims):
        issue_case(claims, {"victims", "victims.name"})


@pytest.mark.parametrize("path", ["", "a..b", ".a", "iss", "iat", "_sd", "victims._sd", "a...b"])
def test_invalid_withholdable_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidPath):
        issue_case({"a": 1}, {path})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(salt=st.text(), name=st.text().filter(lambda n: n not in (SD, "...")), value=json_values)
def test_a_disclosure_is_the_json_of_its_parts(salt: str, name: str, value: Any) -> None:
    for disclosure, parts in (
        (object_disclosure(salt, name, value), [salt, name, value]),
        (array_element_disclosure(salt, value), [salt, value]),
    ):
        assert json.loads(b64u_decode(disclosure.encoded)) == parts


@pytest.mark.parametrize(
    "value",
    [1.5, [0.5], {"a": 2**60}, {1: "a"}, "\ud800", ["\udfff"], {"a": {1, 2}}, float("nan")],
)
def test_withheld_values_obey_the_wire_rules(value: Any) -> None:
    with pytest.raises(InvalidClaims) as refused:
        issue_case({"victims": [{"name": value}]}, {"victims.name"})
    assert "victims.name" in str(refused.value)


def test_error_messages_do_not_carry_values() -> None:
    with pytest.raises(InvalidClaims) as refused:
        issue_case({"victims": [{"name": "Secret Person", "age": 4.5}]}, {"victims.name"})
    assert "Secret Person" not in str(refused.value)
    assert "4.5" not in str(refused.value)


# --- presentation -----------------------------------------------------------------------------


def test_containers_are_withheld_and_shown_with_their_fields() -> None:
    claims = {"victims": [{"name": "a", "age": 3}, {"age": 4}], "location": {"place": "p"}}
    token = issue_case(claims, {"victims.name", "victims.age", "location.place"})
    assert {"victims", "location"}.isdisjoint(jwt_payload(token))
    assert {level: len(array) for level, array in sd_arrays(token)} == {
        "": 2,
        "victims": 2,
        "location": 1,
    }
    nothing = verify(present(token, set()), ROSTER)
    assert {"victims", "location"}.isdisjoint(nothing.claims)
    names = verify(present(token, {"victims.name"}), ROSTER)
    assert names.claims["victims"] == [{"name": "a"}, {}]
    assert names.disclosed_paths == {"victims", "victims.name"}
    assert "location" not in names.claims
    assert verify(present(token, {"victims"}), ROSTER).claims["victims"] == [{}, {}]


def test_present_picks_disclosures_of_an_rfc_example_by_path() -> None:
    from tests.federation.test_sdjwt_rfc_examples import load, rfc_key

    vector = load("5_simple")
    presentation = present(vector["issuance"], {"given_name", "family_name", "address"})
    result = verify_sd_jwt_with(presentation, rfc_key)
    assert result.claims == {**vector["processed_payload"], "nationalities": []}
    assert result.disclosed_paths == {"given_name", "family_name", "address"}


def test_paths_without_disclosures_add_nothing() -> None:
    token = issue_case({"kind": "note", "narrative": "x"}, {"narrative", "place"})
    presentation = present(token, {"place", "kind", "unknown"})
    assert split_compact(presentation).disclosures == ()
    assert verify(presentation, ROSTER).claims == {"kind": "note", "iss": ISSUER, "iat": IAT}


# --- verification -----------------------------------------------------------------------------


def test_untrusted_or_revoked_keys_are_rejected() -> None:
    token = issue_case({"narrative": "x"}, {"narrative"})
    with pytest.raises(IssuerKeyNotTrusted):
        verify(token, Roster({}))
    with pytest.raises(IssuerKeyNotTrusted):
        verify(token, Roster({(ISSUER, KID): SIGNING_KEY.public_key()}, revoked_at=IAT))
    assert verify(token, Roster({(ISSUER, KID): SIGNING_KEY.public_key()}, revoked_at=IAT + 1))
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BadSignature):
        verify(token, Roster({(ISSUER, KID): other}))


def test_audience_is_checked_when_expected() -> None:
    token = issue_case({"narrative": "x"}, {"narrative"}, audience="org-kenya")
    assert verify(token, ROSTER, expected_audience="org-kenya").claims["aud"] == "org-kenya"
    with pytest.raises(AudienceMismatch):
        verify(token, ROSTER, expected_audience="org-philippines")


def test_a_list_audience_is_accepted_for_each_member_of_it_only() -> None:
    token = issue_case({"narrative": "x"}, {"narrative"},
                       audience=["org-philippines", "org-kenya"])
    assert unverified_payload(split_compact(token).jwt)["aud"] == ["org-kenya", "org-philippines"]
    for member in ("org-kenya", "org-philippines"):
        verified = verify(token, ROSTER, expected_audience=member)
        assert addressed_to(verified.claims, member)
    assert not addressed_to(verify(token, ROSTER).claims, "org-mexico")
    with pytest.raises(AudienceMismatch):
        verify(token, ROSTER, expected_audience="org-mexico")


def test_a_string_audience_is_unchanged() -> None:
    token = issue_case({"narrative": "x"}, {"narrative"}, audience="org-kenya")
    assert unverified_payload(split_compact(token).jwt)["aud"] == "org-kenya"
    claims = verify(token, ROSTER).claims
    assert addressed_to(claims, "org-kenya") and not addressed_to(claims, "org-kenya-2")
    assert addressed_to(verify(issue_case({"narrative": "x"}, {"narrative"}), ROSTER).claims,
                        "org-anyone")  # no aud: addressed to nobody in particular


@pytest.mark.parametrize(("audience", "message"), [
    ([], "must not be empty"),
    (("org-kenya", "org-kenya"), "listed twice"),
    (["org-kenya", 7], "non-empty string"),
    (["org-kenya", ""], "non-empty string"),
    (7, "an org id or a list"),
])
def test_a_bad_audience_list_is_refused_at_issue(audience: Any, message: str) -> None:
    with pytest.raises(InvalidAudience, match=message) as refused:
        issue_case({"narrative": "x"}, {"narrative"}, audience=audience)
    assert str(refused.value).startswith("aud:")


@pytest.mark.parametrize("aud", [[], ["org-kenya", "org-kenya"], ["org-kenya", 7], {"a": 1}])
def test_a_token_with_a_bad_audience_list_is_malformed(aud: Any) -> None:
    token = crafted({"aud": aud, "narrative": "x"}, [])
    with pytest.raises(MalformedSdJwt, match="aud:"):
        verify(token, ROSTER)


def test_a_case_is_never_issued_to_a_list_of_audiences() -> None:
    claims = {"kind": "case", "narrative": "x",
              **{name: 1 if name == "version" else "h" for name in HEADER_CLAIMS
                 if name != "kind"}}
    decision = grant(header=claims, audience="org-kenya", fields=frozenset({"narrative"}))
    assert issue_case(claims, {"narrative"}, audience="org-kenya", consent=decision)
    with pytest.raises(ConsentRequired, match="one audience at a time"):
        issue_case(claims, {"narrative"}, audience=["org-kenya"], consent=decision)


MINGA_HEADER = {"typ": MINGA_SD_JWT_TYP, "kid": KID}


def crafted(
    payload: dict[str, Any],
    disclosures: list[str],
    header: dict[str, Any] | None = None,
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey = SIGNING_KEY,
) -> str:
    """A token signed by the trusted key but built by hand, as a faulty issuer might."""
    body = {"iss": ISSUER, "iat": IAT, "_sd_alg": "sha-256", **payload}
    return join_compact(sign_jws(header or MINGA_HEADER, body, key), disclosures)


def raw_disclosure(content: Any) -> tuple[str, str]:
    import hashlib

    encoded = b64u_encode(json.dumps(content).encode("utf-8"))
    return encoded, b64u_encode(hashlib.sha256(encoded.encode("ascii")).digest())


def test_array_element_disclosures_verify() -> None:
    element = array_element_disclosure("salt", {"name": "a"})
    token = crafted({"victims": [{"...": element.digest}, "open"]}, [element.encoded])
    assert verify(token, ROSTER).claims["victims"] == [{"name": "a"}, "open"]
    assert (
        verify(crafted({"victims": [{"...": element.digest}]}, []), ROSTER).claims["victims"] == []
    )


def test_a_disclosed_claim_colliding_with_a_clear_one_is_rejected() -> None:
    disclosure = object_disclosure("salt", "name", "Secret Person")
    token = crafted({"name": "public", SD: [disclosure.digest]}, [disclosure.encoded])
    with pytest.raises(ClaimCollision) as rejected:
        verify(token, ROSTER)
    assert "Secret Person" not in str(rejected.value)


def test_two_disclosures_of_one_name_at_one_level_collide() -> None:
    first = object_disclosure("salt1", "name", "a")
    second = object_disclosure("salt2", "name", "b")
    token = crafted({SD: [first.digest, second.digest]}, [first.encoded, second.encoded])
    with pytest.raises(ClaimCollision):
        verify(token, ROSTER)


@pytest.mark.parametrize(
    "content",
    [
        ["salt", "_sd", ["x"]],
        ["salt", "...", "x"],
        ["salt", "name"],
        ["salt", "name", "value", "extra"],
        {"salt": "s", "name": "n"},
        [1, "name", "value"],
        ["salt", 5, "value"],
    ],
)
def test_malformed_disclosures_are_rejected(content: Any) -> None:
    encoded, digest = raw_disclosure(content)
    with pytest.raises(InvalidDisclosure):
        verify(crafted({SD: [digest]}, [encoded]), ROSTER)


def test_non_json_disclosure_is_rejected() -> None:
    import hashlib

    encoded = b64u_encode(b"\xff not json")
    digest = b64u_encode(hashlib.sha256(encoded.encode("ascii")).digest())
    with pytest.raises(InvalidDisclosure):
        verify(crafted({SD: [digest]}, [encoded]), ROSTER)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (b'["salt", "name", "a"]', True),
        (b' \n["salt", "name", "a"]\t ', True),  # RFC 8259 allows whitespace around a value
        (b'["salt", "name", "a"]x', False),
        (b'["salt", "name", "a"] ["x"]', False),
        (b"  ", False),
        (b"", False),
    ],
)
def test_a_disclosure_is_exactly_one_json_value(text: bytes, accepted: bool) -> None:
    import hashlib

    encoded = b64u_encode(text)
    token = crafted({SD: [b64u_encode(hashlib.sha256(encoded.encode("ascii")).digest())]}, [])
    token += f"{encoded}~"
    if accepted:
        assert verify(token, ROSTER).claims["name"] == "a"
    else:
        with pytest.raises((InvalidDisclosure, MalformedSdJwt)):
            verify(token, ROSTER)


def test_duplicate_digests_are_rejected_even_across_levels() -> None:
    disclosure = object_disclosure("salt", "name", "a")
    payload = {SD: [disclosure.digest], "victims": [{SD: [disclosure.digest]}]}
    with pytest.raises(DuplicateDigest):
        verify(crafted(payload, [disclosure.encoded]), ROSTER)


def test_a_disclosure_matching_no_digest_is_rejected() -> None:
    disclosure = object_disclosure("salt", "name", "a")
    with pytest.raises(UnreferencedDisclosure):
        verify(crafted({SD: []}, [disclosure.encoded]), ROSTER)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({"typ": "other+sd-jwt", "kid": KID}, UnexpectedTokenType),
        ({"kid": KID}, UnexpectedTokenType),
        ({"typ": MINGA_SD_JWT_TYP}, IssuerKeyNotTrusted),
        ({"typ": MINGA_SD_JWT_TYP, "kid": KID, "crit": ["exp"]}, MalformedSdJwt),
    ],
)
def test_headers_are_checked(header: dict[str, Any], error: type[SdJwtError]) -> None:
    with pytest.raises(error):
        verify(crafted({}, [], header=header), ROSTER)


def test_only_eddsa_is_accepted_for_minga_records() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    roster = Roster({(ISSUER, KID): p256.public_key()})
    with pytest.raises(UnsupportedAlgorithm):
        verify(crafted({}, [], key=p256), roster)


def test_unsigned_tokens_are_rejected() -> None:
    token = crafted({}, [])
    header = b64u_encode(json.dumps({"alg": "none", **MINGA_HEADER}).encode())
    unsigned = header + token[token.index(".") :]
    with pytest.raises(UnsupportedAlgorithm):
        verify(unsigned, ROSTER)


@pytest.mark.parametrize(
    "payload",
    [
        {"_sd_alg": "sha-512"},
        {"iss": 5},
        {"iat": "yesterday"},
        {"iat": True},
        {SD: "not a list"},
        {SD: [5]},
        {"victims": [{"...": "digest", "extra": 1}]},
    ],
)
def test_malformed_payloads_are_rejected(payload: dict[str, Any]) -> None:
    with pytest.raises(SdJwtError):
        verify(crafted(payload, []), ROSTER)


def hand_signed(payload_text: bytes) -> str:
    header = b64u_encode(json.dumps({"alg": "EdDSA", **MINGA_HEADER}).encode())
    body = b64u_encode(payload_text)
    signature = b64u_encode(SIGNING_KEY.sign(f"{header}.{body}".encode()))
    return f"{header}.{body}.{signature}~"


@pytest.mark.parametrize(
    "payload_text",
    [
        b'{"iss": "org-colombia", "iat": 1760000000, "score": 1.5}',
        b'{"iss": "org-colombia", "iat": 1760000000, "n": NaN}',
        b'{"iss": "org-colombia", "iss": "org-kenya", "iat": 1760000000}',
        b'{"iss": "org-colombia", "iat": 1760000000} trailing',
        b'["not", "an", "object"]',
    ],
)
def test_non_minga_json_is_rejected(payload_text: bytes) -> None:
    with pytest.raises(MalformedSdJwt):
        verify(hand_signed(payload_text), ROSTER)


def test_hand_signed_minimal_token_verifies() -> None:
    token = hand_signed(b'{"iss": "org-colombia", "iat": 1760000000}')
    assert verify(token, ROSTER).claims == {"iss": ISSUER, "iat": IAT}
