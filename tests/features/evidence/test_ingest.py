"""Attaching files over the API on an offline node: stored sealed, typed by content, cleaned
by mat2, logged, downloadable, exported as a package that verifies with nothing else."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.core.store import Role
from node.features.evidence.package import verify_package
from node.features.evidence.service import clean_name
from tests.features.evidence.samples import (
    AUTHOR,
    GPS_MARKER,
    jpeg_with_gps,
    office_document,
    pdf_with_author,
)
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.offline_node import make_offline_node


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        yield running


async def _case(api: RunningApi) -> str:
    created = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
    return str(created["record_id"])


def _form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, content in files:
        form.add_field("files", content, filename=name,
                       content_type="application/octet-stream")
    return form


async def _attach(api: RunningApi, record_id: str, name: str, content: bytes) -> dict[str, Any]:
    answer = await api.json("POST", f"/cases/{record_id}/attachments", data=_form(
        (name, content)), expect=201)
    item: dict[str, Any] = answer["items"][0]
    return item


async def _download(api: RunningApi, attachment_id: str, copy: str,
                    role: Role = Role.editor) -> bytes:
    answer = await api.call("GET", f"/attachments/{attachment_id}/file?copy={copy}", role)
    assert answer.status == 200, await answer.text()
    return await answer.read()


def _sealed_files(api: RunningApi) -> list[Path]:
    return sorted((api.node.config.node.data_dir / "evidence").glob("*.*"))


async def test_a_jpeg_with_gps_keeps_its_original_and_gets_a_clean_working_copy(
        api: RunningApi) -> None:
    record_id = await _case(api)
    photo = jpeg_with_gps()
    item = await _attach(api, record_id, "IMG_0001.txt", photo)  # the name lies; content rules
    assert item["name"] == "IMG_0001.txt"
    assert item["media_type"] == "image/jpeg"
    assert item["sha256"] == hashlib.sha256(photo).hexdigest()
    assert item["size"] == len(photo)
    removed = item["working_copy"]["removed"]
    assert {"GPSLatitude", "GPSLongitude", "SerialNumber", "Make", "Model"} <= set(removed)

    assert await _download(api, item["attachment_id"], "original") == photo
    working = await _download(api, item["attachment_id"], "working", Role.viewer)
    assert working[:3] == b"\xff\xd8\xff"
    assert GPS_MARKER.encode() not in working and b"SN-4455667788" not in working
    assert b"GPS" not in working

    for path in _sealed_files(api):  # at rest: neither the picture nor its metadata
        stored = path.read_bytes()
        assert GPS_MARKER.encode() not in stored and photo[:64] not in stored


async def test_a_viewer_gets_the_working_copy_but_not_the_original(api: RunningApi) -> None:
    item = await _attach(api, await _case(api), "photo.jpg", jpeg_with_gps())
    answer = await api.call("GET", f"/attachments/{item['attachment_id']}/file?copy=original",
                            Role.viewer)
    assert answer.status == 403


async def test_a_pdf_and_an_office_document_lose_their_author(api: RunningApi) -> None:
    record_id = await _case(api)
    for name, content in (("acta.pdf", pdf_with_author()), ("acta.docx", office_document())):
        item = await _attach(api, record_id, name, content)
        assert item["working_copy"]["made"], item
        assert any("author" in f or "creator" in f for f in item["working_copy"]["removed"])
        working = await _download(api, item["attachment_id"], "working")
        assert AUTHOR.encode() not in working
        if name.endswith(".docx"):
            with zipfile.ZipFile(io.BytesIO(working)) as cleaned:
                assert all(AUTHOR.encode() not in cleaned.read(n) for n in cleaned.namelist())
        assert await _download(api, item["attachment_id"], "original") == content


async def test_every_access_is_in_the_signed_custody_log(api: RunningApi) -> None:
    item = await _attach(api, await _case(api), "photo.jpg", jpeg_with_gps())
    await _download(api, item["attachment_id"], "working")
    detail = await api.json("GET", f"/attachments/{item['attachment_id']}", Role.viewer)
    assert [e["action"] for e in detail["custody"]] == ["ingest", "working-copy", "download"]
    assert detail["custody"][2]["details"]["copy"] == "working"
    assert "beatriz" not in json.dumps(detail["custody"])  # staff are not named in the log


async def test_the_evidence_package_verifies_with_only_the_package(api: RunningApi,
                                                                   tmp_path: Path) -> None:
    photo = jpeg_with_gps()
    item = await _attach(api, await _case(api), "photo.jpg", photo)
    answer = await api.call("GET", f"/attachments/{item['attachment_id']}/package")
    assert answer.status == 200
    package = tmp_path / "package.zip"
    package.write_bytes(await answer.read())
    report = verify_package(package)
    assert report.ok, report.problems
    assert report.org_id == api.node.org_id
    assert [e["action"] for e in report.entries] == ["ingest", "working-copy", "export"]
    with zipfile.ZipFile(package) as archive:
        assert archive.read("original/photo.jpg") == photo
        assert {"VERIFY-en.txt", "VERIFICAR-es.txt", "original.sha256"} <= set(
            archive.namelist())


def _rewrite(package: Path, out: Path, change: dict[str, bytes]) -> None:
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, change.get(name, source.read(name)))


async def test_a_changed_file_or_a_log_cut_short_does_not_verify(api: RunningApi,
                                                                 tmp_path: Path) -> None:
    item = await _attach(api, await _case(api), "photo.jpg", jpeg_with_gps())
    package = tmp_path / "package.zip"
    answer = await api.call("GET", f"/attachments/{item['attachment_id']}/package")
    package.write_bytes(await answer.read())
    with zipfile.ZipFile(package) as archive:
        log = json.loads(archive.read("custody-log.json"))
    altered = tmp_path / "altered.zip"
    _rewrite(package, altered, {"original/photo.jpg": jpeg_with_gps() + b"\x00"})
    assert any("changed" in p for p in verify_package(altered).problems)
    cut = tmp_path / "cut.zip"
    _rewrite(package, cut, {"custody-log.json": json.dumps(log[:-1]).encode()})
    assert any("not the log the issuer signed" in p for p in verify_package(cut).problems)


async def test_bad_uploads_are_refused_with_a_clear_answer(api: RunningApi) -> None:
    record_id = await _case(api)
    not_form = await api.json("POST", f"/cases/{record_id}/attachments", json={"a": 1},
                              expect=415)
    assert not_form["error"]["code"] == "not_multipart"
    missing = await api.json("POST", "/cases/0190a5d2-0000-7000-8000-000000000000/attachments",
                             data=_form(("a.txt", b"hello")), expect=404)
    assert missing["error"]["code"] == "not_found"
    assert _sealed_files(api) == []


def test_a_file_name_is_only_ever_a_name() -> None:
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\x\\foto\x00.jpg") == "foto.jpg"
    assert clean_name("") == clean_name(None) == "file"
