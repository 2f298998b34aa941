"""A tiny fake embedder for the fingerprinted-copy tests (never in the product).

Its "copy" is ``%FAKE`` and a JSON line naming the original (SHA-256), the key
(a hash of it) and the codeword in clear; its "pages" are those JSON objects. A
leaked file is made by editing them (erasing or mixing bits), which is what a real
embedder's extraction reports after damage or collusion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from relto.tracing.embedding import Copy, Marking, Reading

MAGIC = b"%FAKE\n"


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeEmbedder:
    """Handles ``text/*``; the copy carries the bits in clear."""

    def __init__(self) -> None:
        self.embedded: list[Marking] = []

    def accepts(self, media_type: str, filename: str) -> bool:
        return media_type.startswith("text/")

    def embed(
        self,
        content: bytes,
        media_type: str,
        filename: str,
        bits: Sequence[int],
        key: bytes,
        marking: Marking,
    ) -> Copy:
        self.embedded.append(marking)
        page = {
            "ref": _h(content),
            "key": _h(key)[:16],
            "bits": "".join(str(b) for b in bits),
            "recipient": marking.recipient,
            "copy": marking.copy_number,
            "banner": marking.banner,
        }
        return Copy(MAGIC + json.dumps(page).encode(), "application/pdf", ".pdf", len(bits), 1)

    def locate(self, pages: Sequence[Any], content: bytes, media_type: str, filename: str) -> float:
        return 1.0 if any(p.get("ref") == _h(content) for p in pages) else 0.0

    def extract(
        self,
        pages: Sequence[Any],
        content: bytes,
        media_type: str,
        filename: str,
        key: bytes,
        length: int,
    ) -> Reading:
        for p in pages:
            if p.get("ref") == _h(content) and p.get("key") == _h(key)[:16]:
                text = str(p["bits"])
                bits = tuple(None if c == "x" else int(c) for c in text[:length])
                return Reading(bits + (None,) * (length - len(bits)), 1.0, ("fake page",))
        return Reading((None,) * length, 0.0, ("nothing read",))


def load_pages(data: bytes) -> list[dict[str, Any]]:
    if not data.startswith(MAGIC):
        return [{}]
    page = json.loads(data[len(MAGIC) :])
    return [page if isinstance(page, dict) else {}]


def page_of(copy: bytes) -> dict[str, Any]:
    return load_pages(copy)[0]


def leak(pages: Sequence[dict[str, Any]], keep: float = 1.0) -> bytes:
    """A pirate copy: where the copies agree, their bit; where they differ, the
    first copy's (any choice obeys the marking assumption); only the first
    ``keep`` share of the positions read, the rest erased."""
    words = [str(p["bits"]) for p in pages]
    length = len(words[0])
    kept = int(length * keep)
    bits = "".join(words[0][i] if i < kept else "x" for i in range(length))
    return MAGIC + json.dumps({**pages[0], "bits": bits}).encode()
