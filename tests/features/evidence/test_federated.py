"""Evidence files shared between member nodes on two federated homeservers.

A (homeserver 1) shares a case with files with B (homeserver 2), through the sharing API: the
files arrive, check against the signed record and open; the homeservers hold no plaintext of a
text file's marker nor a photo's GPS coordinates; a tampered part is quarantined; a transfer
cut by an outage resumes at the part where it stopped; a retraction removes the files at B;
B countersigns a file's existence for A, and A's evidence package carries it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.homeserver import Federation
from federation.transport import MatrixTransport, TransportError
from node.core.sharing import share_from_node
from node.core.store import Role
from node.features.cases import stored_record
from node.features.evidence.attachments import AttachmentStore
from node.features.evidence.custody import Action, Copy
from node.features.evidence.package import verify_package
from node.features.evidence.received_files import ReceivedFile, ReceivedFiles
from node.features.evidence.receiving import open_received, received_path
from node.features.evidence.sending import upload_copy
from node.features.evidence.transfer import PART_BYTES, Status
from sync.quarantine import list_quarantined
from tests.features.evidence.samples import GPS_MARKER, jpeg_with_gps
from tests.support.api_harness import SAMPLE_CASES, RunningApi
from tests.support.sharing import (
    ORGS,
    eventually,
    files_under,
    form_coalition,
    member_running,
    new_member,
    search,
)

MARKER = "Sntl-evidence-marker-5b"
FIELDS = ["country", "violations", "place"]


def _text_file(size: int, marker: str = MARKER) -> bytes:
    """About ``size`` bytes of text that repeats a marker line (text compresses, so a leak of any
    piece of it would be found)."""
    line = f"{marker} testimonio {os.urandom(8).hex()}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _gps_needles() -> list[bytes]:
    """The photo's GPS latitude as EXIF stores it (three rationals), in either byte order."""
    values = (4, 1, 35, 1, 51, 1)
    needles = [struct.pack("<6I", *values), struct.pack(">6I", *values)]
    assert any(needle in jpeg_with_gps() for needle in needles)
    return needles


@dataclass
class Pair:
    a: RunningApi
    b: RunningApi


@asynccontextmanager
async def pair(federation: Federation, tmp_path: Path) -> AsyncIterator[Pair]:
    configs = [await new_member(home, tmp_path / name, *org)
               for home, name, org in ((federation[0], "a", ORGS[0]),
                                       (federation[1], "b", ORGS[1]))]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(member_running(c)) for c in configs]
        yield Pair(a, b)


async def _case(api: RunningApi) -> str:
    created = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
    return str(created["record_id"])


