"""The PDF writer: a layout, optional shifts, optional visible marking -> PDF bytes.

Each line is one text object; each word is placed with its own text origin and
written with its trailing space, so the PDF holds ordinary selectable text (the
words, single spaces, line ends) and nothing else.
"""

from __future__ import annotations

import io

from reportlab.lib.colors import Color
from reportlab.pdfgen.canvas import Canvas

from relto.tracing._doc.layout import PAGE_H, PAGE_W, Layout, _printable
from relto.tracing.embedding import Marking

__all__ = ["write_pdf"]

BANNER_FONT = "Helvetica-Bold"
BANNER_SIZE = 10.0
MARK_FONT = "Helvetica"
MARK_SIZE = 8.0
REF_SIZE = 6.0
BANNER_RED = Color(0.70, 0.0, 0.0)


def _marking(canvas: Canvas, marking: Marking, page_no: int, pages: int) -> None:
    banner = _printable(marking.banner)
    who = _printable(
        f"Copy {marking.copy_number} \u2014 issued to {marking.recipient} ({marking.nation})"
    )
    ref = _printable(f"{marking.object_ref} \u00b7 page {page_no} of {pages}")
    canvas.setFillColor(BANNER_RED)
    canvas.setFont(BANNER_FONT, BANNER_SIZE)
    canvas.drawCentredString(PAGE_W / 2, PAGE_H - 30.0, banner)
    canvas.drawCentredString(PAGE_W / 2, 22.0, banner)
    canvas.setFillColor(Color(0, 0, 0))
    canvas.setFont(MARK_FONT, MARK_SIZE)
    canvas.drawCentredString(PAGE_W / 2, PAGE_H - 44.0, who)
    canvas.drawCentredString(PAGE_W / 2, 36.0, who)
    canvas.setFont(MARK_FONT, REF_SIZE)
    canvas.drawRightString(PAGE_W - 36.0, 12.0, ref)


def write_pdf(
    layout: Layout,
    line_dy: dict[tuple[int, int], float],
    word_dx: dict[tuple[int, int, int], float],
    marking: Marking | None,
    title: str = "",
) -> bytes:
    """``line_dy`` moves lines down (points, + is down); ``word_dx`` moves words right."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(PAGE_W, PAGE_H), invariant=True, pageCompression=1)
    if title:
        canvas.setTitle(_printable(title))
    pages = len(layout.pages)
    for p, page in enumerate(layout.pages):
        if marking is not None:
            _marking(canvas, marking, p + 1, pages)
        for li, line in enumerate(page.lines):
            y = PAGE_H - (line.baseline + line_dy.get((p, li), 0.0))
            text = canvas.beginText()
            text.setFont(line.font, line.size)
            if line.marker is not None:
                text.setTextOrigin(line.marker.x0, y)
                text.textOut(line.marker.text + " ")
            last = len(line.words) - 1
            for wi, word in enumerate(line.words):
                text.setTextOrigin(word.x0 + word_dx.get((p, li, wi), 0.0), y)
                text.textOut(word.text if wi == last else word.text + " ")
            canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return out.getvalue()
