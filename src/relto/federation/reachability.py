"""Whether each pinned partner node is heard from; an alarm for one that falls silent.

A fork or rollback alarm (:mod:`relto.audit.witnessing`) is evidence and stays. A
partner that stops answering is a *state*: it is raised when the partner has not
been heard from for a while and clears itself when it is heard from again.

**Heard from** -- only what the partner itself must have done:

- ``cosigned``: its witness cosigned this node's checkpoint (the cosignature
  verifies against its pinned witness key and is timed within 10 minutes);
- ``checkpoint``: it pushed a checkpoint of its log, signed by its pinned log key,
  that this node's witness cosigned *and that extends the tree head cosigned
  before* -- a checkpoint never seen here (checkpoints are public: an old one
  replayed by anyone says nothing about the partner now);
- ``changes``: it answered this node's offer of partnership changes, at its pinned
  address.

Changes offered *to* this node do not count: every node forwards every change it
holds with every approval on it, so an offer says nothing about who sent it.

**Missed**: a witness push round in which the partner's witness could not be
reached or did not cosign (one per round, counted by the checkpoint pusher).

**Silent**: not heard from for more than ``rounds`` push intervals *and* missed at
least ``rounds`` rounds in a row. The second condition keeps a node that was down
itself from accusing partners it never tried to reach: it accuses nobody before
it has tried ``rounds`` times. A partner pinned but never heard from counts from
the first round that missed it.

Each transition is recorded once in this node's log: ``federation.partner.silent``
when the partner goes silent, ``federation.partner.returned`` when it is heard
from again. The state is kept per partner in a store shared by the node's workers
(:class:`ContactStore`); only the worker whose update made the transition records
it. Time is the ``clock`` given (tests move it on by an hour without sleeping).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.events import AuditSink

__all__ = [
    "HOWS",
    "RETURNED_KIND",
    "SILENT_KIND",
    "Contact",
    "ContactStore",
    "MemoryContactStore",
    "PartnerStatus",
    "Reachability",
]

#: Recorded once when a partner goes silent.
SILENT_KIND = "federation.partner.silent"
#: Recorded once when a silent partner is heard from again.
RETURNED_KIND = "federation.partner.returned"
#: The ways a partner is heard from (see the module docstring).
HOWS = ("cosigned", "checkpoint", "changes")

log = structlog.stdlib.get_logger("relto.federation")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Contact:
    """What this node knows of reaching one partner."""

    nation: str
    #: When this node first tried to reach it or heard from it.
    first_seen: datetime
    last_heard: datetime | None = None
    #: How it was last heard from (one of :data:`HOWS`, ``""`` never).
    how: str = ""
    #: When it was last heard from each way.
    heard: dict[str, datetime] = field(default_factory=dict)
    #: Push rounds missed since it was last heard from.
    misses: int = 0
    #: Why the last round missed it (``unreachable: ConnectError``, ...).
    last_miss: str = ""
    #: Since when it is silent (the alarm), ``None`` while it is not.
    silent_since: datetime | None = None


class ContactStore(Protocol):
    """Where contacts are kept, shared by the node's workers."""

    def get(self, nation: str) -> Contact | None: ...

    def heard(self, nation: str, at: datetime, how: str) -> datetime | None:
        """Note ``nation`` heard from at ``at``; its misses go back to 0. When it was
        silent, clear that and answer since when -- to one caller only."""
        ...

    def missed(self, nation: str, at: datetime, reason: str) -> Contact:
        """Count one more missed round; the contact as it is now."""
        ...

    def silence(self, nation: str, at: datetime, misses: int) -> bool:
        """Mark ``nation`` silent since ``at`` if it is not already and has not been
        heard from since it had ``misses`` misses; ``True`` to the one caller that
        did."""
        ...


class MemoryContactStore:
    """Contacts in memory (tests, tools)."""

    def __init__(self) -> None:
        self._rows: dict[str, Contact] = {}
        self._lock = threading.Lock()

    def get(self, nation: str) -> Contact | None:
        with self._lock:
            return self._rows.get(nation)

    def heard(self, nation: str, at: datetime, how: str) -> datetime | None:
        with self._lock:
            c = self._rows.get(nation) or Contact(nation, at)
            self._rows[nation] = replace(
                c, last_heard=at, how=how, heard={**c.heard, how: at}, misses=0,
                silent_since=None,
            )  # fmt: skip
            return c.silent_since

    def missed(self, nation: str, at: datetime, reason: str) -> Contact:
        with self._lock:
            c = self._rows.get(nation) or Contact(nation, at)
            c = self._rows[nation] = replace(c, misses=c.misses + 1, last_miss=reason[:300])
            return c

    def silence(self, nation: str, at: datetime, misses: int) -> bool:
        with self._lock:
            c = self._rows.get(nation)
            if c is None or c.silent_since is not None or c.misses < misses:
                return False
            self._rows[nation] = replace(c, silent_since=at)
            return True


