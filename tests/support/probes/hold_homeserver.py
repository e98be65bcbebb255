"""Run only by tests/deploy/test_no_orphans.py: a test run that holds a homeserver until it is
killed.

Its name does not start with ``test_`` so the normal suite never collects it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from deploy.homeserver import Homeserver


def test_hold_homeserver_until_killed(homeserver: Homeserver) -> None:
    Path(os.environ["MINGA_PROBE_PID_FILE"]).write_text(f"{homeserver.pid}\n")
    time.sleep(600)
