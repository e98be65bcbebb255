"""The record of the last backup, and doctor's rule on its age."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.core.doctor import Level
from node.features.backup.record import (
    LAST_BACKUP_FILE,
    MAX_BACKUP_AGE_SECONDS,
    judge_backup_age,
    last_backup_time,
    record_backup,
)

NOW = 1_800_000_000


def test_no_backup_is_a_warning() -> None:
    [finding] = judge_backup_age(None, NOW)
    assert finding.level is Level.warning and "minga backup create" in finding.fix


@pytest.mark.parametrize(("age", "flagged"), [
    (0, False), (3600, False), (MAX_BACKUP_AGE_SECONDS, False),
    (MAX_BACKUP_AGE_SECONDS + 1, True), (30 * 24 * 3600, True)])
def test_a_backup_older_than_two_days_is_a_problem(age: int, flagged: bool) -> None:
    findings = judge_backup_age(NOW - age, NOW)
    assert bool(findings) == flagged
    if flagged:
        assert findings[0].level is Level.problem
        assert f"{age / 3600:.0f} hours old" in findings[0].message


def test_a_backup_from_the_future_is_a_clock_problem() -> None:
    [finding] = judge_backup_age(NOW + 3600, NOW)
    assert "future" in finding.message and finding.level is Level.problem
    assert judge_backup_age(NOW + 60, NOW) == []


def test_the_record_round_trips_and_bad_records_count_as_none(tmp_path: Path) -> None:
    assert last_backup_time(tmp_path) is None
    record_backup(tmp_path, NOW, "node-2027-01-15.minga-backup")
    assert last_backup_time(tmp_path) == NOW
    for bad in ("not json", "[]", '{"created_at": "yesterday"}', '{"created_at": true}'):
        (tmp_path / LAST_BACKUP_FILE).write_text(bad)
        assert last_backup_time(tmp_path) is None
