"""The verdict on C2PA content credentials (node.features.evidence.credentials, pure) from the
C2PA library's reports, recorded from real signed files (data/c2pa-report-*.json: a JPEG signed
by tests/features/evidence/c2pa_signing.py, and the same JPEG with a byte changed after signing),
and the adapter reading real files (node.features.evidence.c2pa_check)."""

from __future__ import annotations

import json
from pathlib import Path

from node.features.evidence.c2pa_check import read_credentials
from node.features.evidence.credentials import Credentials, Problem, Verdict, from_report
from tests.features.evidence.c2pa_signing import (
    GENERATOR,
    ORGANISATION,
    SIGNER_NAME,
    altered,
    signed_jpeg,
)
from tests.features.evidence.samples import DATA, jpeg_with_gps


def report(name: str) -> str:
    return (DATA / f"c2pa-report-{name}.json").read_text()


def test_a_valid_manifest_from_an_untrusted_signer_is_valid_not_trusted() -> None:
    found = from_report(report("valid"))
    assert found.verdict is Verdict.VALID
    assert not found.signer_trusted
    assert found.problems == ()
    assert found.codes == ("signingCredential.untrusted",)
    assert (found.signer, found.issuer) == ("Minga test signer", "Minga tests")
    assert found.claim_generator == "minga-tests 1"


def test_a_file_changed_after_signing_is_invalid_and_says_altered() -> None:
    found = from_report(report("altered"))
    assert found.verdict is Verdict.INVALID
    assert found.problems == (Problem.ALTERED,)
    assert "assertion.dataHash.mismatch" in found.codes
    assert not found.signer_trusted


def test_a_trusted_signer_and_the_failure_groups() -> None:
    data = json.loads(report("valid"))
    data["validation_state"] = "Trusted"
    data["validation_status"] = []
    assert from_report(json.dumps(data)).signer_trusted
    data["validation_state"] = "Invalid"
    data["validation_status"] = [{"code": "claimSignature.mismatch"},
                                 {"code": "signingCredential.expired"},
                                 {"code": "signingCredential.revoked"},
                                 {"code": "assertion.bmffHash.mismatch"},
                                 {"code": "something.new"}]
    found = from_report(json.dumps(data))
    assert found.verdict is Verdict.INVALID
    assert found.problems == (Problem.SIGNATURE, Problem.EXPIRED, Problem.REVOKED,
                              Problem.ALTERED, Problem.OTHER)


def test_without_a_state_the_failures_decide() -> None:
    data = json.loads(report("altered"))
    del data["validation_state"]
    assert from_report(json.dumps(data)).verdict is Verdict.INVALID
    data = json.loads(report("valid"))
    del data["validation_state"]
    found = from_report(json.dumps(data))
    assert found.verdict is Verdict.VALID and not found.signer_trusted


def test_a_report_that_is_not_one_is_unreadable_and_the_wire_form_round_trips() -> None:
    assert from_report("not json").verdict is Verdict.UNREADABLE
    assert from_report("[1]").verdict is Verdict.UNREADABLE
    no_manifest = from_report(json.dumps({"validation_status": [{"code": "x.y"}]}))
    assert no_manifest.verdict is Verdict.INVALID
    found = from_report(report("altered"))
    assert Credentials.from_wire(json.loads(json.dumps(found.wire()))) == found


def test_the_library_reads_real_files(tmp_path: Path) -> None:
    signed = tmp_path / "signed.jpg"
    signed.write_bytes(signed_jpeg())
    found = read_credentials(signed, "image/jpeg", recognised=True)
    assert found is not None and found.verdict is Verdict.VALID and not found.signer_trusted
    assert (found.signer, found.issuer, found.claim_generator) == (
        SIGNER_NAME, ORGANISATION, f"{GENERATOR} 1")
    changed = tmp_path / "changed.jpg"
    changed.write_bytes(altered(signed.read_bytes()))
    found = read_credentials(changed, "image/jpeg", recognised=True)
    assert found is not None and found.verdict is Verdict.INVALID
    assert found.problems == (Problem.ALTERED,)
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_with_gps())
    assert read_credentials(plain, "image/jpeg", recognised=False) == Credentials(Verdict.NONE)
    assert read_credentials(plain, "text/plain", recognised=False) is None
