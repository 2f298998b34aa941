"""Where the bits go: shift slots of a layout, and the keyed map from slots to code
positions.

A *line slot* is a line moved up or down between two unmoved neighbour lines; a
*word slot* is a word moved left or right between two unmoved neighbour words of its
line. Unmoved neighbours are the references the reader measures against, so a slot's
reading does not depend on how well the whole page was registered.

Keyed map (``relto.tracing.docmark.v1``): k = HKDF-SHA256(IKM=key,
salt="relto.tracing.docmark.v1", info="slots", 32 bytes). AES-256-CTR under k gives
8-byte big-endian numbers; counter block 0 (16 zero bytes) drives a Fisher-Yates
shuffle of the m code positions, counter block p+1 (8 bytes big-endian ‖ 0⁸) one of
page p's slots. The shuffled slots of all pages, concatenated in page order, carry
positions perm[r mod m] at rank r: a position's repeats are m slots apart, hence on
different pages whenever a page holds fewer than m slots.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relto.tracing._doc.layout import Layout, Line

__all__ = ["Slot", "assign", "slots_of"]

SALT = b"relto.tracing.docmark.v1"
MIN_LINE_INK = 30.0  # points of text a line needs to be moved or to serve as reference
MIN_WORD_WIDTH = 4.0  # points; narrower words ("." or "I") are neither moved nor references


@dataclass(frozen=True, slots=True)
class Slot:
    page: int
    line: int
    word: int | None  # None: a line slot; else the index of the moved word
    before: int  # the unmoved neighbour (line or word index) before it
    after: int  # ... and after it


def _ink_width(line: Line) -> float:
    return sum(w.x1 - w.x0 for w in line.words)


def _page_slots(page_no: int, lines: tuple[Line, ...]) -> list[Slot]:
    out: list[Slot] = []
    ok = [_ink_width(line) >= MIN_LINE_INK for line in lines]
    i = 1
    while i + 1 < len(lines):
        if ok[i - 1] and ok[i] and ok[i + 1]:
            out.append(Slot(page_no, i, None, i - 1, i + 1))
            i += 2
        else:
            i += 1
    for li, line in enumerate(lines):
        wide = [w.x1 - w.x0 >= MIN_WORD_WIDTH for w in line.words]
        j = 1
        while j + 1 < len(line.words):
            if wide[j - 1] and wide[j] and wide[j + 1]:
                out.append(Slot(page_no, li, j, j - 1, j + 1))
                j += 2
            else:
                j += 1
    return out


def slots_of(layout: Layout) -> list[list[Slot]]:
    """Each page's slots, in a fixed order (line slots, then word slots by line)."""
    return [_page_slots(p, page.lines) for p, page in enumerate(layout.pages)]


class _Stream:
    def __init__(self, key: bytes, block: int) -> None:
        counter = block.to_bytes(8, "big") + bytes(8)
        self._enc = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()

    def below(self, n: int) -> int:
        """A number in [0, n); the modulo bias is below 2^-40 for n < 2^24."""
        return int.from_bytes(self._enc.update(bytes(8)), "big") % n


def _shuffle(items: list[int], stream: _Stream) -> list[int]:
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = stream.below(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def assign(page_slots: list[list[Slot]], key: bytes, length: int) -> list[tuple[Slot, int]]:
    """Every slot with the code position it carries (keyed, see the module text)."""
    if length <= 0:
        raise ValueError("the code length must be positive")
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=b"slots").derive(bytes(key))
    perm = _shuffle(list(range(length)), _Stream(k, 0))
    out: list[tuple[Slot, int]] = []
    for p, slots in enumerate(page_slots):
        order = _shuffle(list(range(len(slots))), _Stream(k, p + 1))
        for idx in order:
            out.append((slots[idx], perm[len(out) % length]))
    return out
