"""Cases in the store: versions, filters, pagination, deletion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    CaseFilter,
    CaseIndex,
    InvalidCursor,
    InvalidRecordId,
    NewCase,
    RecordDeleted,
    RecordExists,
    RecordNotFound,
    Store,
    VersionConflict,
    create_data_key,
    open_store,
)


class TickingClock:
    """Each reading is one second after the previous one, so order is predictable."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def store(store_location: Path | str, tmp_path: Path) -> AsyncIterator[Store]:
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    opened = await open_store(store_location, key, clock=TickingClock())
    yield opened
    await opened.close()


def new_id() -> str:
    return str(uuid.uuid4())


def index(
    country: str | None = "CO",
    date_from: str | None = None,
    date_to: str | None = None,
    violations: tuple[str, ...] = (),
    victim_groups: tuple[str, ...] = (),
) -> CaseIndex:
    return CaseIndex(
        country=country,
        date_from=date_from,
        date_to=date_to,
        violations=frozenset(violations),
        victim_groups=frozenset(victim_groups),
    )


async def add(
    store: Store, case_index: CaseIndex, document: dict[str, object] | None = None
) -> str:
    record_id = new_id()
    async with store.transaction() as tx:
        await tx.cases.add(record_id, document or {"n": record_id}, case_index, "ana")
    return record_id


async def listed_ids(store: Store, wanted: CaseFilter) -> set[str]:
    async with store.read() as tx:
        page = await tx.cases.list(wanted, limit=200)
    return {case.record_id for case in page.items}


async def test_add_and_get(store: Store) -> None:
    record_id = new_id()
    document = {"narrative": "Amenaza contra la lideresa", "victims": [{"name": "Rosa"}]}
    case_index = index(violations=("death_threat",), victim_groups=("woman_hrd",))
    async with store.transaction() as tx:
        added = await tx.cases.add(record_id.upper(), document, case_index, "ana")
    async with store.read() as tx:
        stored = await tx.cases.get(record_id)
    assert added.record_id == stored.record_id == record_id
    assert stored.version == 1
    assert stored.document == document
    assert stored.index == case_index
    assert stored.created_at == stored.updated_at


async def test_adding_an_existing_id_is_refused(store: Store) -> None:
    record_id = await add(store, index())
    with pytest.raises(RecordExists, match=record_id):
        async with store.transaction() as tx:
            await tx.cases.add(record_id, {}, index(), "ana")


async def test_record_id_must_be_a_uuid(store: Store) -> None:
    with pytest.raises(InvalidRecordId, match="not a UUID"):
        async with store.transaction() as tx:
            await tx.cases.add("case-1", {}, index(), "ana")


async def test_unknown_case_is_not_found(store: Store) -> None:
    with pytest.raises(RecordNotFound):
        async with store.read() as tx:
            await tx.cases.get(new_id())


async def test_failed_transaction_writes_nothing(store: Store) -> None:
    record_id = new_id()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.cases.add(record_id, {"n": 1}, index(), "ana")
            raise RuntimeError("abort")
    with pytest.raises(RecordNotFound):
        async with store.read() as tx:
            await tx.cases.get(record_id)


async def test_update_makes_a_new_version_and_keeps_the_old(store: Store) -> None:
    record_id = await add(store, index(violations=("killing",)), {"narrative": "first"})
    async with store.transaction() as tx:
        updated = await tx.cases.update(
            record_id, {"narrative": "second"}, index(country="PH"), "bea", expected_version=1
        )
    assert updated.version == 2
    async with store.read() as tx:
        current = await tx.cases.get(record_id)
        history = await tx.cases.versions(record_id)
    assert current.document == {"narrative": "second"}
    assert current.index == index(country="PH")
    assert current.updated_at > current.created_at
    assert [(v.version, v.author, v.document) for v in history] == [
        (1, "ana", {"narrative": "first"}),
        (2, "bea", {"narrative": "second"}),
    ]


