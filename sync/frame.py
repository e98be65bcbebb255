"""What travels in an ``org.minga.sealed`` event, and the per-issuer chain. Pure code.

Event content is one of:

- ``{"envelope": <envelope>}``: the sealed envelope inline (it fits in 60 KB);
- ``{"blob": {"url": "mxc://...", "sha256": <b64u>, "size": n}}``: the envelope's canonical
  JSON bytes are in the media repository (larger bundles); ``sha256`` authenticates the blob
  before anything is parsed, and the envelope inside is verified like an inline one.

Every envelope's signed ``context`` (docs/architecture.md §5) binds it to its room and its place in
the
issuer's chain for that room: ``{"room": room_id, "seq": n, "prev": hash of seq n-1 or ""}``.
Sequence numbers start at 1 and have no holes on the issuer's side, so a receiver that saw
seq 5 and seq 8 knows 6 and 7 are missing and can ask for them; a second, different envelope
with an already seen seq is an equivocation or a replay.

The plaintext of an envelope is a *bundle*: ``{"type": "minga.bundle/1", "records": [...]}``
where each record is a Minga SD-JWT (see ``federation.disclosure``), so one event can carry
many small records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from federation.canonical import canonical_json
from federation.encoding import b64u_encode

SEALED_EVENT_TYPE = "org.minga.sealed"
BUNDLE_TYPE = "minga.bundle/1"
# Matrix refuses events over 65,536 bytes; the rest of the event (ids, keys, signatures added
# by the homeserver) needs room too (docs/architecture.md §5).
MAX_INLINE_CONTENT_BYTES = 60_000
MAX_BLOB_BYTES = 32 * 1024 * 1024
MAX_RECORDS_PER_BUNDLE = 5_000


class FrameError(ValueError):
    """Event content or a bundle is not what the protocol allows; ``reason`` is stable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- hashing and chain context ----------------------------------------------------------------


def envelope_hash(envelope_wire: Mapping[str, Any]) -> str:
    """The hash that links an envelope to the next one in its issuer's chain."""
    return b64u_encode(hashlib.sha256(canonical_json(dict(envelope_wire))).digest())


def chain_context(room_id: str, seq: int, prev_hash: str) -> dict[str, str | int]:
    if seq < 1:
        raise ValueError("sequence numbers start at 1")
    return {"room": room_id, "seq": seq, "prev": prev_hash}


@dataclass(frozen=True)
class ChainLink:
    room: str
    seq: int
    prev: str


def read_chain_context(context: Mapping[str, Any]) -> ChainLink:
    room, seq, prev = context.get("room"), context.get("seq"), context.get("prev")
    if not isinstance(room, str) or not room:
        raise FrameError("malformed", "envelope context: room is missing")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise FrameError("malformed", "envelope context: seq must be a positive integer")
    if not isinstance(prev, str):
        raise FrameError("malformed", "envelope context: prev is missing")
    return ChainLink(room, seq, prev)


# --- event content ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobRef:
    url: str
    sha256: str
    size: int


def inline_content(envelope_wire: Mapping[str, Any]) -> dict[str, Any]:
    return {"envelope": dict(envelope_wire)}


def fits_inline(envelope_wire: Mapping[str, Any]) -> bool:
    return len(canonical_json(inline_content(envelope_wire))) <= MAX_INLINE_CONTENT_BYTES


def blob_bytes(envelope_wire: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(envelope_wire))


def blob_content(url: str, data: bytes) -> dict[str, Any]:
    digest = b64u_encode(hashlib.sha256(data).digest())
    return {"blob": {"url": url, "sha256": digest, "size": len(data)}}


def parse_content(content: Mapping[str, Any]) -> dict[str, Any] | BlobRef:
    """The inline envelope (still to be verified), or the reference to fetch it from."""
    if "envelope" in content:
        envelope = content["envelope"]
        if not isinstance(envelope, Mapping):
            raise FrameError("malformed", "event content: envelope must be an object")
        return dict(envelope)
    blob = content.get("blob")
    if isinstance(blob, Mapping):
        url, digest, size = blob.get("url"), blob.get("sha256"), blob.get("size")
        if not (isinstance(url, str) and url.startswith("mxc://") and isinstance(digest, str)
                and isinstance(size, int) and not isinstance(size, bool)
                and 0 < size <= MAX_BLOB_BYTES):
            raise FrameError("malformed", "event content: blob reference is malformed")
        return BlobRef(url, digest, size)
    raise FrameError("malformed", "event content: neither an envelope nor a blob reference")


def envelope_from_blob(ref: BlobRef, data: bytes) -> dict[str, Any]:
    """The envelope in a downloaded blob, once its length and hash match the reference."""
    if len(data) != ref.size or b64u_encode(hashlib.sha256(data).digest()) != ref.sha256:
        raise FrameError("tampered", "blob does not match its hash")
    try:
        envelope = json.loads(data)
    except ValueError:
        raise FrameError("malformed", "blob is not JSON") from None
    if not isinstance(envelope, dict):
        raise FrameError("malformed", "blob is not an envelope object")
    return envelope


# --- bundles ----------------------------------------------------------------------------------


def bundle(records: Sequence[str]) -> bytes:
    if not records or len(records) > MAX_RECORDS_PER_BUNDLE:
        raise ValueError(f"a bundle holds 1 to {MAX_RECORDS_PER_BUNDLE} records")
    return canonical_json({"type": BUNDLE_TYPE, "records": list(records)})


