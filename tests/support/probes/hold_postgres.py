"""Run only by tests/deploy/test_no_orphans.py: a test run that holds the session's PostgreSQL
server until it is killed.

Its name does not start with ``test_`` so the normal suite never collects it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support.postgres import PostgresServer


def test_hold_postgres_until_killed(postgres: PostgresServer) -> None:
    assert postgres.process is not None
    Path(os.environ["MINGA_PROBE_PID_FILE"]).write_text(f"{postgres.process.pid}\n")
    time.sleep(600)
