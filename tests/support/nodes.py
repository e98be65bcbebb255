"""Creating real member nodes for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from deploy.homeserver import Homeserver
from node.core.runtime import Node, open_node
from node.core.setup import MatrixAccountChoice, init_node

PASSPHRASE = "test passphrase for member nodes"


async def create_node(
    homeserver: Homeserver, directory: Path, name: str, country: str, http_port: int = 8470
) -> Path:
    """Initialise a node on ``homeserver``; returns its node.toml."""
    result = await init_node(
        data_dir=directory,
        org_name=name,
        country=country,
        homeserver_url=homeserver.url,
        passphrase=PASSPHRASE,
        account=MatrixAccountChoice(
            registration_secret=homeserver.state.registration_shared_secret
        ),
        http_port=http_port,
    )
    return result.config_file


@asynccontextmanager
async def opened(*configs: Path) -> AsyncIterator[list[Node]]:
    """Open several nodes at once (MINGA_PASSPHRASE must be set to PASSPHRASE)."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_node(config)) for config in configs]
