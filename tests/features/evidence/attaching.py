"""Attaching one file to a new case through the API, for the provenance checks' tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from node.core.store import Role
from tests.support.api_harness import SAMPLE_CASES, RunningApi


async def attach_and_read_checks(api: RunningApi, content: bytes, filename: str,
                                 content_type: str, action: str
                                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attach ``content`` to a new case; the attachment, and its custody entries of ``action``.
    Also checks that the original is kept byte for byte, manifest and all."""
    made = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
    form = aiohttp.FormData()
    form.add_field("files", content, filename=filename, content_type=content_type)
    answer = await api.json("POST", f"/cases/{made['record_id']}/attachments", data=form,
                            expect=201)
    item = answer["items"][0]
    original = await api.call("GET", f"/attachments/{item['attachment_id']}/file?copy=original",
                              Role.editor)
    assert await original.read() == content
    detail = await api.json("GET", f"/attachments/{item['attachment_id']}", Role.viewer)
    return item, [entry for entry in detail["custody"] if entry["action"] == action]
