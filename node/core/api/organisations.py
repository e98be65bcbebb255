"""Organisation names beside org ids: every API answer that names organisations by id carries
``organisations``, the name of each of them (one shape for the whole API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from pydantic import Field

from node.core.runtime import Node

OrganisationNames = Annotated[dict[str, str], Field(
    description="the name of every organisation this answer names, by org id "
                "(an organisation this node does not know is named by its id)")]
"""Every answer naming organisations carries ``organisations: OrganisationNames = {}``."""


def named(org_ids: Iterable[str], known: Mapping[str, str]) -> OrganisationNames:
    """The names of ``org_ids`` from ``known`` (org id -> name)."""
    return {org_id: known.get(org_id, org_id) for org_id in sorted(set(org_ids))}


async def known_names(node: Node) -> dict[str, str]:
    """Every organisation this node knows, own included: org id -> name."""
    async with node.store.read() as tx:
        return await tx.orgs.names()
