"""Signed partnership changes with a quorum, in one hash-chained order (pure: no I/O).

No nation alone changes the partnership. A **change** (admit a nation to a project,
end an admission, create a project, add or remove a member, record an agreement,
set a quorum) is proposed by a security officer of a member node and is applied
only when enough member **nodes** have signed an approval of it -- every member by
default, or k of n for a kind of change (``quorum.set``).

- **A change** is canonical JSON (sorted keys, no spaces, UTF-8): the partnership
  id, its place in the chain (``seq``, and ``prev``: the id of the change before
  it, 64 zeros for the first), ``kind``, a ``payload`` checked per kind, who
  proposed it (``nation``, ``person``), when, and why. Its **id** is the SHA-256
  of those bytes (hex). Anything else -- unknown members, a payload that does not
  fit its kind -- is refused.
- **An approval** (or a rejection) is a compact JWS (``typ``
  ``relto-change-approval+jwt``) signed by a member node's **node key** -- the key
  its descriptor names and partners pinned by fingerprint -- with claims
  ``change`` (the id), ``nation``, ``decision`` (``approve`` | ``reject``),
  ``by`` (the officer), ``at`` and ``justification``. The proposing node's own
  approval is one of them.
- **The quorum** counts distinct member nations whose approval verifies against
  the node key this node holds for them (its own, or a pinned descriptor's).
  Approvals of non-members, of unknown or wrong keys, or for another change do not
  count; a nation counts once. A change whose quorum can no longer be reached
  (too many members rejected) is rejected.
- **The chain** applies changes in one order: a change is appended only at
  ``seq == len(chain)`` with ``prev`` equal to the head's id. A second, different
  change for a place already taken is a **fork**: refused and reported
  (:class:`ChangeFork`), never applied -- every node applies the same sequence.

Membership and quorum rules are themselves changes, so the chain carries the
members and rules in force at each place: a change is judged by the members and
rules the chain holds *before* it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from relto.errors import InvalidInput
from relto.federation._keys import PublicJwk, SigningKey, sign_compact, split_compact
from relto.federation._keys import verify_compact as _verify_compact
from relto.federation.errors import FederationError
from relto.partnership.service import check_justification

__all__ = [
    "APPROVAL_TYP",
    "GENESIS",
    "KINDS",
    "Approval",
    "Change",
    "ChangeChain",
    "ChangeFork",
    "InvalidChange",
    "QuorumState",
    "approve",
    "verify_approval",
]

#: ``prev`` of the first change of a partnership.
GENESIS = "0" * 64
APPROVAL_TYP = "relto-change-approval+jwt"
_APPROVAL_HEADER = frozenset({"alg", "typ", "kid"})
_APPROVAL_CLAIMS = frozenset({"change", "nation", "decision", "by", "at", "justification"})
_CHANGE_MEMBERS = frozenset(
    {"partnership", "seq", "prev", "kind", "payload", "nation", "person", "at", "justification"}
)
_NATION = re.compile(r"^[A-Z]{3}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_AGREEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
_PERSON = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LEVELS = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
MAX_CHANGE_BYTES = 16 * 1024
MAX_JUSTIFICATION = 2000


class InvalidChange(FederationError):
    """A change or an approval that is malformed, or not allowed where it stands."""


class ChangeFork(InvalidChange):
    """A different change for a place in the chain that is already taken."""

    def __init__(self, message: str, *, seq: int, applied: str, offered: str) -> None:
        super().__init__(message)
        self.seq, self.applied, self.offered = seq, applied, offered


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidChange(f"{what} is not a time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidChange(f"{what} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise InvalidChange(f"{what} has no time zone")
    return at.astimezone(UTC)


def _nation(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NATION.match(value):
        raise InvalidChange(f"{what} is not an ISO 3166 alpha-3 code")
    return value


def _slug(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise InvalidChange(f"{what} must be 1-63 lowercase letters, digits or hyphens")
    return value


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidChange(f"{what} must be 1 to {limit} characters")
    return value


def _exactly(
    payload: Mapping[str, Any], required: frozenset[str], optional: frozenset[str] = frozenset()
) -> None:
    missing = required - set(payload)
    extra = set(payload) - required - optional
    if missing:
        raise InvalidChange(f"the payload lacks {sorted(missing)}")
    if extra:
        raise InvalidChange(f"the payload has members this kind does not take: {sorted(extra)}")


def _admission_grant(p: Mapping[str, Any]) -> None:
    _exactly(
        p, frozenset({"nation", "project", "ceiling", "valid_from"}), frozenset({"valid_until"})
    )
    _nation(p["nation"], "nation")
    _slug(p["project"], "project")
    if p["ceiling"] not in _LEVELS:
        raise InvalidChange(f"ceiling must be one of {', '.join(_LEVELS)}")
    start = _time(p["valid_from"], "valid_from")
    if p.get("valid_until") is not None and _time(p["valid_until"], "valid_until") <= start:
        raise InvalidChange("valid_until must be after valid_from")


def _admission_end(p: Mapping[str, Any]) -> None:
    _exactly(p, frozenset({"nation", "project", "at"}))
    _nation(p["nation"], "nation")
    _slug(p["project"], "project")
    _time(p["at"], "at")


def _project_create(p: Mapping[str, Any]) -> None:
    _exactly(p, frozenset({"id", "name"}), frozenset({"description"}))
    _slug(p["id"], "project id")
    _text(p["name"], "project name", 200)
    if "description" in p:
        _text(p["description"], "description", 2000)


def _member(p: Mapping[str, Any]) -> None:
    _exactly(p, frozenset({"nation"}))
    _nation(p["nation"], "nation")


def _date(value: object, what: str) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise InvalidChange(f"{what} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidChange(f"{what} is not a date (YYYY-MM-DD)") from None


def _agreement(p: Mapping[str, Any]) -> None:
    """A bilateral security-of-information agreement the partnership records as in
    force from ``in_force`` (a date, UTC) until ``terminated`` if given: clearances of
    either party then count for the other's information (relto.vetting recognition).
    Recording the same ``id`` again replaces the record (to end it, say)."""
    _exactly(
        p,
        frozenset({"id", "parties", "title", "in_force", "scope", "sources"}),
        frozenset({"terminated"}),
    )
    if not isinstance(p["id"], str) or not _AGREEMENT_ID.match(p["id"]):
        raise InvalidChange("agreement id must be 1-63 letters, digits or hyphens")
    parties = p["parties"]
    if not isinstance(parties, list) or len(parties) != 2 or len(set(parties)) != 2:
        raise InvalidChange(
            "an agreement has exactly two distinct parties (recognition is bilateral; "
            "record a multilateral one pair by pair)"
        )
    for n in parties:
        _nation(n, "party")
    _text(p["title"], "title", 300)
    start = _date(p["in_force"], "in_force")
    if p.get("terminated") is not None and _date(p["terminated"], "terminated") <= start:
        raise InvalidChange("terminated must be after in_force")
    if p["scope"] not in ("government", "military"):
        raise InvalidChange('scope is "government" or "military"')
    sources = p["sources"]
    if not isinstance(sources, list) or not 1 <= len(sources) <= 10:
        raise InvalidChange("an agreement names 1 to 10 sources")
    for src in sources:
        _text(src, "source", 500)


def _quorum(p: Mapping[str, Any]) -> None:
    _exactly(p, frozenset({"kind", "required"}))
    if p["kind"] not in KINDS:
        raise InvalidChange(f"no such kind of change: {str(p['kind'])[:40]!r}")
    required = p["required"]
    if required != "all" and not (isinstance(required, int) and not isinstance(required, bool)):
        raise InvalidChange('required is "all" or a number of members')
    if isinstance(required, int) and required < 1:
        raise InvalidChange("required is at least 1")


#: The kinds of change, each with its payload check.
KINDS = {
    "admission.grant": _admission_grant,
    "admission.end": _admission_end,
    "project.create": _project_create,
    "member.add": _member,
    "member.remove": _member,
    "agreement.record": _agreement,
    "quorum.set": _quorum,
}


@dataclass(frozen=True)
class Change:
    """One proposed change, as every node holds it (see the module docstring)."""

    partnership: str
    seq: int
    prev: str
    kind: str
    payload: Mapping[str, Any]
    nation: str
    person: str
    at: datetime
    justification: str

    def __post_init__(self) -> None:
        _slug(self.partnership, "partnership")
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise InvalidChange("seq is a number from 0")
        if not isinstance(self.prev, str) or not _HEX64.match(self.prev):
            raise InvalidChange("prev is a SHA-256 in hex")
        if (self.seq == 0) != (self.prev == GENESIS):
            raise InvalidChange("the first change, and only it, follows the genesis")
        check = KINDS.get(self.kind)
        if check is None:
            raise InvalidChange(f"no such kind of change: {str(self.kind)[:40]!r}")
        if not isinstance(self.payload, Mapping):
            raise InvalidChange("the payload is an object")
        check(self.payload)
        _nation(self.nation, "nation")
        if not isinstance(self.person, str) or not _PERSON.match(self.person):
            raise InvalidChange("person is a person id")
        if self.at.tzinfo is None:
            raise InvalidChange("at has no time zone")
        try:  # the registry's rule for why a partnership change is made
            normal = check_justification(self.justification)
        except (InvalidInput, TypeError) as exc:
            raise InvalidChange(str(exc)) from None
        if normal != self.justification:
            raise InvalidChange("the justification has surrounding spaces or CR LF line ends")
        if len(self.canonical()) > MAX_CHANGE_BYTES:
            raise InvalidChange(f"a change is at most {MAX_CHANGE_BYTES} bytes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "partnership": self.partnership,
            "seq": self.seq,
            "prev": self.prev,
            "kind": self.kind,
            "payload": dict(self.payload),
            "nation": self.nation,
            "person": self.person,
            "at": self.at.astimezone(UTC).isoformat(),
            "justification": self.justification,
        }

    def canonical(self) -> bytes:
        """The bytes every node hashes and stores."""
        return _canonical(self.to_dict())

    @property
    def id(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def parse(cls, data: bytes | str) -> Change:
        """A change from its canonical JSON; :class:`InvalidChange` for anything else
        (other JSON that means the same is refused too: the bytes are what is signed)."""
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > MAX_CHANGE_BYTES:
            raise InvalidChange(f"a change is at most {MAX_CHANGE_BYTES} bytes")
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidChange("a change is a JSON object") from None
        if not isinstance(d, dict) or set(d) != _CHANGE_MEMBERS:
            raise InvalidChange(f"a change has exactly the members {sorted(_CHANGE_MEMBERS)}")
        try:
            change = cls(
                partnership=d["partnership"],
                seq=d["seq"],
                prev=d["prev"],
                kind=d["kind"],
                payload=d["payload"],
                nation=d["nation"],
                person=d["person"],
                at=_time(d["at"], "at"),
                justification=d["justification"],
            )
        except (TypeError, AttributeError):
            raise InvalidChange("a change's members have the wrong types") from None
        if change.canonical() != raw:
            raise InvalidChange("a change must be in canonical form (sorted keys, no spaces)")
        return change


@dataclass(frozen=True)
class Approval:
    """A member node's verified approval or rejection of a change."""

    change: str
    nation: str
    decision: str
    by: str
    at: datetime
    justification: str
    token: str


