"""Cases: the case form, search, import and export, and the casebook that keeps versions.

The public surface other features use: the casebook's :func:`stored_record` and
:func:`withdraw_consent`, the export's
:func:`own_case_records`, the case form, and the API's store errors (:func:`store_answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.features.cases import cli, pages
from node.features.cases.api import CaseEndpoints, store_answers
from node.features.cases.case_form import CaseForm
from node.features.cases.casebook import stored_record, withdraw_consent
from node.features.cases.exporting import own_case_records
from node.features.cases.files_api import CaseFileEndpoints
from node.features.cases.pages import ONE

__all__ = [
    "ONE",
    "CaseForm",
    "CasesFeature",
    "own_case_records",
    "store_answers",
    "stored_record",
    "withdraw_consent",
]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return CaseEndpoints(node, now).endpoints()


def _file_endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return CaseFileEndpoints(node, now).endpoints()


class CasesFeature:
    name = "cases"

    def register(self, registry: Registry) -> None:
        registry.endpoints.append(_endpoints)
        registry.endpoints.append(_file_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
        registry.commands.append(cli.add_commands)
