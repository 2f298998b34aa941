"""Mutual witnessing: every node witnesses the logs of the partners it pins.

A node's witness (:class:`~relto.audit.witness.Witness`, C2SP tlog-witness)
knows the logs listed in ``RELTO_AUDIT_WITNESS_LOGS`` plus the log of every
partner node pinned now: the ``log_key`` of its pinned descriptor, whose key name
is the log's origin. The pins are read at every ``add-checkpoint``, so an
untrust stops the witnessing at once and a descriptor update with a new log key
is taken with it. An origin that two keys claim (two pins, or a pin and a static
log) is witnessed for neither: the witness cannot tell whose checkpoint it is.

Nothing here knows how pins are stored: the composition root hands over a
function answering the partners (:class:`Partner`) as pinned now.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from relto.audit.errors import InvalidNote
from relto.audit.note import CosignatureVerifier, NoteVerifier, parse_verifier

__all__ = ["Partner", "known_logs", "partner_logs"]

log = structlog.stdlib.get_logger("relto.audit")


@dataclass(frozen=True)
class Partner:
    """A pinned partner node, as far as witnessing needs it: its nation, its base
    URL, its log's verifier key and its witness's cosignature verifier key (from
    its pinned descriptor)."""

    nation: str
    base_url: str
    log_key: str
    witness_key: str

    @property
    def log_verifier(self) -> NoteVerifier:
        v = _verifier(self.log_key)
        if not isinstance(v, NoteVerifier):
            raise InvalidNote(f"the log key pinned for {self.nation} is not a log key")
        return v

    @property
    def witness_verifier(self) -> CosignatureVerifier:
        v = _verifier(self.witness_key)
        if not isinstance(v, CosignatureVerifier):
            raise InvalidNote(f"the witness key pinned for {self.nation} is not a cosigner key")
        return v


@functools.lru_cache(maxsize=256)
def _verifier(vkey: str) -> NoteVerifier | CosignatureVerifier:
    v = parse_verifier(vkey)
    assert isinstance(v, NoteVerifier | CosignatureVerifier)
    return v


def known_logs(
    static: Mapping[str, NoteVerifier], partners: Iterable[Partner]
) -> dict[str, NoteVerifier]:
    """The logs to witness by origin: ``static`` ones and each partner's; an origin
    claimed by two different keys is left out (and logged)."""
    claims: dict[str, set[str]] = {o: {v.vkey} for o, v in static.items()}
    keys = dict(static)
    for p in partners:
        try:
            v = p.log_verifier
        except InvalidNote as exc:
            log.warning("witness_partner_log_key_refused", nation=p.nation, reason=str(exc))
            continue
        claims.setdefault(v.name, set()).add(v.vkey)
        keys.setdefault(v.name, v)
    clashing = sorted(o for o, vkeys in claims.items() if len(vkeys) > 1)
    if clashing:
        log.warning("witness_origin_claimed_twice", origins=clashing)
    return {o: v for o, v in keys.items() if o not in clashing}


def partner_logs(
    static: Mapping[str, NoteVerifier], partners: Callable[[], Iterable[Partner]]
) -> Callable[[], dict[str, NoteVerifier]]:
    """A source of logs for :class:`~relto.audit.witness.Witness`: ``static`` plus
    the partners' as ``partners()`` answers them at each call."""
    return lambda: known_logs(static, partners())
