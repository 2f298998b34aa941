"""Source text -> blocks -> a deterministic page layout (points, y down from the top).

The layout depends on the content only: the same content always gives the same
pages, lines and word boxes, which is what lets the reader re-render the reference.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from reportlab.pdfbase.pdfmetrics import stringWidth

from relto.errors import InvalidInput

__all__ = [
    "BODY_BOTTOM",
    "BODY_TOP",
    "MARGIN_X",
    "PAGE_H",
    "PAGE_W",
    "Block",
    "Layout",
    "Line",
    "PageLayout",
    "Word",
    "blocks_from_content",
    "lay_out",
]

# A4 in points; body text between the top and bottom marking bands.
PAGE_W = 595.2756
PAGE_H = 841.8898
MARGIN_X = 72.0
BODY_TOP = 84.0  # y of the top of the first line box
BODY_BOTTOM = PAGE_H - 84.0  # no line box may reach below this
TEXT_W = PAGE_W - 2 * MARGIN_X

BODY_FONT = "Helvetica"
BOLD_FONT = "Helvetica-Bold"
BODY_SIZE = 11.0
BODY_LEADING = 16.0
PARA_GAP = 5.0  # after a paragraph, heading or list item
GAP = 8.0  # a blank line in plain text
HEADING = {1: (17.0, 24.0), 2: (14.0, 20.0), 3: (12.5, 18.0)}  # level -> size, leading
HEADING_GAP = 8.0
BULLET_INDENT = 16.0

MAX_CHARS = 4_000_000  # the text we are willing to lay out
MAX_PAGES = 400


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph, heading or list item of the source, as plain text."""

    kind: str  # "p" paragraph, "l" a plain-text line, "h1".."h3", "li", "gap"
    text: str
    marker: str = ""  # list marker ("•", "3.") for kind "li"


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    x0: float
    x1: float


@dataclass(frozen=True, slots=True)
class Line:
    font: str
    size: float
    baseline: float
    words: tuple[Word, ...]
    marker: Word | None = None  # a list marker drawn before the words, never shifted


@dataclass(frozen=True, slots=True)
class PageLayout:
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    pages: tuple[PageLayout, ...]


# -- sources -------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(text: str) -> str:
    """Text the built-in fonts can draw: cp1252 characters; anything else -> '?'."""
    text = _CONTROL.sub("", text.replace("\t", "    ").replace("\u00a0", " "))
    out = []
    for ch in text:
        try:
            ch.encode("cp1252")
        except UnicodeEncodeError:
            ch = "?"
        out.append(ch)
    return "".join(out)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def _plain_blocks(text: str) -> list[Block]:
    """Every source line is its own paragraph; blank lines leave a gap."""
    blocks: list[Block] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        blocks.append(Block("l", line) if line else Block("gap", ""))
    return blocks


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_MD_NUMBER = re.compile(r"^\s*(\d{1,4})[.)]\s+(.*)$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_MD_EMPH = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


def _md_inline(text: str) -> str:
    text = _MD_LINK.sub(
        lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1), text
    )
    for _ in range(3):
        text = _MD_EMPH.sub(lambda m: m.group(2), text)
    return " ".join(text.split())


def _markdown_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    fence = False

    def flush() -> None:
        if para:
            blocks.append(Block("p", _md_inline(" ".join(para))))
            para.clear()

    for raw in text.splitlines():
        if raw.strip().startswith(("```", "~~~")):
            flush()
            fence = not fence
            continue
        if fence:
            line = " ".join(raw.split())
            blocks.append(Block("l", line) if line else Block("gap", ""))
            continue
        if not raw.strip():
            flush()
            continue
        if m := _MD_HEADING.match(raw):
            flush()
            blocks.append(Block(f"h{min(len(m.group(1)), 3)}", _md_inline(m.group(2))))
        elif m := _MD_BULLET.match(raw):
            flush()
            blocks.append(Block("li", _md_inline(m.group(1)), "\u2022"))
        elif m := _MD_NUMBER.match(raw):
            flush()
            blocks.append(Block("li", _md_inline(m.group(2)), f"{m.group(1)}."))
        elif re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", raw):
            flush()
            blocks.append(Block("gap", ""))
        else:
            para.append(raw.strip().lstrip(">").strip())
    flush()
    return blocks


def _pdf_blocks(content: bytes) -> list[Block]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(content)
    except pdfium.PdfiumError as exc:
        raise InvalidInput("the PDF could not be read") from exc
    try:
        if len(pdf) > MAX_PAGES:
            raise InvalidInput(f"the PDF has more than {MAX_PAGES} pages")
        blocks: list[Block] = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            textpage.close()
            page.close()
            if i:
                blocks.append(Block("gap", ""))
            blocks.extend(_plain_blocks(text.replace("\r\n", "\n").replace("\r", "\n")))
        return blocks
    finally:
        pdf.close()