def approve(
    change: Change,
    *,
    nation: str,
    by: str,
    key: SigningKey,
    at: datetime,
    justification: str,
    decision: str = "approve",
) -> str:
    """The node of ``nation`` signs its ``decision`` on ``change`` with its node key."""
    if decision not in ("approve", "reject"):
        raise ValueError("decision is approve or reject")
    _nation(nation, "nation")
    _text(justification, "justification", MAX_JUSTIFICATION)
    claims = {
        "change": change.id,
        "nation": nation,
        "decision": decision,
        "by": by,
        "at": at.astimezone(UTC).isoformat(),
        "justification": justification,
    }
    return sign_compact(key, {"typ": APPROVAL_TYP, "kid": key.fingerprint}, claims)


def verify_approval(token: str, change: Change, keys: Mapping[str, PublicJwk]) -> Approval:
    """The approval in ``token`` of ``change``, signed by the node key ``keys`` holds
    for the nation it names; :class:`InvalidChange` otherwise."""
    try:
        parts = split_compact(token, typ=APPROVAL_TYP, header_members=_APPROVAL_HEADER)
    except ValueError as exc:
        raise InvalidChange(f"not an approval: {exc}") from None
    c = parts.unverified_claims
    if set(c) != _APPROVAL_CLAIMS:
        raise InvalidChange(f"an approval has exactly the claims {sorted(_APPROVAL_CLAIMS)}")
    nation = _nation(c["nation"], "the approving nation")
    key = keys.get(nation)
    if key is None:
        raise InvalidChange(f"no node key is held for {nation}: its approval cannot count")
    if not _verify_compact(parts, key):
        raise InvalidChange(f"the approval is not signed by the node key of {nation}")
    if c["change"] != change.id:
        raise InvalidChange("the approval is for another change")
    if c["decision"] not in ("approve", "reject"):
        raise InvalidChange("decision is approve or reject")
    if not isinstance(c["by"], str) or not _PERSON.match(c["by"]):
        raise InvalidChange("by is a person id")
    return Approval(
        change=change.id,
        nation=nation,
        decision=str(c["decision"]),
        by=c["by"],
        at=_time(c["at"], "the approval's at"),
        justification=_text(c["justification"], "justification", MAX_JUSTIFICATION),
        token=parts.token,
    )


