"""Coverage-guided fuzz targets for every parser that reads what a peer or a homeserver sends:
sealed envelopes, event frames and bundles, SD-JWT presentations, roster entries and key
statements.

Each target starts from real, valid inputs (its seeds) and takes the bytes the fuzzer mutates
as the JSON (or text) the parser reads. A parser may refuse an input with its documented error;
any other exception is a finding. The targets are pure: no network, no store.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.consent import Recipient, disclose_case
from federation.disclosure import verify
from federation.identity import (
    IdentityError,
    KeyRing,
    OrgKeys,
    cosign_revocation,
    revocation_request,
    rotate_keys,
    sign_member_entry,
    sign_revocation,
    verify_member_entry,
    verify_rotation,
)
from federation.sdjwt import SdJwtError
from federation.sealing import SealingError, open_verified, parse_envelope, seal, verify_envelope
from schemas.case import Case
from schemas.records import CaseRecord, build_record
from sync.frame import (
    FrameError,
    blob_content,
    bundle,
    chain_context,
    envelope_from_blob,
    inline_content,
    parse_content,
    read_chain_context,
    read_resend_request,
    resend_request_content,
    unbundle,
)

T0 = 1_717_000_000
SENDER, RECIPIENT, WITNESS = OrgKeys.generate(), OrgKeys.generate(), OrgKeys.generate()
PROFILE = {"name": "Colectivo de prueba", "country": "CO"}
CASE = Case.model_validate({
    "title": "Amenazas", "narrative": "Panfletos.", "incident_date": "2024-03-02",
    "country": "CO", "violations": ["death_threat"], "consent_level": "coalition",
    "risk_level": "high", "victims": [{"kind": "individual", "name": "Ana Pérez",
                                       "groups": ["woman_hrd"]}],
})


def _ring() -> KeyRing:
    ring = KeyRing()
    for keys in (SENDER, RECIPIENT, WITNESS):
        ring.add_member_entry(sign_member_entry(keys, PROFILE))
    return ring


def _json(data: bytes) -> Any:
    """The input as JSON, or ``None`` when it is not JSON at all (nothing to parse further)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes], None]
    expected: tuple[type[Exception], ...]

    def one(self, data: bytes) -> None:
        """Run the parser on ``data``; only its documented refusals are caught."""
        with contextlib.suppress(*self.expected):
            self.run(data)


# --- sealed envelopes --------------------------------------------------------------------------

def _envelope_seeds() -> list[bytes]:
    sealed = seal(b'{"type": "minga.bundle/1", "records": ["x"]}', SENDER,
                  [RECIPIENT.recipient_key()], T0, context=chain_context("!r:hs", 1, ""))
    return [json.dumps(sealed.model_dump(mode="json")).encode()]


def _envelope(data: bytes) -> None:
    wire = _json(data)
    if wire is None:
        return
    sealed = parse_envelope(wire)
    with contextlib.suppress(SealingError):
        verify_envelope(sealed, RING)
    open_verified(sealed, RECIPIENT)  # what runs once the signature checked out


# --- event frames and bundles ------------------------------------------------------------------

def _frame_seeds() -> list[bytes]:
    envelope = json.loads(_envelope_seeds()[0])
    return [json.dumps(inline_content(envelope)).encode(),
            json.dumps(blob_content("mxc://hs/abc", b"{}")).encode(),
            json.dumps(resend_request_content(SENDER.org_id, [(1, 5), (9, 9)])).encode(),
            json.dumps({"room": "!r:hs", "seq": 3, "prev": "abc"}).encode(),
            bundle(["a.b.c~", "d.e.f~"])]


def _frame(data: bytes) -> None:
    content = _json(data)
    if isinstance(content, Mapping):
        for read in (parse_content, read_chain_context, read_resend_request):
            with contextlib.suppress(FrameError):
                read(content)
        found = parse_content(content)
        if not isinstance(found, dict):
            envelope_from_blob(found, data)
    unbundle(data)


# --- SD-JWT presentations ----------------------------------------------------------------------

def _sdjwt_seeds() -> list[bytes]:
    record = build_record(SENDER.org_id, CASE, record_id="0190a5c4-0000-7000-8000-0000000000aa",
                          issued_at=T0)
    assert isinstance(record, CaseRecord)
    token = disclose_case(record, ["country", "violations", "victims.name"],
                          Recipient.member(RECIPIENT.org_id), signing_key=SENDER.signing,
                          kid=SENDER.signing_kid, issued_at=T0)
    return [token.encode()]


def _sdjwt(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    verify(text, RING, expected_audience=RECIPIENT.org_id)


# --- roster entries and key statements ---------------------------------------------------------

def _entry_seeds() -> list[bytes]:
    return [json.dumps(sign_member_entry(keys, PROFILE)).encode()
            for keys in (SENDER, RECIPIENT)]


def _entry(data: bytes) -> None:
    entry = _json(data)
    if not isinstance(entry, Mapping):
        return
    with contextlib.suppress(IdentityError):
        verify_member_entry(entry)
    KeyRing().add_member_entry(entry)


def _statement_seeds() -> list[bytes]:
    _, rotation = rotate_keys(SENDER, T0 + 10)
    request = revocation_request(SENDER.org_id, [SENDER.signing_kid], T0 + 20, T0 + 30)
    by_key = sign_revocation(request, SENDER.revocation_key())
    by_quorum = cosign_revocation(cosign_revocation(request, RECIPIENT), WITNESS)
    return [json.dumps(statement).encode() for statement in (rotation, by_key, by_quorum)]


def _statement(data: bytes) -> None:
    statement = _json(data)
    if not isinstance(statement, Mapping):
        return
    with contextlib.suppress(IdentityError):
        verify_rotation(statement)
    ring = _ring()
    with contextlib.suppress(IdentityError):
        ring.apply_rotation(statement)
    ring.apply_revocation(statement)


RING = _ring()
TARGETS: dict[str, Target] = {target.name: target for target in (
    Target("envelope", _envelope_seeds, _envelope, (SealingError,)),
    Target("frame", _frame_seeds, _frame, (FrameError,)),
    Target("sdjwt", _sdjwt_seeds, _sdjwt, (SdJwtError,)),
    Target("entry", _entry_seeds, _entry, (IdentityError,)),
    Target("statement", _statement_seeds, _statement, (IdentityError,)),
)}