async def test_update_from_a_stale_version_is_refused(store: Store) -> None:
    record_id = await add(store, index())
    async with store.transaction() as tx:
        await tx.cases.update(record_id, {"v": 2}, index(), "ana")
    with pytest.raises(VersionConflict, match="version 2, not 1"):
        async with store.transaction() as tx:
            await tx.cases.update(record_id, {"v": 3}, index(), "bea", expected_version=1)


async def test_update_replaces_the_filter_index(store: Store) -> None:
    record_id = await add(store, index(violations=("killing",), victim_groups=("journalist",)))
    async with store.transaction() as tx:
        await tx.cases.update(record_id, {}, index(violations=("torture",)), "ana")
    assert await listed_ids(store, CaseFilter(violation="killing")) == set()
    assert await listed_ids(store, CaseFilter(victim_group="journalist")) == set()
    assert await listed_ids(store, CaseFilter(violation="torture")) == {record_id}


async def test_filters(store: Store) -> None:
    colombia_killing = await add(
        store, index("CO", violations=("killing",), victim_groups=("indigenous_leader",))
    )
    colombia_threat = await add(
        store,
        index("CO", violations=("death_threat", "surveillance"), victim_groups=("journalist",)),
    )
    kenya_killing = await add(
        store, index("KE", violations=("killing",), victim_groups=("journalist",))
    )
    nowhere = await add(store, index(None))
    assert await listed_ids(store, CaseFilter()) == {
        colombia_killing,
        colombia_threat,
        kenya_killing,
        nowhere,
    }
    assert await listed_ids(store, CaseFilter(country="CO")) == {colombia_killing, colombia_threat}
    assert await listed_ids(store, CaseFilter(violation="killing")) == {
        colombia_killing,
        kenya_killing,
    }
    assert await listed_ids(store, CaseFilter(violation="surveillance")) == {colombia_threat}
    assert await listed_ids(store, CaseFilter(victim_group="journalist")) == {
        colombia_threat,
        kenya_killing,
    }
    assert await listed_ids(
        store, CaseFilter(country="KE", violation="killing", victim_group="journalist")
    ) == {kenya_killing}
    assert await listed_ids(store, CaseFilter(country="PH")) == set()


async def test_period_filter_matches_overlapping_incidents(store: Store) -> None:
    may_2023 = await add(store, index(date_from="2023-05-01", date_to="2023-05-31"))
    year_2022 = await add(store, index(date_from="2022-01-01", date_to="2022-12-31"))
    ongoing_since_2021 = await add(store, index(date_from="2021-03-10"))
    single_day = await add(store, index(date_from="2024-02-29", date_to="2024-02-29"))
    await add(store, index())  # no date: never matches a period

    async def period(start: str | None, end: str | None) -> set[str]:
        return await listed_ids(store, CaseFilter(date_from=start, date_to=end))

    assert await period("2023-05-31", "2023-06-15") == {may_2023, ongoing_since_2021}
    assert await period("2022-12-31", "2023-05-01") == {may_2023, year_2022, ongoing_since_2021}
    assert await period("2020-01-01", "2021-03-09") == set()
    assert await period("2024-02-29", None) == {single_day, ongoing_since_2021}
    assert await period(None, "2021-12-31") == {ongoing_since_2021}


@pytest.mark.parametrize(
    "fields",
    [
        {"country": "co"},
        {"country": "COL"},
        {"date_from": "2023-02-30"},
        {"date_from": "2023-5-1"},
        {"date_from": "2023-W01-1"},
        {"date_to": "20230101"},
        {"date_from": "2023-06-01", "date_to": "2023-05-01"},
        {"violations": frozenset({"has space"})},
        {"unknown": 1},
    ],
)
def test_bad_index_values_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CaseIndex.model_validate(fields)


