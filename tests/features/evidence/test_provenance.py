"""Recognising provenance manifests an original carries (node.features.evidence.provenance),
checking C2PA ones with the C2PA library on ingest (decision 0031), and the evidence page, the
API and the custody log saying so."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.core.store import Role
from node.features.evidence.provenance import Manifest, find_manifest
from tests.features.evidence.attaching import attach_and_read_checks
from tests.features.evidence.c2pa_signing import SIGNER_NAME, altered, signed_jpeg
from tests.features.evidence.samples import jpeg_with_gps
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.offline_node import make_offline_node
from tests.support.web import serve_web

# A minimal C2PA manifest store as a JUMBF superbox: 'jumb' holding a 'jumd' description box
# whose label is "c2pa" (the structure, not a signed manifest).
_JUMD = b"jumd" + bytes.fromhex("6332706100110010800000aa00389b71") + b"\x03c2pa\x00"
_JUMBF = struct.pack(">I", 8 + 8 + len(_JUMD)) + b"jumb" + struct.pack(">I", 8 + len(_JUMD)) \
    + _JUMD


def jpeg_with_c2pa() -> bytes:
    photo = jpeg_with_gps()
    payload = b"JP" + b"\x00\x01" + b"\x00\x00\x00\x01" + _JUMBF
    app11 = b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload
    return photo[:2] + app11 + photo[2:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


def png(*, c2pa: bool) -> bytes:
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    extra = _png_chunk(b"caBX", _JUMBF) if c2pa else b""
    pixels = _png_chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + header + extra + pixels + _png_chunk(b"IEND", b"")


def proofmode_bundle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("IMG_1.jpg.proof.json", '{"Location.Latitude": ""}')
        archive.writestr("IMG_1.jpg.asc", "-----BEGIN PGP SIGNATURE-----")
        archive.writestr("pubkey.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
    return path


def test_c2pa_is_recognised_in_jpeg_and_png_and_nowhere_else() -> None:
    assert find_manifest(jpeg_with_c2pa(), "image/jpeg") is Manifest.C2PA
    assert find_manifest(jpeg_with_gps(), "image/jpeg") is Manifest.NONE
    assert find_manifest(png(c2pa=True), "image/png") is Manifest.C2PA
    assert find_manifest(png(c2pa=False), "image/png") is Manifest.NONE
    assert find_manifest(b"c2pa jumb " * 10, "text/plain") is Manifest.NONE
    assert find_manifest(b"\xff\xd8\xff", "image/jpeg") is Manifest.NONE  # cut short


def test_a_proofmode_bundle_is_recognised(tmp_path: Path) -> None:
    bundle = proofmode_bundle(tmp_path / "proof.zip")
    assert find_manifest(bundle.read_bytes()[:100], "application/zip",
                         zip_path=bundle) is Manifest.PROOFMODE
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("notes.txt", "x")
    assert find_manifest(b"PK", "application/zip", zip_path=plain) is Manifest.NONE


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        yield running


async def _attach(api: RunningApi, content: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return await attach_and_read_checks(api, content, "foto.jpg", "image/jpeg", "c2pa-check")


async def test_an_attached_original_with_c2pa_keeps_it_and_says_so(api: RunningApi) -> None:
    made = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
    form = aiohttp.FormData()
    content = jpeg_with_c2pa()
    form.add_field("files", content, filename="foto.jpg", content_type="image/jpeg")
    answer = await api.json("POST", f"/cases/{made['record_id']}/attachments", data=form,
                            expect=201)
    item = answer["items"][0]
    assert item["manifest"] == "c2pa"
    original = await api.call("GET", f"/attachments/{item['attachment_id']}/file?copy=original",
                              Role.editor)
    assert await original.read() == content  # the manifest is kept with the original
    listed = await api.json("GET", f"/cases/{made['record_id']}/attachments", Role.viewer)
    assert listed["items"][0]["manifest"] == "c2pa"


async def test_the_evidence_page_says_the_original_carries_content_credentials(
    tmp_path: Path,
) -> None:
    async with serve_web(await make_offline_node(tmp_path / "web")) as site:
        browser = await site.logged_in("beatriz")
        async with site.node.store.transaction() as tx:
            token = await tx.tokens.create("beatriz", Role.editor)
        headers = {"Authorization": f"Bearer {token}"}
        async with browser.session.post(site.base + "/api/v1/cases", headers=headers,
                                        json=SAMPLE_CASES["cauca"]) as answer:
            record_id = (await answer.json())["record_id"]
        form = aiohttp.FormData()
        form.add_field("files", jpeg_with_c2pa(), filename="foto.jpg",
                       content_type="image/jpeg")
        async with browser.session.post(site.base + f"/api/v1/cases/{record_id}/attachments",
                                        headers=headers, data=form) as answer:
            assert answer.status == 201
        page = await browser.get(f"/cases/{record_id}/evidence")
        assert "The original carries C2PA content credentials" in page.text


async def test_a_signed_jpeg_is_checked_valid_with_its_signer_not_on_a_trust_list(
    api: RunningApi,
) -> None:
    item, checks = await _attach(api, signed_jpeg())
    assert item["manifest"] == "c2pa"
    credentials = item["content_credentials"]
    assert credentials["verdict"] == "valid"
    assert credentials["signer_trusted"] is False
    assert credentials["problems"] == []
    assert credentials["codes"] == ["signingCredential.untrusted"]
    assert credentials["signer"] == SIGNER_NAME
    assert credentials["claim_generator"] == "minga-tests 1"
    assert len(checks) == 1  # the check is in the signed custody log, once
    assert checks[0]["details"]["verdict"] == "valid"
    assert checks[0]["details"]["signer"] == SIGNER_NAME


async def test_a_signed_jpeg_changed_after_signing_is_invalid_because_altered(
    api: RunningApi,
) -> None:
    item, checks = await _attach(api, altered(signed_jpeg()))
    credentials = item["content_credentials"]
    assert credentials["verdict"] == "invalid"
    assert credentials["problems"] == ["altered"]
    assert "assertion.dataHash.mismatch" in credentials["codes"]
    assert [check["details"]["verdict"] for check in checks] == ["invalid"]
    assert checks[0]["details"]["problems"] == ["altered"]


async def test_a_jpeg_without_a_manifest_has_none_and_no_check_entry(api: RunningApi) -> None:
    item, checks = await _attach(api, jpeg_with_gps())
    assert item["manifest"] == ""
    assert item["content_credentials"]["verdict"] == "none"
    assert checks == []


async def test_the_evidence_page_shows_the_check_in_english_and_spanish(tmp_path: Path) -> None:
    async with serve_web(await make_offline_node(tmp_path / "web")) as site:
        browser = await site.logged_in("beatriz")
        async with site.node.store.transaction() as tx:
            token = await tx.tokens.create("beatriz", Role.editor)
        headers = {"Authorization": f"Bearer {token}"}
        async with browser.session.post(site.base + "/api/v1/cases", headers=headers,
                                        json=SAMPLE_CASES["cauca"]) as answer:
            record_id = (await answer.json())["record_id"]
        for content in (signed_jpeg(), altered(signed_jpeg())):
            form = aiohttp.FormData()
            form.add_field("files", content, filename="foto.jpg", content_type="image/jpeg")
            async with browser.session.post(
                    site.base + f"/api/v1/cases/{record_id}/attachments", headers=headers,
                    data=form) as answer:
                assert answer.status == 201
        page = await browser.get(f"/cases/{record_id}/evidence")
        assert "and they verify: the file has not changed since it was signed" in page.text
        assert "The signer is not on any trust list this node knows" in page.text
        assert "that do not verify" in page.text
        assert "the file was changed after it was signed" in page.text
        assert f"Signed by {SIGNER_NAME}" in page.text
        assert "assertion.dataHash.mismatch" in page.text
        await browser.post("/language", {"language": "es", "next": "/"})
        spanish = await browser.get(f"/cases/{record_id}/evidence")
        assert "y se verifican: el archivo no ha cambiado desde que se firmó" in spanish.text
        assert "el archivo se modificó después de firmarse" in spanish.text
