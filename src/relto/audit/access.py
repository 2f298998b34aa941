"""Who may read which transparency-log entry bodies.

Everything a partner needs to check the log -- checkpoints, proofs, hash tiles --
is public: sizes and hashes only. Entry bodies say who saw or changed what, so a
body is shown to a nation's auditors and security officers only when the entry
*concerns* their nation:

* a person it names (``by``, ``actor``, ``subject``, ``person_id``) has that
  nation as home nation in this node's directory;
* a document it names (``document``, ``object``, ``policy_uuid``, or the
  ``target`` of an authorisation decision) originates there (as the node's
  document registry says now);
* it names the nation itself: the nation admitted, the issuing nation of a
  clearance, the originator, a member or partner of a partnership created;
* it concerns no nation this node can name (an unknown caller, say): then it is
  the node's own nation's business.

The rule is :data:`relto.authz.Permission.AUDIT_ENTRIES_READ` with the entry's
nations as scope; :class:`AuditReader` applies it to a page and to an entry
bundle (served only when every entry in it concerns the reader). Other entries
are shown as their index and leaf hash, which anyone may already see.

:meth:`AuditReader.search` pages through the readable entries newest first with
an :class:`EntryFilter` (kind, person, document, time range), reading at most a
bounded number of entries per call and saying where to go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from relto.audit.entries import Entry, decode_entry
from relto.audit.errors import InvalidProof
from relto.audit.service import MAX_PAGE, StoredEntry, TransparencyLog
from relto.authz import Authorizer, Grantee, Permission, Scope, decide

__all__ = [
    "MAX_SCAN",
    "MAX_SEARCH_PAGE",
    "AuditReader",
    "EntryFilter",
    "EntryRefs",
    "NationResolver",
    "ReadableEntry",
    "SearchPage",
    "entry_refs",
]

#: Most entries one :meth:`AuditReader.search` returns.
MAX_SEARCH_PAGE = 100
#: Most log entries one search reads (filters that match little stop here and
#: say where to continue).
MAX_SCAN = 20_000
_FILTER_TEXT = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?$")

_PEOPLE_KEYS = ("by", "actor", "subject", "person_id")
_DOCUMENT_KEYS = ("document", "object", "target")
_NATION_KEYS = ("nation", "originator", "home_nation")
_NATION_LIST_KEYS = ("members", "partners")


@dataclass(frozen=True)
class EntryRefs:
    """What an entry names: people, documents, policies and nations."""

    people: frozenset[str]
    documents: frozenset[str]
    policies: frozenset[str]
    nations: frozenset[str]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value[:64]]
    if isinstance(value, list):
        return [v[:64] for v in value[:50] if isinstance(v, str) and v]
    return []


def entry_refs(payload: Mapping[str, Any]) -> EntryRefs:
    nations = {n for k in _NATION_KEYS for n in _strings(payload.get(k)) if len(n) == 3}
    nations |= {n for k in _NATION_LIST_KEYS for n in _strings(payload.get(k)) if len(n) == 3}
    return EntryRefs(
        people=frozenset(p for k in _PEOPLE_KEYS for p in _strings(payload.get(k))),
        documents=frozenset(d for k in _DOCUMENT_KEYS for d in _strings(payload.get(k))),
        policies=frozenset(_strings(payload.get("policy_uuid"))),
        nations=frozenset(nations),
    )


@dataclass(frozen=True)
class EntryFilter:
    """What to look for: ``kind`` (exact, or a prefix ending in ``.`` such as
    ``partnership.``), a ``person`` or ``document`` the entry names, and a time
    range ``since <= time < until`` (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]``,
    UTC). Empty means any. Bad values raise ``ValueError``."""

    kind: str = ""
    person: str = ""
    document: str = ""
    since: str = ""
    until: str = ""

    def __post_init__(self) -> None:
        for name in ("kind", "person", "document"):
            value = getattr(self, name)
            if value and not _FILTER_TEXT.match(value):
                raise ValueError(f"{name} is not a valid id or kind")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value and not _TIME.match(value):
                raise ValueError(f"{name} is not a date (YYYY-MM-DD) or time")

    @property
    def empty(self) -> bool:
        return not (self.kind or self.person or self.document or self.since or self.until)

    @staticmethod
    def _stamp(value: str) -> str:
        """A bound comparable with entry times (``2026-11-29T12:00:00.000000Z``)."""
        return value.replace(" ", "T")

    def matches(self, entry: Entry) -> bool:
        if self.kind:
            if self.kind.endswith("."):
                if not entry.kind.startswith(self.kind):
                    return False
            elif entry.kind != self.kind:
                return False
        if self.since and entry.time < self._stamp(self.since):
            return False
        if self.until and entry.time >= self._stamp(self.until):
            return False
        if self.person or self.document:
            refs = entry_refs(entry.payload)
            if self.person and self.person not in refs.people:
                return False
            if self.document and not (
                self.document in refs.documents or self.document in refs.policies
            ):
                return False
        return True

    def before_range(self, entry: Entry) -> bool:
        """Whether ``entry`` is older than ``since`` (a newest-first scan can stop:
        entries are appended in time order)."""
        return bool(self.since) and entry.time < self._stamp(self.since)


@dataclass(frozen=True)
class SearchPage:
    """Readable entries matching a filter, newest first. ``next_before``: pass it
    as ``before`` for the next (older) page; ``None`` when the log start was
    reached. ``scanned_from``: the oldest index this call read."""

    entries: tuple[ReadableEntry, ...]
    next_before: int | None
    scanned_from: int
    #: The scan stopped at :data:`MAX_SCAN` before the page was full.
    scan_limited: bool


class NationResolver(Protocol):
    """This node's records: home nations of people, originators of documents."""

    def home_nations(self, person_ids: Iterable[str]) -> Mapping[str, str]: ...

    def originators(
        self, document_ids: Iterable[str], policy_uuids: Iterable[str]
    ) -> Mapping[str, str]:
        """Document id or policy UUID -> originating nation (unknown ones left out)."""
        ...


