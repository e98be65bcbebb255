"""File types come from the content, never the name."""

from __future__ import annotations

from node.features.evidence.sniff import UNKNOWN, sniff
from tests.features.evidence.samples import jpeg_with_gps, office_document, pdf_with_author


def test_a_jpeg_a_pdf_and_a_docx_are_recognised_by_their_bytes() -> None:
    assert sniff(jpeg_with_gps()).media_type == "image/jpeg"
    assert sniff(pdf_with_author()).media_type == "application/pdf"
    assert sniff(office_document()).extension == "docx"


def test_text_and_unknown_bytes() -> None:
    assert sniff("Testimonio de un familiar, año 2024\n".encode()).media_type == "text/plain"
    assert sniff(b"\x00\x01\x02garbage").media_type == UNKNOWN
    assert sniff(b"").media_type == UNKNOWN
