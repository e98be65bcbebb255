"""Joint campaigns: proposals, endorsements, campaign rooms, posts and sign-on letters, and the
check for an overlapping campaign before proposing one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation.transport import MatrixTransport
from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.features.campaigns import pages
from node.features.campaigns.api import CampaignEndpoints, LetterEndpoints
from node.features.campaigns.check import CampaignDraft, check_against_node
from node.features.campaigns.records import CAMPAIGN_KINDS, keep_received
from node.features.campaigns.service import (
    campaign_room_of,
    leave_coalition_campaigns,
    other_members,
    replace_campaign_rooms,
    replacing_campaign_room,
    run_campaign_duties,
)

__all__ = ["CampaignDraft", "CampaignsFeature", "check_against_node", "other_members"]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return [*CampaignEndpoints(node, now).endpoints(), *LetterEndpoints(node, now).endpoints()]


async def _duties(node: Node, transport: MatrixTransport) -> None:
    await run_campaign_duties(node)


class CampaignsFeature:
    name = "campaigns"

    def register(self, registry: Registry) -> None:
        registry.handle_kinds(sorted(CAMPAIGN_KINDS), keep_received)
        registry.duties.append(_duties)
        registry.room_recognisers.append(replacing_campaign_room)
        registry.room_replacers.append(replace_campaign_rooms)
        registry.room_owners.append(campaign_room_of)
        registry.coalition_left.append(leave_coalition_campaigns)
        registry.endpoints.append(_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
