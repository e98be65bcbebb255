"""A 200 MB upload streams: the node's memory stays bounded while it arrives, is sealed and is
read back. Client and node share this process, so its peak RSS bounds the node's."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from node.features.evidence.chunks import sealed_size
from tests.support.api_harness import SAMPLE_CASES, serve_node
from tests.support.offline_node import make_offline_node

SIZE = 200 * 1024 * 1024
PIECE = 1024 * 1024
BOUND = 150 * 1024 * 1024


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS (VmHWM) := current RSS


def _piece(index: int) -> bytes:
    return hashlib.sha256(index.to_bytes(8, "big")).digest() * (PIECE // 32)


async def _content() -> AsyncIterator[bytes]:
    for index in range(SIZE // PIECE):
        yield _piece(index)


async def test_a_200_mb_upload_streams_with_bounded_memory(tmp_path: Path) -> None:
    expected = hashlib.sha256()
    for index in range(SIZE // PIECE):
        expected.update(_piece(index))
    async with serve_node(await make_offline_node(tmp_path / "node")) as api:
        created = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
        form = aiohttp.FormData()
        form.add_field("files", _content(), filename="video.bin",
                       content_type="application/octet-stream")
        _reset_peak()
        before = _rss("VmRSS")
        answer = await api.json("POST", f"/cases/{created['record_id']}/attachments",
                                data=form, expect=201)
        item = answer["items"][0]
        assert item["size"] == SIZE
        assert item["sha256"] == expected.hexdigest()
        stored = api.node.config.node.data_dir / "evidence" / f"{item['attachment_id']}.original"
        assert stored.stat().st_size == sealed_size(SIZE)

        download = await api.call("GET", f"/attachments/{item['attachment_id']}/file"
                                          "?copy=original")
        digest = hashlib.sha256()
        async for piece in download.content.iter_chunked(PIECE):
            digest.update(piece)
        assert digest.hexdigest() == expected.hexdigest()
        growth = _rss("VmHWM") - before
        assert growth < BOUND, f"peak RSS grew by {growth // 2**20} MB"
