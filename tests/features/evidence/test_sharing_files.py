"""Files in the one sharing path, without a second node: the consent gate refuses files where it
refuses names and places (before anything is uploaded), bad choices are named, the share dialog
offers files per recipient, and a received file is noted, fetched from its sealed parts,
checked, shown with a preview, downloaded with an audit entry, and removed by a retraction."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.encoding import b64u_encode
from federation.identity import OrgKeys, sign_member_entry
from federation.transport import MatrixTransport, TransportError
from node.core.runtime import Node
from node.core.store import Role
from node.core.store.pair_rooms import PairRoomRepository
from node.core.store.shares import ShareRepository
from node.features.cases import stored_record
from node.features.evidence import sending
from node.features.evidence.attachments import AttachmentStore
from node.features.evidence.chunks import new_file_key, seal_bytes, sealed_size
from node.features.evidence.custody import Action, Copy
from node.features.evidence.received_files import ReceivedFiles
from node.features.evidence.receiving import (
    _finish,
    on_record,
    received_path,
    transfer_path,
)
from node.features.evidence.sending import share_case_with_files
from node.features.evidence.service import append_custody
from node.features.evidence.transfer import (
    MAX_FILES,
    PART_BYTES,
    TRANSFER_AD,
    FileChoice,
    Reason,
    SharedFile,
    Status,
    check_part,
    cut_parts,
    parse_shared_file,
)
from schemas.ids import new_record_id
from sync.engine import read_status
from sync.host import VerifiedRecord, committed_actions
from tests.features.evidence.samples import jpeg_with_gps
from tests.support.api_harness import SAMPLE_CASES
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node
from tests.support.web import Browser, WebNode, serve_web

MEMBER = OrgKeys.generate()


@asynccontextmanager
async def _site(directory: Path, store_at: Path | str | None = None) -> AsyncIterator[WebNode]:
    async with serve_web(await make_offline_node(directory, store_at=store_at)) as web_node:
        async with web_node.node.store.transaction() as tx:
            entry = sign_member_entry(MEMBER, {"name": "Haki Ardhi", "country": "KE"})
            await tx.orgs.save_member(MEMBER.org_id, entry, verified=True, safety_code="s",
                                      matrix_user_id="@member:hs")
            await in_coalition(tx, MEMBER.org_id)
        web_node.node.forget_coalitions()
        yield web_node


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[WebNode]:
    async with _site(tmp_path / "node") as web_node:
        yield web_node


@pytest.fixture
async def site_on_each_store(tmp_path: Path,
                             store_location: Path | str) -> AsyncIterator[WebNode]:
    """:func:`site` on SQLite, then on PostgreSQL."""
    async with _site(tmp_path / "node", store_location if isinstance(store_location, str)
                     else None) as web_node:
        yield web_node


async def _api(site: WebNode, browser: Browser, method: str, path: str, *,
               expect: int, **kwargs: Any) -> Any:
    async with site.node.store.transaction() as tx:
        token = await tx.tokens.create("beatriz", Role.editor)
    async with browser.session.request(method, site.base + "/api/v1" + path,
                                       headers={"Authorization": f"Bearer {token}"},
                                       **kwargs) as answer:
        assert answer.status == expect, await answer.text()
        return await answer.json()


async def _case_with_files(site: WebNode, browser: Browser, key: str) -> tuple[str, str, str]:
    """A case, a photo (mat2 makes a working copy) and random bytes (no working copy)."""
    made = await _api(site, browser, "POST", "/cases", json=SAMPLE_CASES[key], expect=201)
    record_id = made["record_id"]
    ids = []
    for name, content in (("foto.jpg", jpeg_with_gps()), ("datos.bin", os.urandom(2000))):
        form = aiohttp.FormData()
        form.add_field("files", content, filename=name, content_type="application/octet-stream")
        answer = await _api(site, browser, "POST", f"/cases/{record_id}/attachments",
                            data=form, expect=201)
        ids.append(answer["items"][0]["attachment_id"])
    return record_id, ids[0], ids[1]


async def _nothing_sent(site: WebNode) -> None:
    async with site.node.store.read() as tx:
        assert (await read_status(tx.session)).queued_items == 0


async def test_files_beyond_consent_and_bad_choices_are_refused_before_any_upload(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    record_id, photo, _raw = await _case_with_files(site, browser, "mindanao")
    path = f"/cases/{record_id}/share"
    fields = ["country", "violations"]

    # anonymised consent at critical risk: a member gets the context only
    refused = await _api(site, browser, "POST", path, expect=409, json={
        "recipients": [MEMBER.org_id], "fields": fields,
        "attachments": {MEMBER.org_id: [{"attachment_id": photo}]}})
    assert refused["error"]["code"] == "consent_refused"
    (problem,) = refused["error"]["fields"]
    assert problem["field"] == "attachments"
    assert "files show people and places" in problem["problem"]
    preview = await _api(site, browser, "POST", path + "/preview", expect=200, json={
        "recipients": [MEMBER.org_id], "fields": fields,
        "attachments": {MEMBER.org_id: [{"attachment_id": photo}]}})
    assert [r["path"] for r in preview["recipients"][0]["refused"]] == ["attachments"]

    stranger = OrgKeys.generate().org_id
    not_recipient = await _api(site, browser, "POST", path, expect=422, json={
        "recipients": [MEMBER.org_id], "fields": fields,
        "attachments": {stranger: [{"attachment_id": photo}]}})
    assert not_recipient["error"]["fields"][0]["field"] == "body.recipients"
    await _nothing_sent(site)


async def test_a_file_not_of_the_case_or_without_working_copy_is_named(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id, _photo, raw = await _case_with_files(site, browser, "cauca")
    path = f"/cases/{record_id}/share"
    for choice, words in (({"attachment_id": new_record_id()}, "not attached to this case"),
                          ({"attachment_id": raw}, "has no working copy"),
                          ({"attachment_id": raw, "copy": "copy"}, None)):
        answer = await _api(site, browser, "POST", path, expect=422, json={
            "recipients": [MEMBER.org_id], "fields": ["country"],
            "attachments": {MEMBER.org_id: [choice]}})
        if words is not None:
            assert answer["error"]["fields"][0]["field"] == "body.attachments"
            assert words in answer["error"]["fields"][0]["problem"]
    await _nothing_sent(site)


async def test_the_share_dialog_offers_each_file_per_recipient_and_shows_refusals(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    record_id, photo, raw = await _case_with_files(site, browser, "mindanao")
    page = await browser.get(f"/cases/{record_id}/share")
    assert "Files to send" in page.text
    select = f'name="file:{MEMBER.org_id}:{photo}"'
    assert select in page.text
    # the file without a working copy offers the original only
    raw_select = page.text.split(f'name="file:{MEMBER.org_id}:{raw}"', 1)[1].split("</select>")[0]
    assert 'value="working"' not in raw_select and 'value="original"' in raw_select
    shown = await browser.post(f"/cases/{record_id}/share", [
        ("recipients", MEMBER.org_id), ("fields", "country"),
        (f"file:{MEMBER.org_id}:{photo}", "working"), ("step", "preview")])
    assert shown.status == 200
    assert "Files (photos, recordings, documents)" in shown.text
    assert 'value="working" selected' in shown.text
    assert 'name="step" value="send"' not in shown.text  # refused: nothing can be sent
    await _nothing_sent(site)


async def test_a_stored_file_altered_on_disk_is_not_shared(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id, photo, _raw = await _case_with_files(site, browser, "cauca")
    stored = site.node.config.node.data_dir / "evidence" / f"{photo}.original"
    altered = bytearray(stored.read_bytes())
    altered[40] ^= 0x01
    stored.chmod(0o600)
    stored.write_bytes(bytes(altered))
    answer = await _api(site, browser, "POST", f"/cases/{record_id}/share", expect=409, json={
        "recipients": [MEMBER.org_id], "fields": ["country"],
        "attachments": {MEMBER.org_id: [{"attachment_id": photo, "copy": "original"}]}})
    assert answer["error"]["code"] == "evidence_damaged"
    await _nothing_sent(site)


async def test_sending_from_the_dialog_uploads_the_chosen_files_or_says_it_could_not(
    site: WebNode,
) -> None:
    """This node has no homeserver: the dialog's send reaches the upload (the consent gate
    allowed the file) and says that nothing was sent."""
    browser = await site.logged_in("beatriz")
    record_id, photo, _raw = await _case_with_files(site, browser, "cauca")
    await browser.get(f"/cases/{record_id}/share")
    chosen = [("recipients", MEMBER.org_id), ("fields", "country"), ("version", "1"),
              (f"file:{MEMBER.org_id}:{photo}", "working")]
    preview = await browser.post(f"/cases/{record_id}/share", [*chosen, ("step", "preview")])
    assert "foto.jpg: working copy, identifying metadata removed" in preview.text
    sent = await browser.post(f"/cases/{record_id}/share", [*chosen, ("step", "send")])
    assert sent.status == 503
    assert "The homeserver did not take the files. Nothing was sent" in sent.text
    await _nothing_sent(site)


async def test_a_share_and_its_custody_entries_commit_together(
    site_on_each_store: WebNode, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure while the files' custody entries are written (a crash, here the second entry)
    leaves no share behind: nothing queued, no share history, no custody entry. The same share
    then records itself in each file's custody log."""
    site = site_on_each_store
    browser = await site.logged_in("beatriz")
    record_id, photo, raw = await _case_with_files(site, browser, "cauca")
    async with site.node.store.transaction() as tx:  # no homeserver: a pair room known already
        await PairRoomRepository(tx.session).remember(MEMBER.org_id, "!pair:hs",
                                                      created_by_us=True, at=datetime.now(UTC))
        record = stored_record(await tx.cases.get(record_id))

    uploads: list[int] = []

    async def uploaded(transport: MatrixTransport, data: bytes) -> str:  # no homeserver here
        uploads.append(len(data))
        return f"mxc://hs/part{len(uploads)}"

    async def no_reservation(transport: MatrixTransport) -> str:
        raise TransportError("create media", "404 M_UNRECOGNIZED", status="M_UNRECOGNIZED")

    written: list[str] = []

    async def crash_on_second(node: Node, tx: Any, attachment: Any, action: Action,
                              **kwargs: Any) -> dict[str, Any]:
        written.append(attachment.attachment_id)
        if len(written) == 2:
            raise RuntimeError("the node stopped")
        return await append_custody(node, tx, attachment, action, **kwargs)

    monkeypatch.setattr(MatrixTransport, "upload", uploaded)
    monkeypatch.setattr(MatrixTransport, "create_media", no_reservation)
    monkeypatch.setattr(sending, "append_custody", crash_on_second)
    choices = {MEMBER.org_id: [FileChoice(photo, Copy.WORKING), FileChoice(raw, Copy.ORIGINAL)]}
    with pytest.raises(RuntimeError, match="the node stopped"):
        await share_case_with_files(site.node, record, [MEMBER.org_id], ["country"], choices,
                                    actor="beatriz", now=1_800_000_000)
    assert len(written) == 2

    async def shares_and_custody() -> tuple[int, list[list[dict[str, Any]]]]:
        async with site.node.store.read() as tx:
            history = await ShareRepository(tx.session, tx.cipher).history(record_id)
            store = AttachmentStore(tx.session, tx.cipher)
            custody = [[e for e in await store.entries(file_id)
                        if e["action"] == Action.SHARE.value] for file_id in (photo, raw)]
        return len(history), custody

    assert await shares_and_custody() == (0, [[], []])
    await _nothing_sent(site)

    monkeypatch.setattr(sending, "append_custody", append_custody)
    await share_case_with_files(site.node, record, [MEMBER.org_id], ["country"], choices,
                                actor="beatriz", now=1_800_000_000)
    shared, custody = await shares_and_custody()
    assert shared == 1
    assert [[(e["details"]["to"], e["details"]["copy"], e["details"]["version"]) for e in entries]
            for entries in custody] == [[(MEMBER.org_id, "working", record.version)],
                                        [(MEMBER.org_id, "original", record.version)]]
    async with site.node.store.read() as tx:
        assert (await read_status(tx.session)).queued_items == 1


