"""Startup time of the embedded homeserver: one server, and a federated pair over TLS.

Usage: .venv/bin/python bench/homeserver.py [--runs N]

Each run starts fresh servers in a new temporary directory (fresh SQLite databases), waits
until every server answers as itself, and stops them. Prints each run and the median; the last
line is ``one_s=<N> pair_s=<N>`` (medians, seconds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from deploy.homeserver import start_federation, start_homeserver


def _time_one(directory: Path) -> float:
    started = time.perf_counter()
    server = start_homeserver(directory)
    elapsed = time.perf_counter() - started
    server.stop()
    return elapsed


def _time_pair(directory: Path) -> float:
    started = time.perf_counter()
    servers = start_federation(directory, 2)
    elapsed = time.perf_counter() - started
    servers.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    ones, pairs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(runs):
            ones.append(_time_one(Path(scratch) / f"one{run}"))
            pairs.append(_time_pair(Path(scratch) / f"pair{run}"))
            print(f"run {run + 1}: one server {ones[-1]:.2f} s, federated pair {pairs[-1]:.2f} s")
    print(f"median of {runs}: one server {statistics.median(ones):.2f} s,"
          f" federated pair {statistics.median(pairs):.2f} s")
    print(f"one_s={statistics.median(ones):.2f} pair_s={statistics.median(pairs):.2f}")


if __name__ == "__main__":
    main()
