"""Run one fuzz target (or all) under atheris, libFuzzer's engine for Python.

    .venv/bin/python -m tests.fuzz.run TARGET [libFuzzer options]    # e.g. -runs=2000
    .venv/bin/python -m tests.fuzz.run all -max_total_time=300       # what `make fuzz` does

The target's seeds are written to a fresh corpus directory; crashes are written under
``tests/artifacts/fuzz/`` (``-artifact_prefix``). The exit status is libFuzzer's: 0 when no
input made the parser raise anything but its documented error.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["federation", "sync", "schemas"]):
    from tests.fuzz.targets import TARGETS

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "fuzz"


def _fuzz(name: str, options: list[str]) -> None:
    target = TARGETS[name]
    corpus = Path(tempfile.mkdtemp(prefix=f"minga-fuzz-{name}-"))
    for number, seed in enumerate(target.seeds()):
        (corpus / f"seed-{number}").write_bytes(seed)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], *options, f"-artifact_prefix={ARTIFACTS}/{name}-", str(corpus)]
    atheris.Setup(argv, target.one)
    atheris.Fuzz()


def main(args: list[str]) -> int:
    if not args or (args[0] not in TARGETS and args[0] != "all"):
        print(f"usage: python -m tests.fuzz.run {{{'|'.join(TARGETS)}|all}} [options]",
              file=sys.stderr)
        return 2
    name, options = args[0], args[1:]
    if name != "all":
        _fuzz(name, options)  # atheris exits the process when done
        return 0
    failed = [each for each in TARGETS
              if subprocess.run([sys.executable, "-m", "tests.fuzz.run", each, *options],
                                check=False).returncode != 0]
    print(f"fuzzed {len(TARGETS)} targets; findings in: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
