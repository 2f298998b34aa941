"""This node's ledger of partnership changes (:mod:`relto.federation.changes`):
proposing, approving, taking in what partner nodes signed, and applying a change
once its quorum is reached -- in the chain's one order, on this node's records.

- :meth:`ChangeLedger.propose`: a security officer of this node's nation (a member)
  proposes; this node signs its own approval with its node key. Recorded as
  ``partnership.change.proposed``.
- :meth:`ChangeLedger.decide`: an officer of this node approves or rejects a change
  this node holds; the node signs it (``partnership.change.approved|rejected``).
- :meth:`ChangeLedger.receive`: a change and approvals from elsewhere (another
  node's export, or replication): every approval is verified against the node key
  this node holds for its nation -- its own, or a pinned descriptor's; a change
  no member approved is not stored; a rival for a place already applied is a fork:
  recorded (``partnership.change.fork``) and refused.
- Whenever a change's quorum is reached at the next place, it is **applied**: its
  effect on the partnership registry (admission granted or ended, project made)
  under an actor named after the change (``quorum:<id>``), then the place taken
  and ``partnership.change.applied`` recorded. The effect is the registry's own
  transaction: if it fails, nothing is applied and the change stays pending; if
  taking the place failed after it, a retry would meet the effect already made
  (an admission conflict) and stop, loudly -- never apply twice.
  Other pending changes for that place are ``superseded``; a change whose
  quorum can no longer be reached is ``rejected``; one the registry refuses here
  (it conflicts with a record made by hand) is ``failed``, recorded as
  ``partnership.change.failed``, and leaves its place free.

Membership changes move a nation between the partnership's members and partners,
and a recorded agreement is kept with the partnership (decisions recognise
clearances through it); quorum rules are the chain's own and are in force in it
(:class:`~relto.federation.changes.ChangeChain`). The chain starts from the
members kept the first time the ledger ran (``federation_change_genesis``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.errors import InvalidInput, NotFound, ReltoError, StorageError
from relto.events import AuditSink
from relto.federation._keys import PublicJwk, SigningKey
from relto.federation.changes import (
    Approval,
    Change,
    ChangeChain,
    ChangeFork,
    InvalidChange,
    QuorumState,
    approve,
    verify_approval,
)
from relto.federation.descriptor import PinnedNode
from relto.partnership import Project, RecordedAgreement
from relto.partnership.registry import PartnershipRegistry
from relto.partnership.service import Actor
from relto.store import Database
from relto.store.changes import ChangeRow, SqlChangeRepository

__all__ = ["VERIFIED_APPROVALS", "ChangeLedger", "Standing"]

#: Verified approvals kept per process (then the memo starts again).
VERIFIED_APPROVALS = 20_000


@dataclass(frozen=True)
class Standing:
    """A change as this node holds it: the change, its status, the verified words
    of member nodes (tokens), and its quorum now."""

    change: Change
    status: str
    approvals: tuple[Approval, ...]
    quorum: QuorumState


class ChangeLedger:
    """The partnership changes of the node of ``nation`` (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        sink: AuditSink,
        authorizer: Authorizer,
        registry: PartnershipRegistry,
        pins: Callable[[], Mapping[str, PinnedNode]],
        node_key: SigningKey,
        nation: str,
        partnership: str,
        founders: Sequence[str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._sink = sink
        self._authz = authorizer
        self._registry = registry
        self._pins = pins
        self._key = node_key
        self.nation = nation
        self.partnership = partnership
        self._offered = tuple(founders)
        self._genesis: frozenset[str] | None = None
        self._clock = clock
        self._lock = threading.Lock()
        #: Approvals whose signature verified, by (token, change, the key it verified
        #: against): a stored approval is verified once per process, not on every read.
        self._verified: dict[tuple[str, str, str], Approval] = {}

    # -- what is held ------------------------------------------------------------------

    def keys(self) -> dict[str, PublicJwk]:
        """The node key held for each nation: this node's own and the pinned ones."""
        held = {n: p.descriptor.node_key for n, p in self._pins().items()}
        held[self.nation] = self._key.public
        return held

    def _approvals(self, repo: SqlChangeRepository, change: Change) -> list[Approval]:
        keys = self.keys()
        found = []
        for row in repo.approvals(change.id):
            key = keys.get(row.nation)
            if key is None:
                continue  # unpinned since: it no longer counts
            memo = (row.token, change.id, key.fingerprint)
            approval = self._verified.get(memo)
            if approval is None:
                try:
                    approval = verify_approval(row.token, change, keys)
                except InvalidChange:
                    continue  # a key rotated since: it no longer counts
                if len(self._verified) >= VERIFIED_APPROVALS:
                    self._verified.clear()
                self._verified[memo] = approval
            found.append(approval)
        return found

    def chain(self) -> ChangeChain:
        """The applied chain, rebuilt from the stored changes and their approvals."""
        with self._db.session() as s:
            return self._chain(SqlChangeRepository(s))

    @property
    def _founders(self) -> frozenset[str]:
        """The members the chain starts from: kept in the database the first time
        (the partnership's members then), since applied ``member.*`` changes move the
        partnership's members on."""
        if self._genesis is None:
            for _ in range(2):  # another worker may keep it first
                try:
                    with self._db.session() as s:
                        found = SqlChangeRepository(s).founders(self.partnership, self._offered)
                        s.commit()
                    break
                except IntegrityError:
                    continue
            else:  # pragma: no cover - the row exists after a lost race
                raise StorageError("the change chain's founding members could not be read")
            self._genesis = frozenset(found)
        return self._genesis

    def _chain(self, repo: SqlChangeRepository) -> ChangeChain:
        chain = ChangeChain(self.partnership, self._founders)
        for row in repo.applied(self.partnership):
            change = Change.parse(row.body)
            counted = [a for a in self._approvals(repo, change) if a.decision == "approve"]
            chain.replay(change, counted)
        return chain

    def _standing(self, repo: SqlChangeRepository, chain: ChangeChain, row: ChangeRow) -> Standing:
        change = Change.parse(row.body)
        approvals = tuple(self._approvals(repo, change))
        return Standing(change, row.status, approvals, chain.quorum(change, approvals))

    def standings(self, status: str | None = None) -> list[Standing]:
        """Every change this node holds (or those with ``status``), in chain order."""
        with self._db.session() as s:
            repo = SqlChangeRepository(s)
            chain = self._chain(repo)
            rows = []
            every = ("applied", "pending", "rejected", "superseded", "failed")
            for st in (status,) if status else every:
                rows.extend(repo.with_status(self.partnership, st))
            out = [self._standing(repo, chain, row) for row in rows]
        return sorted(out, key=lambda x: (x.change.seq, x.status != "applied"))

    def standing(self, change_id: str) -> Standing:
        """One change this node holds (its row alone, against the chain)."""
        with self._db.session() as s:
            repo = SqlChangeRepository(s)
            row = repo.get(change_id[:64])
            if row is None or row.partnership != self.partnership:
                raise NotFound(f"no change {change_id[:64]!r} on this node")
            return self._standing(repo, self._chain(repo), row)

    # -- officers of this node ---------------------------------------------------------

    def _require(self, who: Grantee, target: str) -> None:
        self._authz.require(
            who, Permission.ADMIN_ADMISSIONS_WRITE, Scope.of([self.nation]), target=target
        )

    def propose(
        self,
        who: Grantee,
        kind: str,
        payload: Mapping[str, Any],
        justification: str,
    ) -> Standing:
        """Propose a change at the chain's next place, approved by this node."""
        self._require(who, f"propose {kind[:40]}")
        at = self._clock()
        with self._lock:
            chain = self.chain()
            if self.nation not in chain.members:
                raise InvalidInput(f"{self.nation} is not a member: it may not propose changes")
            try:
                change = Change(
                    self.partnership, chain.next_seq, chain.head, kind, dict(payload),
                    self.nation, who.person_id, at, justification,
                )  # fmt: skip
            except InvalidChange as exc:
                raise InvalidInput(str(exc)) from None
            token = approve(
                change, nation=self.nation, by=who.person_id, key=self._key, at=at,
                justification=justification,
            )  # fmt: skip
            self._sink.record(
                "partnership.change.proposed",
                {"change": change.id, "seq": change.seq, "kind": kind, "by": who.person_id,
                 "nation": self.nation, "justification": justification},
            )  # fmt: skip
            self._take(change, [token], at)
        return self.standing(change.id)

    def decide(self, who: Grantee, change_id: str, decision: str, justification: str) -> Standing:
        """This node's approval (or rejection) of a change it holds, signed now."""
        if decision not in ("approve", "reject"):
            raise InvalidInput("decision is approve or reject")
        self._require(who, f"{decision} {change_id[:64]}")
        held = self.standing(change_id)
        if held.status != "pending":
            raise InvalidInput(f"the change is {held.status}: nothing to decide")
        if any(a.nation == self.nation for a in held.approvals):
            raise InvalidInput(f"{self.nation} has given its word on this change already")
        at = self._clock()
        token = approve(
            held.change, nation=self.nation, by=who.person_id, key=self._key, at=at,
            justification=justification, decision=decision,
        )  # fmt: skip
        self._sink.record(
            f"partnership.change.{'approved' if decision == 'approve' else 'rejected'}",
            {"change": change_id, "seq": held.change.seq, "by": who.person_id,
             "nation": self.nation, "justification": justification},
        )  # fmt: skip
        with self._lock:
            self._take(held.change, [token], at)
        return self.standing(change_id)

    # -- from partner nodes ----------------------------------------------------------

    def receive(self, body: str, tokens: Sequence[str]) -> Standing:
        """Take in a change and approvals signed elsewhere; :class:`InvalidInput` for a
        change no member approved, :class:`ChangeFork` (recorded) for a rival of an
        applied change."""
        try:
            change = Change.parse(body)
        except InvalidChange as exc:
            raise InvalidInput(str(exc)) from None
        if change.partnership != self.partnership:
            raise InvalidInput("the change is for another partnership")
        keys = self.keys()
        valid = []
        for t in tokens:
            try:
                valid.append(verify_approval(t, change, keys))
            except InvalidChange:
                continue
        with self._lock:
            chain = self.chain()
            if not any(a.nation in chain.members for a in valid):
                raise InvalidInput("no member node's approval of this change verifies here")
            try:
                chain.check_place(change)
            except ChangeFork as fork:
                self._sink.record(
                    "partnership.change.fork",
                    {"seq": fork.seq, "applied": fork.applied, "offered": fork.offered,
                     "proposed_by": change.nation},
                )  # fmt: skip
                raise
            except InvalidChange:
                pass  # a later place: kept pending until the chain gets there
            self._take(change, [a.token for a in valid], self._clock())
        return self.standing(change.id)

    # -- storing and applying ----------------------------------------------------------

    def _take(self, change: Change, tokens: Sequence[str], at: datetime) -> None:
        """Store ``change`` and verified ``tokens``, then apply what has its quorum."""
        keys = self.keys()
        with self._db.session() as s:
            repo = SqlChangeRepository(s)
            repo.add(change.id, change.partnership, change.seq, change.canonical().decode(),
                     at.timestamp())  # fmt: skip
            for t in tokens:
                a = verify_approval(t, change, keys)
                repo.add_approval(change.id, a.nation, a.decision, a.token)
            s.commit()
        self._apply_ready()

    def _apply_ready(self) -> None:
        """Apply pending changes at the next place whose quorum is reached, one by one."""
        while True:
            now = self._clock()
            with self._db.session() as s:
                repo = SqlChangeRepository(s)
                chain = self._chain(repo)
                ready: tuple[Change, QuorumState] | None = None
                for row in repo.with_status(self.partnership, "pending"):
                    change = Change.parse(row.body)
                    state = chain.quorum(change, self._approvals(repo, change))
                    if change.seq < chain.next_seq:
                        repo.mark(change.id, "superseded", now.timestamp())
                    elif state.impossible:
                        repo.mark(change.id, "rejected", now.timestamp())
                    elif (
                        ready is None
                        and state.reached
                        and change.seq == chain.next_seq
                        and change.prev == chain.head
                    ):
                        chain.check_place(change)
                        ready = (change, state)
                s.commit()
            if ready is None:
                return
            change, state = ready
            try:
                self._effect(change, now)  # the registry's own transaction
            except ReltoError as exc:
                # the registry refuses it here (an admission that conflicts with one
                # made by hand before, say): not applied, the place left free, and
                # said loudly -- officers must look at what differs on this node
                with self._db.session() as s:
                    SqlChangeRepository(s).mark(change.id, "failed", now.timestamp())
                    s.commit()
                self._sink.record(
                    "partnership.change.failed",
                    {"change": change.id, "seq": change.seq, "kind": change.kind,
                     "reason": str(exc)[:300]},
                )  # fmt: skip
                continue
            with self._db.session() as s:
                repo = SqlChangeRepository(s)
                repo.place(change.partnership, change.seq, change.id)
                repo.mark(change.id, "applied", now.timestamp())
                s.commit()
            self._sink.record(
                "partnership.change.applied",
                {"change": change.id, "seq": change.seq, "kind": change.kind,
                 "approved_by": sorted(state.approved_by), "required": state.required},
            )  # fmt: skip

    def _effect(self, change: Change, at: datetime) -> None:
        """The change on this node's partnership records, by the quorum's authority."""
        quorum = Actor(
            f"quorum:{change.id[:16]}",
            change.nation,
            frozenset(("security_officer", n) for n in self._founders | {change.nation}),
        )
        p = change.payload
        if change.kind == "admission.grant":
            self._registry.admit(
                quorum,
                project_id=str(p["project"]),
                nation=str(p["nation"]),
                ceiling=str(p["ceiling"]),
                at=at,
                valid_from=datetime.fromisoformat(str(p["valid_from"])),
                valid_until=(
                    datetime.fromisoformat(str(p["valid_until"])) if p.get("valid_until") else None
                ),
                note=f"change {change.seq} ({change.id[:12]})",
                justification=change.justification,
                by_quorum=True,
            )
        elif change.kind == "admission.end":
            page = self._registry.admissions(
                quorum, project_id=str(p["project"]), nation=str(p["nation"]), offset=0,
                limit=200,
            )  # fmt: skip
            ends = datetime.fromisoformat(str(p["at"]))
            for admission in page.items:
                if admission.status_at(ends) in ("active", "pending"):
                    self._registry.end(
                        quorum, admission.id, ends,
                        note=f"change {change.seq} ({change.id[:12]})",
                        justification=change.justification, by_quorum=True,
                    )  # fmt: skip
        elif change.kind == "project.create":
            self._registry.create_project(
                quorum,
                Project(
                    id=str(p["id"]),
                    partnership_id=change.partnership,
                    name=str(p["name"]),
                    description=str(p.get("description", "")),
                ),
                at,
                by_quorum=True,
            )
        elif change.kind in ("member.add", "member.remove"):
            self._registry.change_membership(
                quorum,
                partnership_id=change.partnership,
                nation=str(p["nation"]),
                member=change.kind == "member.add",
                at=at,
                justification=change.justification,
                by_quorum=True,
            )
        elif change.kind == "agreement.record":
            parties = sorted(str(n) for n in p["parties"])
            self._registry.record_agreement(
                quorum,
                RecordedAgreement(
                    id=str(p["id"]),
                    partnership_id=change.partnership,
                    parties=(parties[0], parties[1]),
                    title=str(p["title"]),
                    in_force=date.fromisoformat(str(p["in_force"])),
                    terminated=(
                        date.fromisoformat(str(p["terminated"])) if p.get("terminated") else None
                    ),
                    scope=str(p["scope"]),
                    sources=tuple(str(x) for x in p["sources"]),
                    recorded_by=f"change {change.seq} ({change.id[:12]})",
                ),
                at,
                justification=change.justification,
                by_quorum=True,
            )
        # quorum.set: the chain's own rule, in force in the chain (nothing to store)