@dataclass(frozen=True)
class ReadableEntry:
    """One entry of a page: ``readable`` says whether the reader may see its body;
    ``entry`` is the decoded body (``None`` when hidden or undecodable)."""

    stored: StoredEntry
    entry: Entry | None
    readable: bool


class AuditReader:
    """Entry bodies through the authorisation point (one recorded decision per
    request; each entry then filtered by the same rule)."""

    def __init__(
        self,
        log: TransparencyLog,
        authorizer: Authorizer,
        resolver: NationResolver,
        *,
        node_nation: str,
    ) -> None:
        self.log = log
        self._authz = authorizer
        self._resolver = resolver
        self._node_nation = node_nation

    def may_read_any(self, who: Grantee | None) -> bool:
        """Whether ``who`` may read the entries of their own nation at all (no record)."""
        return self._authz.allows(who, Permission.AUDIT_ENTRIES_READ, Scope.of([_home(who)]))

    def check(self, who: Grantee | None, target: str) -> bool:
        """The request-level decision (may ``who`` read their nation's entries?),
        recorded either way."""
        scope = Scope.of([_home(who)])
        return self._authz.check(who, Permission.AUDIT_ENTRIES_READ, scope, target=target).allowed

    def require(self, who: Grantee | None, target: str) -> None:
        """:meth:`check`, raising AccessDenied on a denial."""
        self._authz.require(
            who, Permission.AUDIT_ENTRIES_READ, Scope.of([_home(who)]), target=target
        )

    def nations_of(self, entries: Sequence[Entry]) -> list[frozenset[str]]:
        refs = [entry_refs(e.payload) for e in entries]
        homes = self._resolver.home_nations({p for r in refs for p in r.people})
        origins = self._resolver.originators(
            {d for r in refs for d in r.documents}, {p for r in refs for p in r.policies}
        )
        out = []
        for r in refs:
            nations = set(r.nations)
            nations |= {homes[p] for p in r.people if p in homes}
            nations |= {origins[d] for d in (*r.documents, *r.policies) if d in origins}
            # An entry about nobody this node knows is the node's own business.
            out.append(frozenset(nations or {self._node_nation}))
        return out

    def page(self, who: Grantee, start: int, end: int) -> list[ReadableEntry]:
        """Entries ``[start, end)``; call :meth:`require` first."""
        stored = self.log.entries(start, end)
        decoded: list[Entry | None] = []
        for e in stored:
            try:
                decoded.append(decode_entry(e.body))
            except InvalidProof:
                decoded.append(None)
        known = [d for d in decoded if d is not None]
        nations = iter(self.nations_of(known))
        out = []
        for s, d in zip(stored, decoded, strict=True):
            # An undecodable body (a damaged or forged row) is the node's own
            # business: its auditors must see it to find the damage.
            scope = Scope(frozenset({self._node_nation}) if d is None else next(nations))
            ok = decide(who, Permission.AUDIT_ENTRIES_READ, scope).allowed
            out.append(ReadableEntry(s, d if ok else None, ok))
        return out

    def search(
        self,
        who: Grantee,
        where: EntryFilter,
        *,
        before: int,
        limit: int = 30,
        max_scan: int = MAX_SCAN,
    ) -> SearchPage:
        """Entries below index ``before`` that concern ``who``'s nation and match
        ``where``, newest first, at most ``limit`` (bounded by
        :data:`MAX_SEARCH_PAGE`), reading at most ``max_scan`` entries (bounded by
        :data:`MAX_SCAN`). Call :meth:`require` first."""
        limit = max(1, min(limit, MAX_SEARCH_PAGE))
        max_scan = max(1, min(max_scan, MAX_SCAN))
        end = max(0, before)
        floor = max(0, end - max_scan)
        found: list[ReadableEntry] = []
        while end > floor:
            start = max(floor, end - MAX_PAGE)
            batch = self.page(who, start, end)
            for e in reversed(batch):
                index = e.stored.index
                if e.entry is not None and where.before_range(e.entry):
                    return SearchPage(tuple(found), None, index, False)
                if e.readable and (
                    (e.entry is not None and where.matches(e.entry))
                    or (e.entry is None and where.empty)
                ):
                    found.append(e)
                    if len(found) >= limit:
                        more = index if index > 0 else None
                        return SearchPage(tuple(found), more, index, False)
            end = start
        return SearchPage(tuple(found), end if end > 0 else None, end, end > 0)

    def may_read_all(self, who: Grantee, bodies: Sequence[bytes]) -> bool:
        """Whether every entry body in ``bodies`` (an entry bundle) concerns ``who``'s
        nations (an undecodable body concerns nobody)."""
        entries = []
        for body in bodies:
            try:
                entries.append(decode_entry(body))
            except InvalidProof:
                return False
        return all(
            decide(who, Permission.AUDIT_ENTRIES_READ, Scope(n)).allowed
            for n in self.nations_of(entries)
        )


def _home(who: Grantee | None) -> str:
    return "" if who is None else who.home_nation