async def test_pages_cover_every_case_once_newest_first(store: Store) -> None:
    added = [
        await add(store, index("CO" if n % 2 else "KE", violations=("killing",))) for n in range(23)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        async with store.read() as tx:
            page = await tx.cases.list(CaseFilter(violation="killing"), limit=5, cursor=cursor)
        seen += [case.record_id for case in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(added))
    assert pages == 5


async def test_filtered_pages_and_count(store: Store) -> None:
    colombian = [await add(store, index("CO")) for _ in range(7)]
    for _ in range(5):
        await add(store, index("KE"))
    async with store.read() as tx:
        first = await tx.cases.list(CaseFilter(country="CO"), limit=4)
        second = await tx.cases.list(CaseFilter(country="CO"), limit=4, cursor=first.next_cursor)
        count = await tx.cases.count(CaseFilter(country="CO"))
        total = await tx.cases.count()
    assert [c.record_id for c in first.items + second.items] == list(reversed(colombian))
    assert second.next_cursor is None
    assert (count, total) == (7, 12)


async def test_a_forged_cursor_is_refused(store: Store) -> None:
    with pytest.raises(InvalidCursor):
        async with store.read() as tx:
            await tx.cases.list(cursor="bm90IGEgY3Vyc29y")


async def test_page_size_is_bounded(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        async with store.read() as tx:
            await tx.cases.list(limit=0)


async def test_delete_wipes_every_version_and_leaves_a_tombstone(store: Store) -> None:
    record_id = await add(store, index(violations=("killing",), victim_groups=("journalist",)))
    kept = await add(store, index(violations=("killing",)))
    async with store.transaction() as tx:
        await tx.cases.update(record_id, {"v": 2}, index(violations=("killing",)), "bea")
    async with store.transaction() as tx:
        await tx.cases.delete(record_id)

    for read in ("get", "versions"):
        with pytest.raises(RecordDeleted):
            async with store.read() as tx:
                await getattr(tx.cases, read)(record_id)
    with pytest.raises(RecordDeleted):
        async with store.transaction() as tx:
            await tx.cases.update(record_id, {}, index(), "ana")
    assert await listed_ids(store, CaseFilter(violation="killing")) == {kept}
    assert await listed_ids(store, CaseFilter()) == {kept}

    async with store.engine.connect() as raw:
        found = {"id": record_id}
        versions = [tuple(row) for row in await raw.execute(text(
            "SELECT document, author FROM case_versions WHERE record_id = :id"), found)]
        tombstone = tuple((await raw.execute(text(
            "SELECT deleted, country, date_from, date_to FROM cases WHERE record_id = :id"),
            found)).one())
        links = tuple((await raw.execute(text(
            "SELECT count(*) FROM case_violations WHERE record_id = :id"), found)).one())
    assert versions == [(None, None), (None, None)]
    assert tombstone == (1, None, None, None)
    assert links == (0,)


async def test_add_many_stores_a_batch(store: Store) -> None:
    batch = [NewCase(new_id(), {"n": n}, index("KE" if n % 3 else "CO"), "ana") for n in range(12)]
    async with store.transaction() as tx:
        added = await tx.cases.add_many(batch)
    assert [case.record_id for case in added] == [case.record_id for case in batch]
    assert await listed_ids(store, CaseFilter(country="CO")) == {
        case.record_id for n, case in enumerate(batch) if n % 3 == 0
    }


async def test_pages_with_equal_timestamps_still_cover_every_case_once(store: Store) -> None:
    batch = [NewCase(new_id(), {}, index(), "ana") for _ in range(12)]
    async with store.transaction() as tx:
        await tx.cases.add_many(batch)  # one clock reading: all share updated_at
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        async with store.read() as tx:
            page = await tx.cases.list(limit=5, cursor=cursor)
        seen += [case.record_id for case in page.items]
        cursor = page.next_cursor
    assert cursor is None
    assert sorted(seen, reverse=True) == seen
    assert set(seen) == {case.record_id for case in batch}


@pytest.mark.parametrize("clash", ["existing", "twice"])
async def test_add_many_stores_nothing_when_an_id_clashes(store: Store, clash: str) -> None:
    existing = await add(store, index())
    fresh = new_id()
    batch = [NewCase(fresh, {}, index(), "ana"), NewCase(existing, {}, index(), "ana")]
    if clash == "twice":
        batch = [NewCase(fresh, {}, index(), "ana"), NewCase(fresh.upper(), {}, index(), "ana")]
    with pytest.raises(RecordExists):
        async with store.transaction() as tx:
            await tx.cases.add_many(batch)
    assert await listed_ids(store, CaseFilter()) == {existing}
