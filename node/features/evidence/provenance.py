"""Provenance manifests a file may carry: C2PA content credentials and ProofMode bundles (pure).

The original is kept byte for byte, so whatever manifest it carries is kept. This module only
*recognises* one, from the file's structure, so that the pages can say so: a C2PA manifest
store (JUMBF) in a JPEG's APP11 segments, a PNG ``caBX`` chunk or a WebP ``C2PA`` chunk; a
ProofMode proof bundle (a ZIP holding ``*.proof.json`` and OpenPGP signatures). C2PA manifests
are then verified with the C2PA library (:mod:`.c2pa_check`, decision 0031), ProofMode bundles
with ``gpg`` (:mod:`.proofmode_check`).
"""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path
from typing import Final

SCAN_BYTES: Final = 1024 * 1024
"""How much of the start of a file is read to find a manifest (JPEG metadata segments and PNG
chunks before the image data come first)."""


class Manifest(StrEnum):
    NONE = ""
    C2PA = "c2pa"
    PROOFMODE = "proofmode"


def _jpeg_has_c2pa(data: bytes) -> bool:
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            return False
        length = int.from_bytes(data[position + 2:position + 4], "big")
        segment = data[position + 4:position + 2 + length]
        if marker == 0xEB and segment[:2] == b"JP" and b"jumb" in segment and b"c2pa" in segment:
            return True
        position += 2 + length
    return False


def _png_has_c2pa(data: bytes) -> bool:
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        if kind == b"caBX":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        position += 12 + length
    return False


def _webp_has_c2pa(data: bytes) -> bool:
    position = 12
    while position + 8 <= len(data):
        kind = data[position:position + 4]
        if kind == b"C2PA":
            return True
        length = int.from_bytes(data[position + 4:position + 8], "little")
        position += 8 + length + (length & 1)
    return False


def _is_proofmode_bundle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return (any(name.endswith(".proof.json") for name in names)
            and any(name.endswith(".asc") for name in names))


def find_manifest(head: bytes, media_type: str, *, zip_path: Path | None = None) -> Manifest:
    """The manifest the file starting with ``head`` (up to :data:`SCAN_BYTES`) carries; a ZIP
    is only recognised from the file at ``zip_path`` (its directory is at its end)."""
    if media_type == "image/jpeg" and head[:2] == b"\xff\xd8" and _jpeg_has_c2pa(head):
        return Manifest.C2PA
    if media_type == "image/png" and _png_has_c2pa(head):
        return Manifest.C2PA
    if media_type == "image/webp" and head[:4] == b"RIFF" and _webp_has_c2pa(head):
        return Manifest.C2PA
    if media_type == "application/zip" and zip_path is not None \
            and _is_proofmode_bundle(zip_path):
        return Manifest.PROOFMODE
    return Manifest.NONE
