"""Checking ProofMode proof bundles (decision 0031): the pure judgement of the facts
(node.features.evidence.proofmode), the gpg adapter on real bundles signed in the test
(node.features.evidence.proofmode_check), and ingest, the API, the custody log, the evidence
package, the evidence page and ``minga evidence check-c2pa`` saying so."""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.cli import main
from node.core.store import Role
from node.features.evidence.attachments import AttachmentStore
from node.features.evidence.credentials import Problem, Verdict
from node.features.evidence.package import verify_package
from node.features.evidence.proofmode import (
    Item,
    ItemFacts,
    Signature,
    expected_hash,
    judge,
    named_media,
    plan,
)
from node.features.evidence.proofmode_check import check_bundle, status_of
from node.features.evidence.service import check_credentials, unchecked_attachments
from tests.features.evidence.attaching import attach_and_read_checks
from tests.features.evidence.proofmode_signing import Device, bundle, new_device
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.web import serve_web

HASH = "ab" * 32
OTHER = "cd" * 32


def _facts(**change: Any) -> ItemFacts:
    values: dict[str, Any] = {"media_found": True, "expected_sha256": HASH,
                              "actual_sha256": HASH, "media_signature": Signature.GOOD,
                              "proof_signature": Signature.GOOD, "fingerprint": "F" * 40}
    return ItemFacts(**{**values, **change})


# The pure judgement.

def test_matching_hashes_and_good_signatures_are_valid_but_never_trusted() -> None:
    found = judge(has_key=True, items=[_facts(), _facts()])
    assert found.verdict is Verdict.VALID
    assert found.signer_trusted is False
    assert found.signer == "F" * 40
    assert found.claim_generator == "ProofMode"
    assert (found.problems, found.codes) == ((), ())


def test_a_changed_media_file_is_altered_and_a_bad_signature_is_a_signature_problem() -> None:
    altered = judge(has_key=True, items=[_facts(), _facts(actual_sha256=OTHER)])
    assert altered.verdict is Verdict.INVALID
    assert altered.problems == (Problem.ALTERED,)
    assert altered.codes == ("media.hashMismatch",)
    for signature, code in ((Signature.BAD, "proofSignature.bad"),
                            (Signature.UNKNOWN_KEY, "proofSignature.unknownKey")):
        bad = judge(has_key=True, items=[_facts(proof_signature=signature)])
        assert (bad.verdict, bad.problems, bad.codes) == (
            Verdict.INVALID, (Problem.SIGNATURE,), (code,))
    expired = judge(has_key=True, items=[_facts(media_signature=Signature.EXPIRED_KEY)])
    assert expired.problems == (Problem.EXPIRED,)


def test_missing_parts_make_a_bundle_unreadable_with_the_reason() -> None:
    for facts, code in ((_facts(media_found=False, actual_sha256=""), "media.missing"),
                        (_facts(media_signature=Signature.MISSING), "mediaSignature.missing"),
                        (_facts(expected_sha256=""), "proof.hashMissing")):
        found = judge(has_key=True, items=[facts])
        assert (found.verdict, found.problems, found.codes) == (Verdict.UNREADABLE, (), (code,))
    assert judge(has_key=True, items=[]).codes == ("proof.missing",)
    no_key = judge(has_key=False, items=[_facts(media_signature=Signature.UNKNOWN_KEY)])
    assert (no_key.verdict, no_key.codes) == (Verdict.UNREADABLE, ("pubkey.missing",))
    # what failed is named even when something else is missing
    both = judge(has_key=True, items=[_facts(actual_sha256=OTHER,
                                             proof_signature=Signature.MISSING)])
    assert both.verdict is Verdict.INVALID
    assert both.codes == ("media.hashMismatch", "proofSignature.missing")


def test_the_parts_are_paired_by_hash_name_or_by_media_name() -> None:
    android = [f"{HASH}.proof.json", f"{HASH}.proof.json.asc", f"{HASH}.asc",
               f"{HASH}.proof.csv", "IMG_1.jpg", "pubkey.asc", f"{HASH}.ots"]
    assert plan(android, {f"{HASH}.proof.json": "IMG_1.jpg"}) == [
        Item(f"{HASH}.proof.json", "IMG_1.jpg", f"{HASH}.asc", f"{HASH}.proof.json.asc")]
    named = ["IMG_2.jpg", "IMG_2.jpg.asc", "IMG_2.jpg.proof.json", "pubkey.asc"]
    assert plan(named, {}) == [Item("IMG_2.jpg.proof.json", "IMG_2.jpg", "IMG_2.jpg.asc", "")]
    proof = json.dumps({"File Hash SHA256": HASH.upper(),
                        "File Path": "/sdcard/DCIM/IMG_1.jpg"}).encode()
    assert expected_hash(proof, "x.proof.json") == HASH
    assert named_media(proof) == "IMG_1.jpg"
    assert expected_hash(b"not json", f"{OTHER}.proof.json") == OTHER
    assert expected_hash(b"{}", "IMG_2.jpg.proof.json") == ""


