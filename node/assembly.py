"""The one place that lists the features a node runs, and the registry they make.

The core (``node.core``) knows no feature; the server, the sync host and the ``minga`` command
get everything feature-specific from the registry built here. To add a feature, write its
package under ``node/features/`` with a ``Feature`` object and add it to :data:`FEATURES`.
The order is the order of API endpoints, pages and dashboard sections.
"""

from __future__ import annotations

from typing import Final

from node.core.registry import Feature, Registry, build_registry
from node.features.accounts import AccountsFeature
from node.features.alerts import AlertsFeature
from node.features.backup import BackupFeature
from node.features.campaigns import CampaignsFeature
from node.features.cases import CasesFeature
from node.features.coalitions import CoalitionsFeature
from node.features.dedup import DedupFeature
from node.features.evidence import EvidenceFeature
from node.features.figures import FiguresFeature
from node.features.keys import KeysFeature
from node.features.sharing import SharingFeature

FEATURES: Final[tuple[Feature, ...]] = (
    AccountsFeature(),
    CoalitionsFeature(),
    CasesFeature(),
    EvidenceFeature(),
    SharingFeature(),
    FiguresFeature(),
    AlertsFeature(),
    CampaignsFeature(),
    DedupFeature(),
    BackupFeature(),
    KeysFeature(),
)


def node_registry() -> Registry:
    """The registry of a node running every feature in :data:`FEATURES`."""
    return build_registry(FEATURES)
