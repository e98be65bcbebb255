"""The pure parts of health and metrics: judging the facts, naming readings (decision 0028)."""

from __future__ import annotations

import pytest

from node.core.monitoring import Reading
from node.core.monitoring.health import SYNC_STALE_SECONDS, HealthFacts, judge

HEALTHY = HealthFacts(store_open=True, homeserver_answers=True, sync_running=True,
                      seconds_since_sync=3.0)


def test_a_working_node_has_no_problem() -> None:
    assert judge(HEALTHY) == []


def test_each_failure_is_named() -> None:
    facts = HealthFacts(store_open=False, homeserver_answers=False, sync_running=False,
                        seconds_since_sync=None)
    assert judge(facts) == ["store: closed or not answering", "homeserver: not answering",
                            "sync: not running"]


def test_a_sync_that_never_finished_or_is_old_is_a_problem() -> None:
    never = HealthFacts(True, True, True, None)
    assert judge(never) == ["sync: no sync with the homeserver has finished yet"]
    old = HealthFacts(True, True, True, SYNC_STALE_SECONDS + 12.5)
    assert judge(old) == [f"sync: last finished {SYNC_STALE_SECONDS + 12} s ago"
                          f" (more than {SYNC_STALE_SECONDS} s)"]
    assert judge(HealthFacts(True, True, True, SYNC_STALE_SECONDS)) == []


@pytest.mark.parametrize("name", ["cases_open", "minga_Cases", "minga_shared_total", "minga_",
                                  "minga_case{id}"])
def test_a_reading_needs_a_plain_minga_name(name: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        Reading(name, "help", 1)
