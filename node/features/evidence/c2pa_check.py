"""Reading a file's C2PA manifest store with the C2PA library (the thin adapter; decision 0031).

The library (``c2pa-python``, the Content Authenticity Initiative's reference implementation)
reads the plaintext file that :func:`.service.make_working_copy` has already written into its
private directory, so no other plaintext touches the disk. It is told never to use the network:
no remote manifests (a file can point at one by URL, which would tell that server who holds the
file) and no certificate revocation (OCSP) requests. No trust list is configured, so a signer is
at best "valid, not on a trust list". :mod:`.credentials` turns the report into our verdict.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Final

import c2pa

from node.features.evidence.credentials import Credentials, Verdict, from_report

log = logging.getLogger(__name__)

SETTINGS: Final = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


@cache
def supported_types() -> frozenset[str]:
    return frozenset(c2pa.Reader.get_supported_mime_types())


def _context() -> c2pa.Context:
    return c2pa.Context(c2pa.Settings.from_json(json.dumps(SETTINGS)))


def read_credentials(path: Path, media_type: str, *, recognised: bool) -> Credentials | None:
    """The verdict on the C2PA manifest of the file at ``path``; None when the library does not
    read this kind of file, or fails on a file where no manifest was recognised (a damaged file
    is not a damaged manifest). ``recognised``: :mod:`.provenance` found a manifest store."""
    if media_type not in supported_types():
        return None
    try:
        with _context() as context, path.open("rb") as source, \
                c2pa.Reader(media_type, source, context=context) as reader:
            report = reader.json()
    except c2pa.C2paError.ManifestNotFound:
        return Credentials(Verdict.NONE)
    except c2pa.C2paError as error:
        log.info("c2pa could not read a %s file: %s", media_type, type(error).__name__)
        return Credentials(Verdict.UNREADABLE) if recognised else None
    return from_report(report)
