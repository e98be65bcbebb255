"""What a C2PA manifest store says about a file: our verdict from the library's report (pure).

The C2PA library (``c2pa-python``, decision 0031) reads a file's manifest store and validates it:
the claim's signature, the hashes that bind the claim to the file's bytes and the signing
certificate. Its report (``Reader.json()``) lists status codes, each with a C2PA spec code such as
``assertion.dataHash.mismatch``, and an overall ``validation_state`` (``Invalid``, ``Valid``, or
``Trusted`` when the signer chains to a trust list). This module maps that report to the few
things a person needs: is there a manifest, does it verify, what is wrong if not, and who signed
it with what tool and when. A signer not on any trust list (self-signed, or a CA this node was not
told to trust) is *valid, signer not trusted*, not invalid: the file has not been changed since
that signer signed it, but nothing says who the signer is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Verdict(StrEnum):
    NONE = "none"
    """No C2PA manifest store in the file."""
    VALID = "valid"
    """The manifest's signature and hashes verify (``signer_trusted`` says about the signer)."""
    INVALID = "invalid"
    """The manifest is there but does not verify (``problems`` says why)."""
    UNREADABLE = "unreadable"
    """A manifest store is there but the library could not read it at all."""


class Problem(StrEnum):
    """Why a manifest does not verify, grouped from the spec's failure codes."""

    ALTERED = "altered"
    """A hash does not match: the file (or the manifest's parts) changed after signing."""
    SIGNATURE = "signature"
    """The claim's signature does not verify."""
    EXPIRED = "expired"
    """The signing certificate was not valid when the claim was signed."""
    REVOKED = "revoked"
    """The signing certificate was revoked."""
    OTHER = "other"


UNTRUSTED: Final = "signingCredential.untrusted"
_PROBLEMS: Final[dict[str, Problem]] = {
    "claimSignature.mismatch": Problem.SIGNATURE,
    "claimSignature.missing": Problem.SIGNATURE,
    "signingCredential.invalid": Problem.SIGNATURE,
    "signingCredential.expired": Problem.EXPIRED,
    "claimSignature.outsideValidity": Problem.EXPIRED,
    "signingCredential.revoked": Problem.REVOKED,
}
MAX_CODES: Final = 20
MAX_TEXT: Final = 200


def problem_of(code: str) -> Problem:
    if code in _PROBLEMS:
        return _PROBLEMS[code]
    if code.startswith("assertion.") and code.endswith(".mismatch"):
        return Problem.ALTERED  # dataHash, bmffHash, boxesHash, collectionHash, hashedURI
    return Problem.OTHER


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT] if isinstance(value, str | int | float) else ""


@dataclass(frozen=True)
class Credentials:
    """The verdict on a file's C2PA manifest, as stored and shown (no file content)."""

    verdict: Verdict
    signer_trusted: bool = False
    problems: tuple[Problem, ...] = ()
    codes: tuple[str, ...] = ()
    """The library's failure codes, as it gave them (the spec's ``validation_status`` codes)."""
    claim_generator: str = ""
    signer: str = ""
    """The signing certificate's subject common name."""
    issuer: str = ""
    """The organisation the signature information names for the certificate."""
    signed_at: str = ""
    """The signing time from a trusted timestamp, when the manifest carries one (RFC 3339)."""

    def wire(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "signer_trusted": self.signer_trusted,
                "problems": [problem.value for problem in self.problems],
                "codes": list(self.codes), "claim_generator": self.claim_generator,
                "signer": self.signer, "issuer": self.issuer, "signed_at": self.signed_at}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Credentials:
        return cls(verdict=Verdict(data["verdict"]), signer_trusted=bool(data["signer_trusted"]),
                   problems=tuple(Problem(value) for value in data["problems"]),
                   codes=tuple(data["codes"]), claim_generator=data["claim_generator"],
                   signer=data["signer"], issuer=data["issuer"], signed_at=data["signed_at"])


def _generator(manifest: dict[str, Any]) -> str:
    infos = manifest.get("claim_generator_info")
    if isinstance(infos, list) and infos and isinstance(infos[0], dict):
        name, version = _text(infos[0].get("name")), _text(infos[0].get("version"))
        return f"{name} {version}".strip()
    return _text(manifest.get("claim_generator"))


def _failure_codes(report: dict[str, Any]) -> list[str]:
    statuses = report.get("validation_status")
    if not isinstance(statuses, list):
        return []
    codes: list[str] = []
    for status in statuses:
        code = _text(status.get("code")) if isinstance(status, dict) else ""
        if code and code not in codes:
            codes.append(code)
    return codes[:MAX_CODES]


def from_report(report_json: str) -> Credentials:
    """The verdict from the library's ``Reader.json()`` report of the active manifest.

    ``validation_status`` lists the failures (``signingCredential.untrusted`` among them when the
    signer is on no trust list); ``validation_state`` is the library's overall answer, and where
    it is missing the verdict follows from the failures."""
    try:
        report = json.loads(report_json)
    except ValueError:
        return Credentials(Verdict.UNREADABLE)
    if not isinstance(report, dict):
        return Credentials(Verdict.UNREADABLE)
    codes = _failure_codes(report)
    problems = tuple(dict.fromkeys(problem_of(code) for code in codes if code != UNTRUSTED))
    state = report.get("validation_state")
    known = state in ("Valid", "Trusted", "Invalid")
    valid = state != "Invalid" if known else not problems
    manifests = report.get("manifests")
    active = report.get("active_manifest")
    manifest = manifests.get(active) if isinstance(manifests, dict) and active else None
    if not isinstance(manifest, dict):
        return Credentials(Verdict.INVALID, problems=problems or (Problem.OTHER,),
                           codes=tuple(codes))
    signature = manifest.get("signature_info")
    signature = signature if isinstance(signature, dict) else {}
    return Credentials(
        verdict=Verdict.VALID if valid else Verdict.INVALID,
        signer_trusted=valid and (state == "Trusted" or (state is None and UNTRUSTED not in codes)),
        problems=() if valid else (problems or (Problem.OTHER,)), codes=tuple(codes),
        claim_generator=_generator(manifest), signer=_text(signature.get("common_name")),
        issuer=_text(signature.get("issuer")), signed_at=_text(signature.get("time")))