@dataclass(frozen=True)
class QuorumState:
    """Where a change stands: who approved and rejected (members only, once each),
    how many approvals it needs, and the verdict."""

    approved_by: frozenset[str]
    rejected_by: frozenset[str]
    required: int
    members: frozenset[str]

    @property
    def reached(self) -> bool:
        return len(self.approved_by) >= self.required

    @property
    def impossible(self) -> bool:
        """Not enough members are left who have not rejected."""
        return len(self.members - self.rejected_by) < self.required

    @property
    def status(self) -> str:
        return "approved" if self.reached else "rejected" if self.impossible else "pending"


@dataclass
class ChangeChain:
    """The applied changes of one partnership, in order, and what they put in force.

    ``founders``: the members at the start (the partnership as created); the chain's
    ``member.add`` / ``member.remove`` and ``quorum.set`` changes change them.
    """

    partnership: str
    founders: frozenset[str]
    applied: list[tuple[Change, tuple[Approval, ...]]] = field(default_factory=list)
    members: set[str] = field(default_factory=set)
    rules: dict[str, int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.founders:
            raise InvalidChange("a partnership has at least one member")
        for n in self.founders:
            _nation(n, "member")
        self.members = set(self.founders)

    @property
    def head(self) -> str:
        return self.applied[-1][0].id if self.applied else GENESIS

    @property
    def next_seq(self) -> int:
        return len(self.applied)

    def required(self, kind: str) -> int:
        """How many member approvals a change of ``kind`` needs now."""
        rule = self.rules.get(kind, "all")
        n = len(self.members)
        return n if rule == "all" else min(int(rule), n)

    def quorum(self, change: Change, approvals: Iterable[Approval]) -> QuorumState:
        """The standing of ``change`` given verified ``approvals``: members only, the
        first word of each nation counts, a proposer's own node is one of them."""
        approved: set[str] = set()
        rejected: set[str] = set()
        for a in approvals:
            if a.change != change.id or a.nation not in self.members:
                continue
            if a.nation in approved or a.nation in rejected:
                continue
            (approved if a.decision == "approve" else rejected).add(a.nation)
        return QuorumState(
            frozenset(approved),
            frozenset(rejected),
            self.required(change.kind),
            frozenset(self.members),
        )

    def check_place(self, change: Change) -> None:
        """:class:`ChangeFork` when ``change`` is another change for a place already
        taken; :class:`InvalidChange` when it does not follow the head."""
        if change.partnership != self.partnership:
            raise InvalidChange("the change is for another partnership")
        if change.seq < self.next_seq:
            applied = self.applied[change.seq][0]
            if applied.id != change.id:
                raise ChangeFork(
                    f"change {change.seq} is already {applied.id[:12]}…; "
                    f"{change.id[:12]}… forks the partnership's chain and is refused",
                    seq=change.seq,
                    applied=applied.id,
                    offered=change.id,
                )
            raise InvalidChange(f"change {change.seq} is applied already")
        if change.seq > self.next_seq:
            raise InvalidChange(
                f"change {change.seq} cannot be applied before change {self.next_seq}"
            )
        if change.prev != self.head:
            raise ChangeFork(
                f"change {change.seq} does not follow {self.head[:12]}… (it names "
                f"{change.prev[:12]}…): a fork, refused",
                seq=change.seq,
                applied=self.head,
                offered=change.id,
            )
        if change.nation not in self.members:
            raise InvalidChange(f"{change.nation} is not a member: it may not propose changes")

    def append(self, change: Change, approvals: Sequence[Approval]) -> QuorumState:
        """Apply ``change`` if it is next and its quorum is reached; else raise and
        change nothing. The members and rules in force before it judge it."""
        self.check_place(change)
        self._check_effect(change)
        state = self.quorum(change, approvals)
        if not state.reached:
            raise InvalidChange(
                f"change {change.seq} has {len(state.approved_by)} of the {state.required} "
                f"member approvals it needs ({', '.join(sorted(state.approved_by)) or 'none'})"
            )
        counted = tuple(
            a for a in approvals if a.nation in state.approved_by and a.decision == "approve"
        )
        self.applied.append((change, counted))
        self._put_in_force(change)
        return state

    def replay(self, change: Change, approvals: Sequence[Approval]) -> None:
        """Put back a change this node applied before (from its storage): its place is
        checked, its quorum is not -- a member's key may have rotated since it was
        reached, and what was applied stays applied."""
        self.check_place(change)
        self.applied.append((change, tuple(approvals)))
        self._put_in_force(change)

    def _check_effect(self, change: Change) -> None:
        """Refuse a membership change that makes no sense where it stands."""
        nation = change.payload.get("nation")
        if change.kind == "member.add" and nation in self.members:
            raise InvalidChange(f"{nation} is a member already")
        if change.kind == "member.remove":
            if nation not in self.members:
                raise InvalidChange(f"{nation} is not a member")
            if len(self.members) == 1:
                raise InvalidChange("the last member cannot be removed")

    def _put_in_force(self, change: Change) -> None:
        p = change.payload
        if change.kind == "member.add":
            self.members.add(str(p["nation"]))
        elif change.kind == "member.remove":
            self.members.discard(str(p["nation"]))
        elif change.kind == "quorum.set":
            self.rules[str(p["kind"])] = p["required"]