def _docx_blocks(content: bytes) -> list[Block]:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(content))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidInput("the .docx file could not be read") from exc
    blocks: list[Block] = []
    for para in document.paragraphs:
        text = " ".join(para.text.split())
        style = (para.style.name if para.style is not None else "") or ""
        if not text:
            blocks.append(Block("gap", ""))
        elif style.startswith("Heading") or style == "Title":
            level = int(style[-1]) if style[-1:].isdigit() else 1
            blocks.append(Block(f"h{min(max(level, 1), 3)}", text))
        elif "List" in style:
            blocks.append(Block("li", text, "\u2022"))
        else:
            blocks.append(Block("p", text))
    return blocks


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def source_kind(media_type: str, filename: str) -> str | None:
    """'text', 'markdown', 'pdf', 'docx', or None for content we do not render."""
    media = media_type.split(";")[0].strip().lower()
    name = filename.lower()
    if media == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if media == DOCX or name.endswith(".docx"):
        return "docx"
    if media in ("text/markdown", "text/x-markdown") or name.endswith((".md", ".markdown")):
        return "markdown"
    if media == "text/plain" or name.endswith(".txt"):
        return "text"
    return None


def blocks_from_content(content: bytes, media_type: str, filename: str) -> list[Block]:
    kind = source_kind(media_type, filename)
    if kind is None:
        raise InvalidInput(f"documents of type {media_type!r} are not rendered")
    if kind == "pdf":
        blocks = _pdf_blocks(content)
    elif kind == "docx":
        blocks = _docx_blocks(content)
    else:
        text = _decode(content)
        if len(text) > MAX_CHARS:
            raise InvalidInput("the document is too long to render")
        blocks = _markdown_blocks(text) if kind == "markdown" else _plain_blocks(text)
    blocks = [Block(b.kind, _printable(b.text), b.marker) for b in blocks]
    if sum(len(b.text) for b in blocks) > MAX_CHARS:
        raise InvalidInput("the document is too long to render")
    return blocks


# -- layout --------------------------------------------------------------------------


def _wrap(text: str, font: str, size: float, width: float) -> list[list[str]]:
    space = stringWidth(" ", font, size)
    lines: list[list[str]] = []
    current: list[str] = []
    used = 0.0
    for word in text.split():
        w = stringWidth(word, font, size)
        while w > width:  # a word wider than the line: cut it
            cut = len(word)
            while cut > 1 and stringWidth(word[:cut], font, size) > width:
                cut -= 1
            if current:
                lines.append(current)
                current, used = [], 0.0
            lines.append([word[:cut]])
            word = word[cut:]
            w = stringWidth(word, font, size)
        if current and used + space + w > width:
            lines.append(current)
            current, used = [], 0.0
        used += (space if current else 0.0) + w
        current.append(word)
    if current:
        lines.append(current)
    return lines


def _words(tokens: list[str], x: float, font: str, size: float) -> tuple[Word, ...]:
    space = stringWidth(" ", font, size)
    out = []
    for token in tokens:
        w = stringWidth(token, font, size)
        out.append(Word(token, x, x + w))
        x += w + space
    return tuple(out)


def lay_out(blocks: list[Block]) -> Layout:
    """Greedy, deterministic: left-aligned lines, fixed leading, A4."""
    pages: list[PageLayout] = []
    lines: list[Line] = []
    top = BODY_TOP

    def place(height: float) -> float:
        nonlocal top, lines
        if top + height > BODY_BOTTOM and lines:
            pages.append(PageLayout(tuple(lines)))
            if len(pages) > MAX_PAGES:
                raise InvalidInput(f"the document would take more than {MAX_PAGES} pages")
            lines, top = [], BODY_TOP
        y = top
        top += height
        return y

    for block in blocks:
        if block.kind == "gap":
            if lines:
                top += GAP
            continue
        if block.kind.startswith("h"):
            size, leading = HEADING[int(block.kind[1])]
            font = BOLD_FONT
            if lines:
                top += HEADING_GAP
        else:
            size, leading, font = BODY_SIZE, BODY_LEADING, BODY_FONT
        indent = BULLET_INDENT if block.kind == "li" else 0.0
        wrapped = _wrap(block.text, font, size, TEXT_W - indent)
        for i, tokens in enumerate(wrapped):
            y = place(leading)
            baseline = y + leading * 0.72
            marker = None
            if block.kind == "li" and i == 0:
                mw = stringWidth(block.marker, font, size)
                marker = Word(block.marker, MARGIN_X + 2.0, MARGIN_X + 2.0 + mw)
            words = _words(tokens, MARGIN_X + indent, font, size)
            lines.append(Line(font, size, baseline, words, marker))
        if block.kind != "l":
            top += PARA_GAP
    if lines or not pages:
        pages.append(PageLayout(tuple(lines)))
    return Layout(tuple(pages))