def test_gpg_status_lines_are_read_into_a_signature_verdict() -> None:
    good = ["[GNUPG:] NEWSIG", "[GNUPG:] GOODSIG 84EC1AE1EF675116 d <d@x>",
            "[GNUPG:] VALIDSIG AAAA 2026-12-06 0 4 0 22 8 00 " + "F" * 40]
    assert status_of(good) == (Signature.GOOD, "F" * 40)
    assert status_of(["[GNUPG:] BADSIG 84EC1AE1EF675116 d"])[0] is Signature.BAD
    assert status_of(["[GNUPG:] ERRSIG 84EC1AE1EF675116 22 8 00 1 9",
                      "[GNUPG:] NO_PUBKEY 84EC1AE1EF675116"])[0] is Signature.UNKNOWN_KEY
    assert status_of(["[GNUPG:] NODATA 3"])[0] is Signature.BAD
    assert status_of([])[0] is Signature.BAD
    assert status_of(["[GNUPG:] GOODSIG x"])[0] is Signature.BAD  # no VALIDSIG: not good


# The gpg adapter on real bundles.

@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Device, Device]]:
    root = tmp_path_factory.mktemp("gpg")
    device, other = new_device(root, "device"), new_device(root, "other")
    yield device, other
    device.close()
    other.close()


def _check(tmp_path: Path, content: bytes) -> Any:
    path = tmp_path / "bundle.zip"
    path.write_bytes(content)
    return check_bundle(path)


def test_a_signed_bundle_verifies_with_its_own_key(devices: tuple[Device, Device],
                                                   tmp_path: Path) -> None:
    device, _ = devices
    found = _check(tmp_path, bundle(device))
    assert found.verdict is Verdict.VALID
    assert found.signer_trusted is False
    assert found.signer == device.fingerprint()


def test_changed_media_in_the_bundle_is_altered(devices: tuple[Device, Device],
                                                tmp_path: Path) -> None:
    found = _check(tmp_path, bundle(devices[0], change_media=True))
    assert found.verdict is Verdict.INVALID
    assert Problem.ALTERED in found.problems
    assert "media.hashMismatch" in found.codes


def test_a_signature_by_another_key_or_corrupted_is_a_signature_problem(
    devices: tuple[Device, Device], tmp_path: Path,
) -> None:
    device, other = devices
    by_other = _check(tmp_path, bundle(device, signer=other))
    assert (by_other.verdict, by_other.problems) == (Verdict.INVALID, (Problem.SIGNATURE,))
    assert by_other.codes == ("mediaSignature.unknownKey",)
    corrupted = _check(tmp_path, bundle(device, corrupt_signature=True))
    assert (corrupted.verdict, corrupted.problems) == (Verdict.INVALID, (Problem.SIGNATURE,))
    assert corrupted.codes == ("mediaSignature.bad",)


def test_a_bundle_missing_a_part_is_unreadable_with_the_reason(devices: tuple[Device, Device],
                                                               tmp_path: Path) -> None:
    device, _ = devices
    for part, code in (("media-signature", "mediaSignature.missing"),
                       ("proof-signature", "proofSignature.missing"),
                       ("pubkey", "pubkey.missing"), ("media", "media.missing")):
        found = _check(tmp_path, bundle(device, drop=(part,)))
        assert (found.verdict, found.codes) == (Verdict.UNREADABLE, (code,)), part
    assert _check(tmp_path, b"PK\x03\x04 not a zip").codes == ("bundle.unreadable",)


# On ingest, in the API, the custody log, the package and the page.

@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        yield running