@dataclass(frozen=True)
class PartnerStatus:
    """How one pinned partner stands, as the dashboard and the API show it.

    ``state``: ``reachable`` (heard from within the bound), ``silent`` (the alarm,
    since ``silent_since``), ``unknown`` (not heard from yet, not silent either).
    """

    nation: str
    state: str
    last_heard: datetime | None
    how: str
    heard: dict[str, datetime]
    misses: int
    last_miss: str
    silent_since: datetime | None


class Reachability:
    """Keeps, per pinned partner, when it was last heard from; raises and clears the
    silence alarm (see the module docstring).

    ``partners``: the nations pinned now; ``interval``: the witness push interval
    (one round); ``rounds``: how many intervals without news make a partner silent
    (and how many missed rounds it takes); ``clock``: now (default the system
    clock; the attribute may be replaced, as tests do to move on an hour).
    """

    def __init__(
        self,
        store: ContactStore,
        partners: Callable[[], Iterable[str]],
        *,
        sink: AuditSink,
        authorizer: Authorizer,
        nation: str,
        interval: timedelta,
        rounds: int = 3,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if rounds < 1:
            raise ValueError("rounds is at least 1")
        self.store = store
        self._partners = partners
        self._sink = sink
        self._authz = authorizer
        self.nation = nation
        self.interval = interval
        self.rounds = rounds
        self.clock = clock or _now

    @property
    def bound(self) -> timedelta:
        """How long without news before a partner that keeps missing is silent."""
        return self.interval * self.rounds

    def partners(self) -> list[str]:
        return sorted({n for n in self._partners() if n != self.nation})

    # -- what the pushers and the witness tell it ------------------------------------

    def heard(self, nation: str, how: str) -> None:
        """``nation`` was heard from just now, ``how`` (one of :data:`HOWS`)."""
        if how not in HOWS:
            raise ValueError(f"not a way of being heard from: {how!r}")
        if nation == self.nation:
            return
        at = self.clock()
        was_silent = self.store.heard(nation, at, how)
        if was_silent is not None:
            self._sink.record(
                RETURNED_KIND,
                {"nation": nation, "how": how, "silent_since": was_silent.isoformat(),
                 "at": at.isoformat()},
            )  # fmt: skip
            log.info("partner_returned", nation=nation, how=how)

    def missed(self, nation: str, reason: str) -> None:
        """A push round did not reach ``nation`` (``reason``: what happened)."""
        if nation != self.nation:
            self.store.missed(nation, self.clock(), reason)

    def due(self, nation: str) -> bool:
        """Whether ``nation`` should be asked this round even with nothing new to
        send: not heard from for half an interval (a quiet partnership still
        hears from every partner each round)."""
        c = self.store.get(nation)
        return c is None or c.last_heard is None or self.clock() - c.last_heard >= self.interval / 2

    # -- the alarm -------------------------------------------------------------------

    def _silent(self, c: Contact, now: datetime) -> bool:
        since = c.last_heard or c.first_seen
        return c.misses >= self.rounds and now - since > self.bound

    def check(self) -> list[PartnerStatus]:
        """Raise the silence alarm for each pinned partner now due (recorded once);
        the partners' statuses after it."""
        now = self.clock()
        if self.interval > timedelta(0):
            for nation in self.partners():
                c = self.store.get(nation)
                if c is None or c.silent_since is not None or not self._silent(c, now):
                    continue
                if self.store.silence(nation, now, c.misses):
                    self._sink.record(
                        SILENT_KIND,
                        {"nation": nation, "silent_since": now.isoformat(),
                         "last_heard": c.last_heard.isoformat() if c.last_heard else None,
                         "missed_rounds": c.misses, "last_miss": c.last_miss,
                         "bound_seconds": int(self.bound.total_seconds())},
                    )  # fmt: skip
                    log.warning("partner_silent", nation=nation, missed_rounds=c.misses,
                                last_miss=c.last_miss)  # fmt: skip
        return self.statuses()

    def statuses(self) -> list[PartnerStatus]:
        """Every pinned partner's status, by nation."""
        out = []
        for nation in self.partners():
            c = self.store.get(nation)
            if c is None:
                out.append(PartnerStatus(nation, "unknown", None, "", {}, 0, "", None))
                continue
            state = (
                "silent"
                if c.silent_since is not None
                else "reachable"
                if c.last_heard is not None
                else "unknown"
            )
            out.append(
                PartnerStatus(nation, state, c.last_heard, c.how, dict(c.heard), c.misses,
                              c.last_miss, c.silent_since)
            )  # fmt: skip
        return out

    def read_status(self, who: Grantee) -> list[PartnerStatus]:
        """:meth:`statuses`, for a person of this node's nation (``AccessDenied``
        else): how this node stands with its partners, as the pins list is."""
        self._authz.require(
            who, Permission.FEDERATION_ATTEST, Scope.of([self.nation]), target="partner status"
        )
        return self.statuses()