def unbundle(payload: bytes) -> list[str]:
    try:
        data = json.loads(payload)
    except ValueError:
        raise FrameError("malformed", "bundle is not JSON") from None
    if not isinstance(data, dict) or data.get("type") != BUNDLE_TYPE:
        raise FrameError("malformed", "payload is not a Minga bundle")
    records = data.get("records")
    if (not isinstance(records, list) or not records or len(records) > MAX_RECORDS_PER_BUNDLE
            or not all(isinstance(r, str) for r in records)):
        raise FrameError("malformed", "bundle records must be 1 or more strings")
    return records


# --- gaps -------------------------------------------------------------------------------------


@dataclass
class ChainState:
    """What a receiver knows of one issuer's chain in one room: each seen seq's hash and prev."""

    links: dict[int, tuple[str, str]] = field(default_factory=dict)

    def missing(self) -> list[tuple[int, int]]:
        """Inclusive ranges of seqs below the highest seen that have not arrived."""
        gaps: list[tuple[int, int]] = []
        expected = 1
        for seq in sorted(self.links):
            if seq > expected:
                gaps.append((expected, seq - 1))
            expected = seq + 1
        return gaps

    def is_duplicate(self, link: ChainLink, this_hash: str) -> bool:
        known = self.links.get(link.seq)
        return known is not None and known[0] == this_hash

    def conflict(self, link: ChainLink, this_hash: str) -> str | None:
        """Why ``link`` contradicts the chain seen so far, or None if it fits."""
        known = self.links.get(link.seq)
        if known is not None and known[0] != this_hash:
            return "another envelope already holds this sequence number"
        if link.seq == 1 and link.prev != "":
            return "the first envelope must have an empty prev"
        before = self.links.get(link.seq - 1)
        if before is not None and link.prev != before[0]:
            return "prev does not match the previous envelope"
        after = self.links.get(link.seq + 1)
        if after is not None and after[1] != this_hash:
            return "the next envelope does not point back to this one"
        return None

    def add(self, link: ChainLink, this_hash: str) -> None:
        self.links[link.seq] = (this_hash, link.prev)


@dataclass(frozen=True)
class Gaps:
    """The highest seq seen of one chain and the ranges missing below it, kept up to date one
    arrival at a time (so a receiver need not load the whole chain to know its gaps)."""

    top: int = 0
    missing: tuple[tuple[int, int], ...] = ()

    def arrive(self, seq: int) -> Gaps:
        if seq < 1:
            raise ValueError("sequence numbers start at 1")
        if seq > self.top:
            added = ((self.top + 1, seq - 1),) if seq > self.top + 1 else ()
            return Gaps(seq, self.missing + added)
        kept: list[tuple[int, int]] = []
        for low, high in self.missing:
            if low <= seq <= high:
                kept += [(low, seq - 1)] if low < seq else []
                kept += [(seq + 1, high)] if seq < high else []
            else:
                kept.append((low, high))
        return Gaps(self.top, tuple(kept))


# --- resend requests --------------------------------------------------------------------------

RESEND_EVENT_TYPE = "org.minga.resend"
MAX_RESEND_RANGES = 64
MAX_RESEND_SEQS = 1_000


def capped_ranges(
    ranges: Sequence[tuple[int, int]], max_seqs: int = MAX_RESEND_SEQS
) -> list[tuple[int, int]]:
    """The first ranges (and part of the next) covering at most ``max_seqs`` sequence numbers."""
    kept: list[tuple[int, int]] = []
    budget = max_seqs
    for low, high in ranges[:MAX_RESEND_RANGES]:
        if budget <= 0:
            break
        high = min(high, low + budget - 1)
        kept.append((low, high))
        budget -= high - low + 1
    return kept


def resend_request_content(issuer: str, ranges: Sequence[tuple[int, int]],
                           room: str | None = None) -> dict[str, Any]:
    """An ``org.minga.resend`` event: ids and numbers only. ``room`` names the room whose chain
    is meant when it is not the room the request is posted in (a room this one replaced,
    :mod:`sync.requeue`)."""
    content: dict[str, Any] = {
        "issuer": issuer, "ranges": [[low, high] for low, high in capped_ranges(ranges)]}
    if room is not None:
        content["room"] = room
    return content


def resend_request_room(content: Mapping[str, Any]) -> str | None:
    """The room whose chain a resend request names, if not the one it was posted in."""
    room = content.get("room")
    if room is None:
        return None
    if not isinstance(room, str) or not room.startswith("!"):
        raise FrameError("malformed", "resend request: room must be a Matrix room id")
    return room


def read_resend_request(content: Mapping[str, Any]) -> tuple[str, list[tuple[int, int]]]:
    issuer, ranges = content.get("issuer"), content.get("ranges")
    if not isinstance(issuer, str) or not issuer or not isinstance(ranges, list):
        raise FrameError("malformed", "resend request: issuer and ranges are required")
    if not 0 < len(ranges) <= MAX_RESEND_RANGES:
        raise FrameError("malformed", f"resend request: 1 to {MAX_RESEND_RANGES} ranges")
    parsed: list[tuple[int, int]] = []
    for item in ranges:
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in item)
                and 1 <= item[0] <= item[1]):
            raise FrameError("malformed", "resend request: each range is [from, to], from >= 1")
        parsed.append((item[0], item[1]))
    return issuer, capped_ranges(parsed)
