"""Evidence: files attached to cases, kept encrypted and unchanged, with a signed custody log.

The originals are stored encrypted at rest (a key per file, chunked AEAD: :mod:`.chunks`), their
SHA-256 taken while they stream in; the type comes from the content (:mod:`.sniff`); a working
copy without identifying metadata is made with mat2 (:mod:`.cleaning`); every ingest, view,
download, working copy, share, retraction and export is an entry of the attachment's
hash-chained, signed custody log (:mod:`.custody`), which an evidence package (:mod:`.package`)
carries to be checked offline.

Files are shared through the one sharing path (:mod:`.sending`): each travels sealed through the
homeserver's media repository, its key and hashes in the recipient's signed record; the
recipient fetches, checks and keeps it (:mod:`.receiving`), and shows it with the received
record (:mod:`.received_pages`).

The sharing feature reaches this one through the names exported here.
"""

from __future__ import annotations

from pathlib import Path

from node.core.registry import Registry
from node.features.evidence import api, cli, countersign, pages, received_pages
from node.features.evidence.attachments import Attachment
from node.features.evidence.custody import Copy
from node.features.evidence.outgoing import EvidenceDamaged
from node.features.evidence.pages import human_size
from node.features.evidence.received_files import ReceivedFile
from node.features.evidence.received_pages import public_claims, received_files_of
from node.features.evidence.receiving import fetch_duty, on_record
from node.features.evidence.sending import (
    FileNotShareable,
    retract_case_files,
    share_case_with_files,
)
from node.features.evidence.service import case_attachments
from node.features.evidence.transfer import FileChoice

__all__ = [
    "Attachment",
    "Copy",
    "EvidenceDamaged",
    "EvidenceFeature",
    "FileChoice",
    "FileNotShareable",
    "ReceivedFile",
    "case_attachments",
    "human_size",
    "public_claims",
    "received_files_of",
    "retract_case_files",
    "share_case_with_files",
]


class EvidenceFeature:
    name = "evidence"

    def register(self, registry: Registry) -> None:
        registry.endpoints.append(api.endpoint_group)
        registry.add_pages([*pages.ROUTES, *received_pages.ROUTES],
                           templates=Path(__file__).parent / "templates")
        registry.web.static_dirs.append(Path(__file__).parent / "static")  # upload progress
        registry.commands.append(cli.add_commands)
        registry.handle_kinds(["case", "retraction"], on_record)
        registry.handle_kinds([countersign.REQUEST_KIND], countersign.on_request)
        registry.handle_kinds([countersign.ANSWER_KIND], countersign.on_countersignature)
        registry.duties.append(fetch_duty)
