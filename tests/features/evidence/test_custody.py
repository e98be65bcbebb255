"""The custody log: a pinned signed entry, and every edit, removal or reordering found."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.identity import org_id_for, signing_kid
from node.features.evidence.custody import (
    Action,
    LogHead,
    entry_hash,
    head_after,
    sign_entry,
    verify_log,
)

SIGNING = Ed25519PrivateKey.from_private_bytes(bytes(32))
ORG = org_id_for(SIGNING.public_key())
KEYS = {signing_kid(SIGNING.public_key()): SIGNING.public_key()}
SHA = hashlib.sha256(b"Minga evidence vector\n").hexdigest()


def _log(actions: list[Action]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for offset, action in enumerate(actions):
        entries.append(sign_entry(SIGNING, ORG, head_after(entries), attachment="a1",
                                  at=1767225600 + offset, action=action, sha256=SHA,
                                  details={"copy": "original"}))
    return entries


LOG = _log([Action.INGEST, Action.WORKING_COPY, Action.VIEW, Action.DOWNLOAD, Action.EXPORT])


def test_the_first_entry_is_pinned() -> None:
    entry = sign_entry(SIGNING, ORG, LogHead(), attachment="a1", at=1767225600,
                       action=Action.INGEST, sha256=SHA, details={"size": 22})
    assert entry["kid"] == "g9pRxEMF4O-9ZUBs"
    assert entry["signature"] == ("zvJH9zjqRF2jUukOZ1CtNboj7_E11mMkOoHhT3cEpZMIvVhmUPYrK-uDaQ6zaa"
                                  "RYnTcH11CFQEcUGvHCbVUlDQ")
    assert entry_hash(entry) == "amiae6g8pdssxljI2c7J0rIB384viLmhqfWSBrCk_ms"


def test_a_whole_log_verifies_and_gives_its_head() -> None:
    report = verify_log(LOG, KEYS, attachment="a1", sha256=SHA)
    assert report.ok, report.problems
    assert report.head == LogHead(5, entry_hash(LOG[-1]))
    assert report.entries[0].action is Action.INGEST


def test_an_edited_entry_is_found() -> None:
    edited = [dict(e) for e in LOG]
    edited[2]["at"] += 3600
    problems = verify_log(edited, KEYS).problems
    assert any(p.startswith("entry 3: the signature does not verify") for p in problems)
    assert any(p.startswith("entry 4: does not follow") for p in problems)


def test_an_edit_re_signed_with_another_key_is_found() -> None:
    forger = Ed25519PrivateKey.generate()
    forged = sign_entry(forger, ORG, head_after(LOG[:2]), attachment="a1", at=1767225602,
                        action=Action.VIEW, sha256=SHA)
    problems = verify_log([*LOG[:2], forged, *LOG[3:]], KEYS).problems
    assert "entry 3: signed with a key that is not the issuer's" in problems


def test_a_removed_entry_is_found() -> None:
    problems = verify_log([*LOG[:2], *LOG[3:]], KEYS).problems
    assert any(p.startswith("entry 3: numbered 4, expected 3") for p in problems)
    assert any(p.startswith("entry 3: does not follow") for p in problems)


def test_reordered_entries_are_found() -> None:
    problems = verify_log([LOG[0], LOG[2], LOG[1], *LOG[3:]], KEYS).problems
    assert {p.split(":")[0] for p in problems} >= {"entry 2", "entry 3", "entry 4"}


def test_a_log_that_does_not_begin_with_the_ingest_or_is_about_another_file() -> None:
    assert "the log is empty" in verify_log([], KEYS).problems
    other = verify_log(LOG, KEYS, sha256=hashlib.sha256(b"other").hexdigest()).problems
    assert len([p for p in other if "another original" in p]) == 5
    assert "entry 1: the log does not begin with the file's ingest" in verify_log(
        _log([Action.VIEW]), KEYS).problems


@pytest.mark.parametrize("junk", [None, [], {"type": "minga.custody/1"}, {**LOG[0], "seq": 1.5}])
def test_a_malformed_entry_is_reported_not_raised(junk: Any) -> None:
    problems = verify_log([junk, *LOG[1:]], KEYS).problems
    assert problems[0].startswith("entry 1: malformed")
