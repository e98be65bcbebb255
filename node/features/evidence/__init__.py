"""Evidence: files attached to cases, kept encrypted and unchanged, with a signed custody log.

The originals are stored encrypted at rest (a key per file, chunked AEAD: :mod:`.chunks`), their
SHA-256 taken while they stream in; the type comes from the content (:mod:`.sniff`); a working
copy without identifying metadata is made with mat2 (:mod:`.cleaning`); every ingest, view,
download, working copy and export is an entry of the attachment's hash-chained, signed custody
log (:mod:`.custody`), which an evidence package (:mod:`.package`) carries to be checked
offline.
"""

from __future__ import annotations

from pathlib import Path

from node.core.registry import Registry
from node.features.evidence import api, cli, pages


class EvidenceFeature:
    name = "evidence"

    def register(self, registry: Registry) -> None:
        registry.endpoints.append(api.endpoint_group)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
        registry.commands.append(cli.add_commands)
