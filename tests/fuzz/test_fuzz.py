"""Every fuzz target runs a bounded number of inputs under atheris in `make test`; `make fuzz`
runs them far longer (tests/fuzz/run.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fuzz.targets import TARGETS
from tests.support import REPO

RUNS = 3_000


def test_every_seed_passes_through_its_parser() -> None:
    for target in TARGETS.values():
        seeds = target.seeds()
        assert seeds, target.name
        for seed in seeds:
            target.one(seed)


def test_a_target_reports_what_its_parser_should_never_raise() -> None:
    """The harness itself: an exception other than the documented refusal escapes."""
    frame = TARGETS["frame"]
    with pytest.raises(TypeError):
        type(frame)(frame.name, frame.seeds, lambda data: len(None),  # type: ignore[arg-type]
                    frame.expected).one(b"{}")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_parser_survives_fuzzing(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", name, f"-runs={RUNS}", "-seed=1"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {RUNS} runs" in done.stderr
