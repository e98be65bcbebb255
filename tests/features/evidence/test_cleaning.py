"""Reading what mat2 would remove: field names only, parts of archives named."""

from __future__ import annotations

from node.features.evidence.cleaning import removed_fields

SHOWN_JPEG = """[+] Metadata for /tmp/w/file.jpg:
    ExifByteOrder: Big-endian (Motorola, MM)
    GPSLatitude: 4 deg 35' 51.00" N
    GPSPosition: 4 deg 35' 51.00" N, 74 deg 4' 33.00" W
    SerialNumber: SN-4455667788
"""
SHOWN_DOCX = """[+] Metadata for /tmp/w/file.docx:
[++] Metadata for docProps/core.xml:
      cp:lastModifiedBy: Ana Testigo
      dc:creator: Ana Testigo
[++] Metadata for word/document.xml:
      date_time: 2024-01-01 00:00:00
"""


def test_names_not_values() -> None:
    assert removed_fields(SHOWN_JPEG) == ("GPSLatitude", "GPSPosition", "SerialNumber")
    assert "4455667788" not in repr(removed_fields(SHOWN_JPEG))


def test_parts_of_an_office_document_are_named() -> None:
    assert removed_fields(SHOWN_DOCX) == ("docProps/core.xml: cp:lastModifiedBy",
                                          "docProps/core.xml: dc:creator",
                                          "word/document.xml: date_time")


def test_nothing_shown_is_nothing_removed() -> None:
    assert removed_fields("  No metadata found in /tmp/w/file.png.\n") == ()
