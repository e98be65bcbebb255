"""Event content, bundles and chain bookkeeping of the sync layer (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.frame import (
    MAX_INLINE_CONTENT_BYTES,
    BlobRef,
    ChainLink,
    ChainState,
    FrameError,
    Gaps,
    blob_bytes,
    blob_content,
    bundle,
    capped_ranges,
    chain_context,
    envelope_from_blob,
    envelope_hash,
    fits_inline,
    inline_content,
    parse_content,
    read_chain_context,
    read_resend_request,
    resend_request_content,
    resend_request_room,
    unbundle,
)

ENVELOPE = {"type": "minga.envelope/1", "ciphertext": "abc", "context": {"seq": 1}}


def test_inline_content_round_trips() -> None:
    assert parse_content(inline_content(ENVELOPE)) == ENVELOPE
    assert fits_inline(ENVELOPE)
    assert not fits_inline({**ENVELOPE, "ciphertext": "x" * MAX_INLINE_CONTENT_BYTES})


def test_blob_is_checked_against_its_hash_and_size() -> None:
    data = blob_bytes(ENVELOPE)
    content = blob_content("mxc://hs/abc", data)
    ref = parse_content(content)
    assert isinstance(ref, BlobRef) and ref.size == len(data)
    assert envelope_from_blob(ref, data) == ENVELOPE
    with pytest.raises(FrameError) as raised:
        envelope_from_blob(ref, data.replace(b"abc", b"abd"))
    assert raised.value.reason == "tampered"


@pytest.mark.parametrize(
    "content",
    [{}, {"envelope": "x"}, {"blob": {"url": "https://x", "sha256": "a", "size": 1}},
     {"blob": {"url": "mxc://a/b", "sha256": "a", "size": 0}},
     {"blob": {"url": "mxc://a/b", "sha256": "a", "size": True}}],
)
def test_malformed_content_is_refused(content: dict[str, object]) -> None:
    with pytest.raises(FrameError) as raised:
        parse_content(content)
    assert raised.value.reason == "malformed"


@given(st.lists(st.text(alphabet="abcXYZ012~._-", min_size=1, max_size=40), min_size=1,
                max_size=30))
def test_bundles_round_trip(records: list[str]) -> None:
    assert unbundle(bundle(records)) == records


@pytest.mark.parametrize("payload", [b"nope", b"{}", b'{"type": "minga.bundle/1"}',
                                     b'{"type": "minga.bundle/1", "records": [1]}',
                                     b'{"type": "minga.bundle/1", "records": []}'])
def test_bad_bundles_are_refused(payload: bytes) -> None:
    with pytest.raises(FrameError):
        unbundle(payload)


def test_chain_context_round_trips_and_is_validated() -> None:
    link = read_chain_context(chain_context("!room", 3, "h2"))
    assert link == ChainLink("!room", 3, "h2")
    for bad in ({"room": "", "seq": 1, "prev": ""}, {"room": "!r", "seq": 0, "prev": ""},
                {"room": "!r", "seq": True, "prev": ""}, {"room": "!r", "seq": 2}):
        with pytest.raises(FrameError):
            read_chain_context(bad)
    with pytest.raises(ValueError):
        chain_context("!room", 0, "")


def test_envelope_hash_is_canonical() -> None:
    assert envelope_hash({"b": 1, "a": 2}) == envelope_hash({"a": 2, "b": 1})
    assert envelope_hash(ENVELOPE) != envelope_hash({**ENVELOPE, "ciphertext": "abd"})


def _chain(length: int) -> list[tuple[ChainLink, str]]:
    links, prev = [], ""
    for seq in range(1, length + 1):
        this = f"h{seq}"
        links.append((ChainLink("!r", seq, prev), this))
        prev = this
    return links


@given(st.sets(st.integers(1, 30)))
def test_missing_ranges_are_exactly_the_holes(seen: set[int]) -> None:
    state = ChainState()
    for link, this in _chain(30):
        if link.seq in seen:
            assert state.conflict(link, this) is None
            state.add(link, this)
    holes = {seq for start, end in state.missing() for seq in range(start, end + 1)}
    top = max(seen, default=0)
    assert holes == set(range(1, top + 1)) - seen


def test_duplicates_conflicts_and_broken_links_are_told_apart() -> None:
    state = ChainState()
    chain = _chain(3)
    for link, this in chain:
        state.add(link, this)
    first, this = chain[0]
    assert state.is_duplicate(first, this)
    assert state.conflict(ChainLink("!r", 2, "h1"), "other") is not None
    fresh = ChainState()
    fresh.add(*chain[2])
    assert fresh.conflict(ChainLink("!r", 2, "h1"), "not-h2") is not None
    assert fresh.conflict(chain[1][0], chain[1][1]) is None
    assert ChainState().conflict(ChainLink("!r", 1, "x"), "h1") is not None


@given(st.lists(st.integers(1, 40), max_size=60))
def test_gaps_kept_one_arrival_at_a_time_match_the_whole_chain(arrivals: list[int]) -> None:
    gaps, state = Gaps(), ChainState()
    for seq in arrivals:
        gaps = gaps.arrive(seq)
        state.links[seq] = (f"h{seq}", "")
    assert list(gaps.missing) == state.missing()
    assert gaps.top == max(arrivals, default=0)


def test_resend_requests_round_trip_and_are_capped() -> None:
    content = resend_request_content("org-a", [(3, 3), (7, 9)])
    assert content == {"issuer": "org-a", "ranges": [[3, 3], [7, 9]]}
    assert read_resend_request(content) == ("org-a", [(3, 3), (7, 9)])
    huge = resend_request_content("org-a", [(1, 10**9)])
    assert huge["ranges"] == [[1, 1000]]
    assert capped_ranges([(1, 600), (700, 1200), (2000, 2001)]) == [(1, 600), (700, 1099)]


def test_a_resend_request_may_name_the_replaced_room_whose_chain_it_means() -> None:
    plain = resend_request_content("org-a", [(2, 4)])
    assert "room" not in plain and resend_request_room(plain) is None
    named = resend_request_content("org-a", [(2, 4)], room="!old:test")
    assert read_resend_request(named) == ("org-a", [(2, 4)])
    assert resend_request_room(named) == "!old:test"
    for bad in ("old", 7, ""):
        with pytest.raises(FrameError) as raised:
            resend_request_room({**plain, "room": bad})
        assert raised.value.reason == "malformed"


@pytest.mark.parametrize(
    "content",
    [{}, {"issuer": "a"}, {"issuer": "", "ranges": [[1, 2]]}, {"issuer": "a", "ranges": []},
     {"issuer": "a", "ranges": [[2, 1]]}, {"issuer": "a", "ranges": [[0, 1]]},
     {"issuer": "a", "ranges": [[1, True]]}, {"issuer": "a", "ranges": [[1, 2, 3]]},
     {"issuer": "a", "ranges": [[1, 1]] * 65}],
)
def test_bad_resend_requests_are_malformed(content: dict[str, object]) -> None:
    with pytest.raises(FrameError) as raised:
        read_resend_request(content)
    assert raised.value.reason == "malformed"
