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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from relto.audit.entries import Entry, decode_entry
from relto.audit.errors import InvalidProof
from relto.audit.service import StoredEntry, TransparencyLog
from relto.authz import Authorizer, Grantee, Permission, Scope, decide

__all__ = ["AuditReader", "EntryRefs", "NationResolver", "ReadableEntry", "entry_refs"]

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