async def test_the_evidence_page_offers_to_ask_a_member_for_a_countersignature(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    record_id, photo, _raw = await _case_with_files(site, browser, "cauca")
    page = await browser.get(f"/cases/{record_id}/evidence")
    assert f'action="/evidence/{photo}/countersign"' in page.text
    assert f'<option value="{MEMBER.org_id}">Haki Ardhi</option>' in page.text
    viewer = await site.logged_in("chidi")
    assert "Ask for a countersignature" not in (await viewer.get(
        f"/cases/{record_id}/evidence")).text


# --- receiving ----------------------------------------------------------------------------------


def _described(content: bytes, media_type: str, name: str) -> tuple[dict[str, Any], bytes]:
    """A file as a sender describes it, and its one sealed part."""
    key = new_file_key()
    sealed = seal_bytes(key, TRANSFER_AD, content)
    description = {
        "name": name, "media_type": media_type, "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(), "copy": "original",
        "original_sha256": hashlib.sha256(content).hexdigest(), "key": b64u_encode(key),
        "parts": [{"url": "mxc://hs.example/abcdef", "size": len(sealed),
                   "sha256": hashlib.sha256(sealed).hexdigest()}]}
    return description, sealed


async def _deliver(node: Node, issuer: str, record_id: str, kind: str,
                   claims: dict[str, Any]) -> None:
    async with node.store.transaction() as tx:
        await tx.received.add(issuer, record_id, 1, kind, claims, "verified")
        await on_record(tx.session, node, VerifiedRecord(
            issuer=issuer, record_id=record_id, version=1, kind=kind, claims=claims,
            disclosed_paths=frozenset(claims), issued_at=1_760_000_000, room_id="!r:hs",
            event_id="$e", origin_server_ts=0))
        follow_ups = committed_actions(tx.session)
    for action in follow_ups:
        action()


async def _arrive(node: Node, file_id: str, sealed: bytes) -> Status:
    """What the fetch duty does once the part came from the homeserver."""
    async with node.store.read() as tx:
        received = await ReceivedFiles(tx.session, tx.cipher).get(file_id)
    assert received is not None and received.shared is not None
    transfer_path(node, file_id).parent.mkdir(mode=0o700, exist_ok=True)
    transfer_path(node, file_id).write_bytes(sealed)
    return await _finish(node, received, transfer_path(node, file_id))


async def test_a_received_file_is_checked_shown_previewed_downloaded_and_retracted(
    site: WebNode,
) -> None:
    node = site.node
    photo, text = jpeg_with_gps(), b"Sntl-received-text\n" * 50
    photo_description, photo_sealed = _described(photo, "image/jpeg", "foto.jpg")
    text_description, text_sealed = _described(text, "image/png", "not-an-image.png")
    record_id = new_record_id()
    claims = {"record_id": record_id, "version": 1, "kind": "case", "schema": "minga.case/1",
              "issued_at": 1_760_000_000, "country": "KE",
              "attachments": [photo_description, text_description, {"name": "broken"}]}
    await _deliver(node, MEMBER.org_id, record_id, "case", claims)
    async with node.store.read() as tx:
        files = await ReceivedFiles(tx.session, tx.cipher).of_record(MEMBER.org_id, record_id)
    assert [f.status for f in files] == [Status.PENDING, Status.PENDING, Status.QUARANTINED]
    assert files[2].reason == Reason.MALFORMED.value

    browser = await site.logged_in("chidi")
    page = await browser.get(f"/received/{MEMBER.org_id}/{record_id}")
    assert "Arriving: 0 of 1 parts received." in page.text
    assert photo_description["key"] not in page.text  # the transit key is never shown
    assert "mxc://" not in page.text

    assert await _arrive(node, files[0].file_id, photo_sealed) is Status.STORED
    assert await _arrive(node, files[1].file_id, text_sealed) is Status.STORED
    assert not transfer_path(node, files[0].file_id).exists()
    assert photo not in received_path(node, files[0].file_id).read_bytes()

    page = await browser.get(f"/received/{MEMBER.org_id}/{record_id}")
    assert hashlib.sha256(photo).hexdigest() in page.text
    previews = re.findall(r'<img class="thumbnail" src="([^"]+)"', page.text)
    assert previews == [f"/received-files/{files[0].file_id}/preview",
                        f"/received-files/{files[1].file_id}/preview"]
    async with browser.session.get(site.base + previews[0]) as answer:
        assert answer.status == 200 and answer.content_type == "image/jpeg"
        assert await answer.read() == photo
    async with browser.session.get(site.base + previews[1]) as answer:
        assert answer.status == 404  # claims to be an image, is not one: never rendered
    async with browser.session.get(site.base + f"/received-files/{files[1].file_id}") as answer:
        assert answer.status == 200 and answer.content_type == "application/octet-stream"
        assert await answer.read() == text
    async with node.store.read() as tx:
        actions = [entry.action for entry in await tx.audit.recent(limit=20)]
    assert "evidence.received-download" in actions and "evidence.received-preview" in actions

    await _deliver(node, MEMBER.org_id, new_record_id(), "retraction", {
        "target": {"issuer": MEMBER.org_id, "record_id": record_id}, "reason": "error"})
    async with node.store.read() as tx:
        after = await ReceivedFiles(tx.session, tx.cipher).of_record(MEMBER.org_id, record_id)
    assert [f.status for f in after[:2]] == [Status.REMOVED, Status.REMOVED]
    assert all(f.shared is None for f in after)
    assert not received_path(node, files[0].file_id).exists()
    async with browser.session.get(site.base + f"/received-files/{files[0].file_id}") as answer:
        assert answer.status == 404


async def test_files_beyond_the_size_limit_or_count_are_quarantined_unfetched(
    site: WebNode,
) -> None:
    node = site.node
    big = {**_described(b"x", "text/plain", "a.txt")[0],
           "size": node.config.evidence.max_file_bytes + 1}
    whole, rest = divmod(sealed_size(big["size"]), PART_BYTES)  # parts that add up: it parses
    big["parts"] = [{**big["parts"][0], "size": size} for size in [PART_BYTES] * whole + [rest]]
    small = _described(b"x", "text/plain", "b.txt")[0]
    record_id = new_record_id()
    await _deliver(node, MEMBER.org_id, record_id, "case",
                   {"attachments": [big, *[small] * MAX_FILES]})
    async with node.store.read() as tx:
        files = await ReceivedFiles(tx.session, tx.cipher).of_record(MEMBER.org_id, record_id)
    assert [f.reason for f in files] == ([Reason.TOO_LARGE.value] + [None] * (MAX_FILES - 1)
                                         + [Reason.TOO_LARGE.value])


async def test_a_file_that_does_not_match_its_record_is_quarantined(site: WebNode) -> None:
    node = site.node
    content = b"x" * 5000
    description, sealed = _described(content, "text/plain", "acta.txt")
    description["sha256"] = hashlib.sha256(b"something else").hexdigest()
    record_id = new_record_id()
    await _deliver(node, MEMBER.org_id, record_id, "case", {"attachments": [description]})
    async with node.store.read() as tx:
        (received,) = await ReceivedFiles(tx.session, tx.cipher).of_record(MEMBER.org_id,
                                                                           record_id)
    assert await _arrive(node, received.file_id, sealed) is Status.QUARANTINED
    async with node.store.read() as tx:
        (after,) = await ReceivedFiles(tx.session, tx.cipher).of_record(MEMBER.org_id,
                                                                        record_id)
    assert after.reason == Reason.SHA256.value
    assert not received_path(node, received.file_id).exists()


# --- the pure part --------------------------------------------------------------------------------


def test_parts_are_cut_whole_and_checked() -> None:
    buffer = bytearray(b"a" * (2 * PART_BYTES + 10))
    assert [len(p) for p in cut_parts(buffer, final=False)] == [PART_BYTES, PART_BYTES]
    assert [len(p) for p in cut_parts(buffer, final=True)] == [10]
    description, sealed = _described(b"hello", "text/plain", "a.txt")
    shared = parse_shared_file(description)
    assert isinstance(shared, SharedFile)
    assert check_part(shared.parts[0], sealed) is None
    assert check_part(shared.parts[0], sealed[:-1]) is Reason.PART_SIZE
    assert check_part(shared.parts[0], sealed[:-1] + b"\x00") is Reason.PART_HASH


def test_a_description_whose_parts_do_not_add_up_is_not_one() -> None:
    description, _ = _described(b"hello", "text/plain", "a.txt")
    assert parse_shared_file({**description, "size": 6}) is None
    assert parse_shared_file({**description, "extra": 1}) is None
    assert parse_shared_file({**description, "parts": [{**description["parts"][0],
                                                       "url": "https://evil.example/x"}]}) is None