async def _attach(api: RunningApi, content: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return await attach_and_read_checks(api, content, "proof.zip", "application/zip",
                                        "proofmode-check")


async def test_an_attached_bundle_is_checked_and_the_check_is_in_the_custody_log(
    api: RunningApi, devices: tuple[Device, Device], tmp_path: Path,
) -> None:
    device, _ = devices
    item, checks = await _attach(api, bundle(device))
    assert item["manifest"] == "proofmode"
    credentials = item["content_credentials"]
    assert credentials["verdict"] == "valid"
    assert credentials["signer_trusted"] is False
    assert credentials["signer"] == device.fingerprint()
    assert [check["details"]["verdict"] for check in checks] == ["valid"]
    assert checks[0]["details"]["tool"] == "gpg"
    answer = await api.call("GET", f"/attachments/{item['attachment_id']}/package")
    package = tmp_path / "package.zip"
    package.write_bytes(await answer.read())
    report = verify_package(package)
    assert report.ok, report.problems
    assert "proofmode-check" in [entry["action"] for entry in report.entries]

    altered, altered_checks = await _attach(api, bundle(device, change_media=True))
    assert altered["content_credentials"]["verdict"] == "invalid"
    assert "altered" in altered["content_credentials"]["problems"]
    assert [check["details"]["verdict"] for check in altered_checks] == ["invalid"]


async def test_a_zip_that_is_no_bundle_has_nothing_to_check(api: RunningApi,
                                                            tmp_path: Path) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("notes.txt", "x")
    item, checks = await _attach(api, plain.read_bytes())
    assert item["manifest"] == ""
    assert item["content_credentials"]["verdict"] == "none"
    assert checks == []


async def test_the_evidence_page_shows_the_bundle_check_in_english_and_spanish(
    tmp_path: Path, devices: tuple[Device, Device],
) -> None:
    device, other = devices
    async with serve_web(await make_offline_node(tmp_path / "web")) as site:
        browser = await site.logged_in("beatriz")
        async with site.node.store.transaction() as tx:
            token = await tx.tokens.create("beatriz", Role.editor)
        headers = {"Authorization": f"Bearer {token}"}
        async with browser.session.post(site.base + "/api/v1/cases", headers=headers,
                                        json=SAMPLE_CASES["cauca"]) as answer:
            record_id = (await answer.json())["record_id"]
        for content in (bundle(device), bundle(device, signer=other)):
            form = aiohttp.FormData()
            form.add_field("files", content, filename="proof.zip",
                           content_type="application/zip")
            async with browser.session.post(
                    site.base + f"/api/v1/cases/{record_id}/attachments", headers=headers,
                    data=form) as answer:
                assert answer.status == 201
        page = await browser.get(f"/cases/{record_id}/evidence")
        assert "This is a ProofMode proof bundle and it verifies" in page.text
        assert "not who held the phone" in page.text
        assert "This is a ProofMode proof bundle that does not verify" in page.text
        assert "a signature does not verify with the bundle" in page.text
        assert device.fingerprint() in page.text
        assert "mediaSignature.unknownKey" in page.text
        await browser.post("/language", {"language": "es", "next": "/"})
        spanish = await browser.get(f"/cases/{record_id}/evidence")
        assert "Es un paquete de pruebas de ProofMode y se verifica" in spanish.text
        assert "una firma no se verifica con la clave del paquete" in spanish.text


async def test_check_c2pa_also_checks_bundles_stored_before(
    api: RunningApi, devices: tuple[Device, Device],
) -> None:
    item, _ = await _attach(api, bundle(devices[0]))
    node = api.node
    async with node.store.transaction() as tx:  # as if stored before bundles were checked
        await AttachmentStore(tx.session, tx.cipher).set_credentials(
            item["attachment_id"], None, "proofmode")
    assert await unchecked_attachments(node) == [item["attachment_id"]]
    checked = await check_credentials(node, item["attachment_id"], actor="test", now=1)
    assert checked.credentials is not None
    assert checked.credentials.verdict is Verdict.VALID
    assert await unchecked_attachments(node) == []
    detail = await api.json("GET", f"/attachments/{item['attachment_id']}", Role.viewer)
    assert [entry["action"] for entry in detail["custody"]].count("proofmode-check") == 2


def test_minga_case_attach_prints_the_bundle_verdict(
    tmp_path: Path, devices: tuple[Device, Device], capsys: pytest.CaptureFixture[str],
) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))

    async def new_case() -> str:
        async with serve_node(config) as api:
            created = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
            return str(created["record_id"])
    with passphrase_in_environment():
        record_id = asyncio.run(new_case())
        path = tmp_path / "proofmode.zip"
        path.write_bytes(bundle(devices[0]))
        assert main(["--config", str(config), "case", "attach", record_id, str(path)]) == 0
        assert "proofmode valid (signer not on a trust list)" in capsys.readouterr().out
        assert main(["--config", str(config), "evidence", "check-c2pa"]) == 0
        assert "checked 0 of 0" in capsys.readouterr().err  # checked on arrival already