async def _attach(api: RunningApi, record_id: str, name: str, content: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("files", content, filename=name, content_type="application/octet-stream")
    answer = await api.json("POST", f"/cases/{record_id}/attachments", data=form, expect=201)
    return str(answer["items"][0]["attachment_id"])


async def _files_at(api: RunningApi, issuer: str, record_id: str) -> list[ReceivedFile]:
    async with api.node.store.read() as tx:
        return await ReceivedFiles(tx.session, tx.cipher).of_record(issuer, record_id)


async def _settled(api: RunningApi, issuer: str, record_id: str,
                   count: int) -> list[ReceivedFile]:
    async def done() -> list[ReceivedFile] | None:
        files = await _files_at(api, issuer, record_id)
        settled = [f for f in files if f.status is not Status.PENDING]
        return files if len(files) == count and len(settled) == count else None

    return await eventually(done, timeout=180, what=f"{count} files settled at the recipient")


async def _plaintext(api: RunningApi, received: ReceivedFile) -> bytes:
    out = bytearray()
    async with aclosing(open_received(api.node, received)) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


async def test_files_arrive_verified_open_and_leave_no_plaintext_on_the_homeservers(
    federation: Federation, tmp_path: Path
) -> None:
    text = _text_file(9 * 2**20)  # three parts
    photo = jpeg_with_gps()
    async with pair(federation, tmp_path) as p:
        a_org, b_org = p.a.node.org_id, p.b.node.org_id
        record_id = await _case(p.a)
        text_id = await _attach(p.a, record_id, "testimonio.txt", text)
        photo_id = await _attach(p.a, record_id, "foto.jpg", photo)
        shared = await p.a.json("POST", f"/cases/{record_id}/share", json={
            "recipients": [b_org], "fields": FIELDS,
            "attachments": {b_org: [{"attachment_id": text_id, "copy": "original"},
                                    {"attachment_id": photo_id, "copy": "original"}]}})
        assert shared["recipients"][0]["fields"] == sorted([*FIELDS, "attachments"])

        files = await _settled(p.b, a_org, record_id, 2)
        assert [f.status for f in files] == [Status.STORED, Status.STORED]
        assert await _plaintext(p.b, files[0]) == text
        assert await _plaintext(p.b, files[1]) == photo  # the original, byte for byte
        assert files[0].shared is not None and len(files[0].shared.parts) == 3
        view = await p.b.json("GET", f"/received/{a_org}/{record_id}", Role.viewer)
        assert view["disclosed_fields"] == sorted([*FIELDS, "attachments"])
        assert view["claims"]["attachments"] == [
            {"name": "testimonio.txt", "media_type": "text/plain", "size": len(text),
             "sha256": hashlib.sha256(text).hexdigest(), "copy": "original"},
            {"name": "foto.jpg", "media_type": "image/jpeg", "size": len(photo),
             "sha256": hashlib.sha256(photo).hexdigest(), "copy": "original"}]
        # at rest at B: sealed, not the plaintext
        assert MARKER.encode() not in received_path(p.b.node, files[0].file_id).read_bytes()

        # the custody log of each file names the share: to whom, which copy
        async with p.a.node.store.read() as tx:
            entries = await AttachmentStore(tx.session, tx.cipher).entries(text_id)
        share = [e for e in entries if e["action"] == Action.SHARE.value]
        assert [(e["details"]["to"], e["details"]["copy"]) for e in share] == [
            (b_org, "original")]

        # a retraction removes them at B
        await p.a.json("POST", f"/cases/{record_id}/retract", json={"reason": "error"})

        async def removed() -> bool:
            return all(f.status is Status.REMOVED and f.shared is None
                       for f in await _files_at(p.b, a_org, record_id))

        await eventually(removed, what="the files removed at B")
        assert not received_path(p.b.node, files[0].file_id).exists()
        assert not received_path(p.b.node, files[1].file_id).exists()
        async with p.a.node.store.read() as tx:
            entries = await AttachmentStore(tx.session, tx.cipher).entries(photo_id)
        assert entries[-1]["action"] == Action.RETRACTION.value
        assert entries[-1]["details"]["to"] == [b_org]
        for api in (p.a, p.b):
            await api.node.store.checkpoint()

    homeserver_files = [path for server in federation for path in files_under(server.directory)
                        if ".db" in path.name or "media_store" in path.parts]
    assert any("media_store" in path.parts for path in homeserver_files)
    # nor do the nodes' data directories: database, evidence store, transfers
    node_files = [path for name in ("a", "b") for path in files_under(tmp_path / name)]
    assert search(homeserver_files + node_files, [MARKER, GPS_MARKER]) == []
    for needle in _gps_needles():
        assert not [path for path in homeserver_files + node_files
                    if needle in path.read_bytes()]


def _media_file(federation: Federation, mxc: str) -> Path:
    media_id = mxc.rsplit("/", 1)[1]
    found = [path for server in federation
             for path in (server.directory / "media_store" / "local_content").glob(
                 f"{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}")]
    assert len(found) == 1
    return found[0]


async def test_a_tampered_part_is_quarantined_with_its_reason(
    federation: Federation, tmp_path: Path
) -> None:
    async with pair(federation, tmp_path) as p:
        a_org, b_org = p.a.node.org_id, p.b.node.org_id
        record_id = await _case(p.a)
        attachment_id = await _attach(p.a, record_id, "acta.txt", _text_file(2**20 + 5))
        async with p.a.node.store.read() as tx:
            attachment = await AttachmentStore(tx.session, tx.cipher).get(attachment_id)
            record = stored_record(await tx.cases.get(record_id))
        async with p.a.node.transport() as transport:
            described = await upload_copy(p.a.node, transport, attachment, Copy.ORIGINAL)
        stored = _media_file(federation, described.parts[0].url)
        data = bytearray(stored.read_bytes())
        data[100] ^= 0x01
        stored.chmod(0o600)
        stored.write_bytes(bytes(data))
        await share_from_node(p.a.node, record, [b_org], FIELDS, actor="test",
                              issued_at=p.a.clock(), files={b_org: [described.wire()]})

        (received,) = await _settled(p.b, a_org, record_id, 1)
        assert received.status is Status.QUARANTINED
        assert received.reason == "part-hash-mismatch"
        assert not received_path(p.b.node, received.file_id).exists()
        async with p.b.node.store.read() as tx:
            reasons = [e.reason for e in await list_quarantined(tx.session)]
        assert "file-part-hash-mismatch" in reasons


async def test_an_interrupted_transfer_resumes_at_the_part_where_it_stopped(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _text_file(3 * PART_BYTES - 2**20)  # three parts
    fetched: list[str] = []
    whole_parts: list[str] = []
    download = MatrixTransport.download

    async def cut_once(self: MatrixTransport, mxc: str, *, max_bytes: int) -> Any:
        fetched.append(mxc)
        if max_bytes == PART_BYTES:
            whole_parts.append(mxc)
            if len(whole_parts) == 2:  # the second part, the first time it is asked for
                raise TransportError("download", "connection reset")
        return await download(self, mxc, max_bytes=max_bytes)

    async with pair(federation, tmp_path) as p:
        a_org, b_org = p.a.node.org_id, p.b.node.org_id
        record_id = await _case(p.a)
        attachment_id = await _attach(p.a, record_id, "video.txt", content)
        monkeypatch.setattr(MatrixTransport, "download", cut_once)
        await p.a.json("POST", f"/cases/{record_id}/share", json={
            "recipients": [b_org], "fields": FIELDS,
            "attachments": {b_org: [{"attachment_id": attachment_id, "copy": "original"}]}})
        (received,) = await _settled(p.b, a_org, record_id, 1)
        assert received.status is Status.STORED
        assert received.shared is not None
        urls = [part.url for part in received.shared.parts]
        file_fetches = [url for url in fetched if url in urls]
        # part 2 was cut: part 1, already kept, is never asked for again; the next round
        # starts at part 2 (part 3 may have been asked for ahead of it, never kept before it)
        assert file_fetches[:2] == [urls[0], urls[1]]
        assert file_fetches.count(urls[0]) == 1 and file_fetches.count(urls[1]) == 2
        assert file_fetches[-1] == urls[2]
        assert await _plaintext(p.b, received) == content


async def test_the_record_travels_while_the_last_parts_upload(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last parts go to addresses reserved before sealing: here they are held back until
    B has the record, so B's homeserver asks for media not yet uploaded and waits for it; the
    file arrives whole."""
    content = _text_file(3 * PART_BYTES - 2**20)  # three parts: the last two at reserved ones
    upload_to = MatrixTransport.upload_to
    record_first: list[bool] = []

    async with pair(federation, tmp_path) as p:
        a_org, b_org = p.a.node.org_id, p.b.node.org_id
        record_id = await _case(p.a)
        attachment_id = await _attach(p.a, record_id, "video.txt", content)

        async def after_the_record(self: MatrixTransport, mxc: str, data: bytes,
                                   content_type: str = "application/octet-stream") -> None:
            async def noted() -> bool:
                return bool(await _files_at(p.b, a_org, record_id))

            try:
                await eventually(noted, timeout=15, what="the record at B")
                record_first.append(True)
            except AssertionError:
                record_first.append(False)
            await upload_to(self, mxc, data, content_type)

        monkeypatch.setattr(MatrixTransport, "upload_to", after_the_record)
        await p.a.json("POST", f"/cases/{record_id}/share", json={
            "recipients": [b_org], "fields": FIELDS,
            "attachments": {b_org: [{"attachment_id": attachment_id, "copy": "original"}]}})
        (received,) = await _settled(p.b, a_org, record_id, 1)
        assert received.status is Status.STORED
        assert record_first == [True, True]
        assert await _plaintext(p.b, received) == content


async def test_a_part_that_will_not_upload_after_the_record_went_is_quarantined_at_once(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's homeserver takes the first part but none at a reserved address: the record went
    already, so each of those addresses gets a one-byte filler and B quarantines the file
    instead of waiting for it; A's share call still returns (the share was recorded)."""
    content = _text_file(3 * PART_BYTES - 2**20)  # three parts: the last two at reserved ones
    upload_to = MatrixTransport.upload_to

    async def refuse_parts(self: MatrixTransport, mxc: str, data: bytes,
                           content_type: str = "application/octet-stream") -> None:
        if len(data) > 1:
            raise TransportError("upload", "500 M_UNKNOWN", status="M_UNKNOWN")
        await upload_to(self, mxc, data, content_type)  # the filler

    async with pair(federation, tmp_path) as p:
        a_org, b_org = p.a.node.org_id, p.b.node.org_id
        record_id = await _case(p.a)
        attachment_id = await _attach(p.a, record_id, "video.txt", content)
        monkeypatch.setattr(MatrixTransport, "upload_to", refuse_parts)
        await p.a.json("POST", f"/cases/{record_id}/share", json={
            "recipients": [b_org], "fields": FIELDS,
            "attachments": {b_org: [{"attachment_id": attachment_id, "copy": "original"}]}})
        (received,) = await _settled(p.b, a_org, record_id, 1)
        assert received.status is Status.QUARANTINED
        assert received.reason == "part-size-mismatch"


async def test_another_member_countersigns_and_the_package_carries_it(
    federation: Federation, tmp_path: Path
) -> None:
    async with pair(federation, tmp_path) as p:
        b_org = p.b.node.org_id
        record_id = await _case(p.a)
        attachment_id = await _attach(p.a, record_id, "foto.jpg", jpeg_with_gps())
        asked = await p.a.json("POST", f"/attachments/{attachment_id}/countersign",
                               json={"witness": b_org}, expect=202)
        assert asked["witness"] == b_org

        async def countersigned() -> dict[str, Any] | None:
            detail = await p.a.json("GET", f"/attachments/{attachment_id}", Role.viewer)
            found = [e for e in detail["custody"] if e["action"] == "countersignature"]
            return found[0] if found else None

        entry = await eventually(countersigned, what="B's countersignature in A's log")
        statement = entry["details"]["statement"]
        assert entry["details"]["witness"] == statement["witness"] == b_org
        assert statement["holder"] == p.a.node.org_id
        assert hashlib.sha256(jpeg_with_gps()).hexdigest() not in str(statement)

        answer = await p.a.call("GET", f"/attachments/{attachment_id}/package", Role.editor)
        package = await answer.read()
    report = verify_package(io.BytesIO(package))
    assert report.ok, report.problems
    # a statement changed inside the package is found, offline
    changed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, \
            zipfile.ZipFile(changed, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "witnesses/" + b_org + ".json":
                data = data.replace(b_org.encode(), p.a.node.org_id.encode())
            target.writestr(item, data)
    assert not verify_package(io.BytesIO(changed.getvalue())).ok
