"""How far this node's log is witnessed: which pinned partners' witnesses cosigned
a checkpoint, against how many are required (``RELTO_AUDIT_MIN_COSIGNATURES``).

Nothing kept is believed as it is: a checkpoint is verified again against this
node's log key, and each stored cosignature against the witness key of the
partner's descriptor **as pinned now** (:class:`~relto.audit.witnessing.Partner`),
so a partner untrusted since, or whose witness key was rotated, no longer counts,
and a stored line that does not verify is named, not counted. A nation counts
once. The verifiers are those of ``relto audit verify``
(:func:`~relto.audit.checkpoint.open_checkpoint`).

I/O comes in as functions (the log's stored checkpoints, the kept cosignatures),
so the console and tests share one implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from relto.audit.checkpoint import open_checkpoint
from relto.audit.errors import InvalidNote
from relto.audit.note import NoteVerifier, add_signatures
from relto.audit.witnessing import Cosignature, Partner

__all__ = ["MAX_SCAN", "Witnessed", "newest_witnessed", "witnessed"]

#: How many of the node's stored checkpoints :func:`newest_witnessed` looks at.
MAX_SCAN = 256


@dataclass(frozen=True)
class Witnessed:
    """One checkpoint of this node's log and the partners that witnessed it.

    ``cosigned_by``: the nations whose cosignature verifies under the witness key
    pinned for them now (sorted); ``not_counted``: ``(nation, why)`` for kept
    cosignatures that do not; ``cosigned_at``: the newest counted cosignature's
    time.
    """

    size: int
    required: int
    cosigned_by: tuple[str, ...]
    not_counted: tuple[tuple[str, str], ...] = ()
    cosigned_at: datetime | None = None

    @property
    def count(self) -> int:
        return len(self.cosigned_by)

    @property
    def met(self) -> bool:
        return self.count >= self.required


def _counts(
    note: str, log_key: NoteVerifier, c: Cosignature, partner: Partner | None
) -> str | None:
    """``None`` when ``c`` is a valid cosignature of ``note`` by the witness key
    pinned for its nation, else why not."""
    if partner is None:
        return "the nation is not pinned now"
    try:
        key = partner.witness_verifier
        signed = open_checkpoint(add_signatures(note, c.signature()), log_key, extra=[key])
    except (InvalidNote, ValueError):
        return "does not verify under the witness key pinned for it"
    if key.name not in signed.verified.timestamps:
        return "not made by the witness key pinned for it now"
    return None


def witnessed(
    note: str,
    log_key: NoteVerifier,
    cosignatures: Iterable[Cosignature],
    partners: Iterable[Partner],
    required: int,
) -> Witnessed:
    """The partners that witnessed ``note`` (a checkpoint this node signed): each
    of ``cosignatures`` verified against the witness key of the partner pinned for
    its nation in ``partners``. Raises :class:`InvalidNote` when ``note`` itself is
    not signed by ``log_key``."""
    if required < 0:
        raise ValueError("required must not be negative")
    size = open_checkpoint(note, log_key).checkpoint.size
    pinned = {p.nation: p for p in partners}
    by: dict[str, Cosignature] = {}
    refused: dict[str, str] = {}
    for c in cosignatures:
        if c.size != size or c.nation in by:
            continue
        why = _counts(note, log_key, c, pinned.get(c.nation))
        if why is None:
            by[c.nation] = c
            refused.pop(c.nation, None)
        else:
            refused.setdefault(c.nation, why)
    newest = max((c.cosigned_at for c in by.values()), default=None)
    return Witnessed(
        size,
        required,
        tuple(sorted(by)),
        tuple(sorted(refused.items())),
        None if newest is None else datetime.fromtimestamp(newest, UTC),
    )


def newest_witnessed(
    *,
    below: int,
    required: int,
    log_key: NoteVerifier,
    partners: Sequence[Partner],
    last_size: Callable[[str], int],
    sizes: Callable[[int, int], list[int]],
    checkpoint: Callable[[int], str | None],
    cosignatures: Callable[[int], list[Cosignature]],
    scan: int = MAX_SCAN,
) -> Witnessed | None:
    """The newest checkpoint smaller than ``below`` that ``required`` pinned
    partners witnessed, or ``None`` (none among the ``scan`` newest candidates).

    ``last_size(nation)``: the largest size that nation cosigned; no checkpoint
    above the ``required``-th largest of those can have enough cosignatures, so
    the search starts there. ``sizes(at_most, limit)``: the node's checkpoint
    sizes, largest first; ``checkpoint(size)``: its stored note;
    ``cosignatures(size)``: the cosignatures kept for it.
    """
    if required <= 0 or len(partners) < required:
        return None
    lasts = sorted((last_size(p.nation) for p in partners), reverse=True)
    top = min(lasts[required - 1], below - 1)
    if top <= 0:
        return None
    for size in sizes(top, scan):
        kept = cosignatures(size)
        if len({c.nation for c in kept}) < required:
            continue  # not enough kept to be worth verifying
        note = checkpoint(size)
        if note is None:
            continue
        try:
            found = witnessed(note, log_key, kept, partners, required)
        except InvalidNote:
            continue  # a stored checkpoint not signed by this node's key counts for nothing
        if found.met:
            return found
    return None
