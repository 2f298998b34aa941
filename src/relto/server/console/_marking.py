"""The marking a console page carries in its banner, top and bottom.

A page is marked with the highest marking among the documents it shows (their
titles, banners or contents). Documents are ordered on the partnership's common
scale (``relto.partnership.CLASSIFICATIONS``), where each document's level lands
through the SPIF equivalences of :mod:`relto.labels` (``DocumentView.common_level``,
computed by :func:`relto.documents.common_level`). No new scale is made here.

- One document, or several with the same banner: that document's banner, the
  very string lists, flash messages, downloads (``X-Relto-Marking``) and the API
  show for it.
- Several: the highest level (the documents' own classification when all the
  highest share one, else its name on the common scale) and Releasable To only
  to the nations every document is releasable to (releasability intersects, as
  in :func:`relto.labels.dominant_label`).
- None: the node's floor (``RELTO_CONSOLE_MARKING_FLOOR``, UNCLASSIFIED by
  default), which is also the least any page carries.

Fail closed: a document whose level has no equivalence on the common scale
ranks above everything, so a page is never marked lower than what it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relto.documents import DocumentView
from relto.partnership import CLASSIFICATIONS

__all__ = ["UNRANKED", "PageMarking", "page_marking"]

#: The colour class of a level the common scale does not know.
UNRANKED = "UNRANKED"


@dataclass(frozen=True)
class PageMarking:
    """A page's banner text and its level on the common scale (for the colour)."""

    text: str
    level: str

    @property
    def css(self) -> str:
        return "level-" + self.level.replace(" ", "-")


def _rank(level: str) -> int:
    try:
        return CLASSIFICATIONS.index(level)
    except ValueError:
        return len(CLASSIFICATIONS)


def page_marking(documents: Iterable[DocumentView], floor: str) -> PageMarking:
    """The marking of a page showing ``documents`` (see the module docstring)."""
    if floor not in CLASSIFICATIONS:
        raise ValueError(f"the marking floor must be one of {', '.join(CLASSIFICATIONS)}")
    docs: Sequence[DocumentView] = list({d.id: d for d in documents}.values())
    if not docs:
        return PageMarking(floor, floor)
    top_rank = max(_rank(d.common_level) for d in docs)
    top = [d for d in docs if _rank(d.common_level) == top_rank]
    level = top[0].common_level if top_rank < len(CLASSIFICATIONS) else UNRANKED
    if top_rank < _rank(floor):
        return PageMarking(floor, floor)
    if len({d.banner for d in docs}) == 1:
        return PageMarking(docs[0].banner, level)
    own = {(d.originator, d.classification) for d in top}
    if len(own) == 1:
        classification = top[0].classification
    elif level != UNRANKED:
        classification = level
    else:  # several levels nobody can compare: name them all
        classification = " / ".join(sorted({d.classification for d in top}))
    common = frozenset.intersection(*(d.releasable for d in docs))
    if common:
        return PageMarking(f"{classification}//REL TO {', '.join(sorted(common))}", level)
    return PageMarking(f"{classification}//NO COMMON RELEASABILITY", level)
