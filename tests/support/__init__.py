"""What the tests share: node and homeserver harnesses, and the files they read."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
DATA = SUPPORT / "data"
VECTORS = SUPPORT / "vectors"
ARTIFACTS = REPO / "tests" / "artifacts"
