"""A partner auditor's view of a node's log: the entries that concern their
nation, checked without trusting the node that serves them (ADR 0142).

**What concerns a nation.** For a partner's auditor an entry concerns nation
``N`` when *its own bytes* say so -- nothing is read from the serving node's
database, so the auditor can check the rule on every entry they receive:

* a nation field of the payload names ``N``: ``nation``, ``originator`` or
  ``home_nation`` equals ``N`` (three capital letters), or ``N`` is one of
  ``members`` or ``partners``;
* a person field (``by``, ``actor``, ``subject``, ``person_id``) names a person
  of ``N`` working here with their home node's attestation, ``<id>@N``
  (ADR 0112: this node's own ids never hold ``@``).

That covers what ``N``'s people did at the node (decisions, key rewraps and
authorisation decisions name the attested id or the caller's nation), what was
done with objects ``N`` originated (``decision``, ``document.protected``,
``document.relabelled`` and rewraps of jointly held objects name the
originator), and what names ``N`` itself (admissions, partnerships, pins,
witnessing alarms about ``N``). An entry that concerns ``N`` only through the
node's records -- a local person whose directory entry says ``N``, an object
named by its id alone -- is *not* in this view: the auditor could not check it
without trusting that database. The node's own auditors see those through
:class:`relto.audit.access.AuditReader`.

**What the page proves.** :func:`verify_page` accepts a page only when the
checkpoint is signed by the serving node's log key *and* cosigned by the
auditor's own nation's witness key (so the tree is one ``N``'s witness saw grow
consistently: the node cannot show ``N`` a history it rewrote), each entry's
leaf hash -- recomputed from the bytes served -- is proved included in that
checkpoint (RFC 9162 section 2.1.3.2), the body is canonical and names its own
index, and the entry concerns ``N`` by the rule above. It does not prove that
no entry concerning ``N`` was left out: entries are served without the bodies of
the others. Names ``unverified`` say what has not been checked yet.

Wire format (the API's JSON answer, :func:`page_to_json` / :func:`page_from_json`)::

    {"nation": "USA", "checkpoint": "<signed note>", "tree_size": 1234,
     "entries": [{"index": 7, "body": "<base64>", "proof": ["<base64>", ...]}],
     "next": 42}

``next`` is where the following page starts (``null``: the checkpoint's end).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint, open_checkpoint
from relto.audit.entries import MAX_ENTRY_BYTES, Entry, decode_entry
from relto.audit.errors import InvalidNote, InvalidProof, PartnerPageRejected
from relto.audit.note import (
    MAX_NOTE_SIZE,
    CosignatureVerifier,
    NoteVerifier,
    open_note,
    parse_note,
)

__all__ = [
    "MAX_PARTNER_PAGE",
    "ProvedEntry",
    "UnverifiedPartnerPage",
    "VerifiedEntry",
    "VerifiedPartnerPage",
    "concerns",
    "evident_nations",
    "page_from_json",
    "page_to_json",
    "verify_page",
]

#: Most entries one page carries.
MAX_PARTNER_PAGE = 100
#: Most hashes in one inclusion proof (a tree of 2**63 leaves needs 63).
MAX_PROOF_HASHES = 64
_NATION = re.compile(r"^[A-Z]{3}$")
_ATTESTED = re.compile(r"^[^@\s]{1,200}@([A-Z]{3})$")
_NATION_KEYS = ("nation", "originator", "home_nation")
_NATION_LIST_KEYS = ("members", "partners")
_PEOPLE_KEYS = ("by", "actor", "subject", "person_id")
_MAX_LIST = 50
_FIELDS = frozenset({"nation", "checkpoint", "tree_size", "entries", "next"})
_ENTRY_FIELDS = frozenset({"index", "body", "proof"})
_MAX_INDEX = 1 << 62


# -- the rule ---------------------------------------------------------------------------


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value[:_MAX_LIST] if isinstance(v, str)]
    return []


def evident_nations(payload: Mapping[str, Any]) -> frozenset[str]:
    """The nations an entry's payload itself names (the rule in the module docstring)."""
    found = {n for k in _NATION_KEYS for n in _texts(payload.get(k)) if _NATION.match(n)}
    found |= {n for k in _NATION_LIST_KEYS for n in _texts(payload.get(k)) if _NATION.match(n)}
    for k in _PEOPLE_KEYS:
        for person in _texts(payload.get(k)):
            m = _ATTESTED.match(person)
            if m:
                found.add(m.group(1))
    return frozenset(found)


def concerns(payload: Mapping[str, Any], nation: str) -> bool:
    """Whether the entry with ``payload`` concerns ``nation`` for a partner auditor."""
    return nation in evident_nations(payload)


# -- the page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvedEntry:
    """An entry as served: its index, its bytes as the log stores them, and the
    audit path of its leaf in the checkpoint's tree. Nothing here is verified."""

    index: int
    body: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class UnverifiedPartnerPage:
    """A page as the serving node sent it: not to be believed before
    :func:`verify_page`."""

    nation: str
    #: The signed note (C2SP checkpoint) with its signature and cosignature lines.
    checkpoint: str
    tree_size: int
    entries: tuple[ProvedEntry, ...]
    #: Where the next page starts; ``None`` at the checkpoint's end.
    next_from: int | None


@dataclass(frozen=True)
class VerifiedEntry:
    """An entry proved in a checkpoint the auditor's nation cosigned, concerning it."""

    index: int
    entry: Entry
    body: bytes
    leaf_hash: bytes
    #: Every nation the entry names by the rule (the auditor's among them).
    nations: frozenset[str]


@dataclass(frozen=True)
class VerifiedPartnerPage:
    nation: str
    checkpoint: Checkpoint
    #: When the auditor's nation's witness cosigned the checkpoint (POSIX seconds).
    cosigned_at: int
    entries: tuple[VerifiedEntry, ...]
    next_from: int | None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def page_to_json(page: UnverifiedPartnerPage) -> dict[str, Any]:
    return {
        "nation": page.nation,
        "checkpoint": page.checkpoint,
        "tree_size": page.tree_size,
        "entries": [
            {"index": e.index, "body": _b64(e.body), "proof": [_b64(h) for h in e.proof]}
            for e in page.entries
        ],
        "next": page.next_from,
    }


def _malformed(why: str) -> PartnerPageRejected:
    return PartnerPageRejected(f"the page is malformed: {why}", reason="malformed")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INDEX:
        raise _malformed(f"{what} is not a size or index")
    return value


def _bytes(value: Any, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > (limit + 2) // 3 * 4:
        raise _malformed(f"{what} is not base64 of at most {limit} bytes")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _malformed(f"{what} is not base64") from None


def page_from_json(data: object) -> UnverifiedPartnerPage:
    """Read a page from the API's JSON; :class:`PartnerPageRejected` (``malformed``)
    for anything else: unknown fields, more than :data:`MAX_PARTNER_PAGE`
    entries, proofs longer than 64 hashes, bodies over the log's entry limit."""
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise _malformed(f"expected the fields {sorted(_FIELDS)}")
    nation, note, entries = data["nation"], data["checkpoint"], data["entries"]
    if not isinstance(nation, str) or not _NATION.match(nation):
        raise _malformed("nation is not three capital letters")
    if not isinstance(note, str) or len(note) > MAX_NOTE_SIZE:
        raise _malformed("checkpoint is not a signed note")
    if not isinstance(entries, list) or len(entries) > MAX_PARTNER_PAGE:
        raise _malformed(f"entries is not a list of at most {MAX_PARTNER_PAGE}")
    out = []
    for e in entries:
        if not isinstance(e, dict) or set(e) != _ENTRY_FIELDS:
            raise _malformed(f"an entry needs exactly {sorted(_ENTRY_FIELDS)}")
        proof = e["proof"]
        if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
            raise _malformed(f"a proof is not a list of at most {MAX_PROOF_HASHES} hashes")
        out.append(
            ProvedEntry(
                _int(e["index"], "an entry's index"),
                _bytes(e["body"], "an entry's body", MAX_ENTRY_BYTES),
                tuple(_bytes(h, "a proof hash", merkle.HASH_SIZE) for h in proof),
            )
        )
    nxt = data["next"]
    return UnverifiedPartnerPage(
        nation,
        note,
        _int(data["tree_size"], "tree_size"),
        tuple(out),
        None if nxt is None else _int(nxt, "next"),
    )


# -- verification -----------------------------------------------------------------------


def _rejected(why: str, reason: str, index: int | None = None) -> PartnerPageRejected:
    return PartnerPageRejected(why, reason=reason, index=index)


def _cosigned(
    page: UnverifiedPartnerPage, log_key: NoteVerifier, witness_key: CosignatureVerifier
) -> tuple[Checkpoint, int]:
    """The checkpoint, once the log's signature and the witness's cosignature verify."""
    try:
        note = parse_note(page.checkpoint)
        cp = open_checkpoint(note, log_key).checkpoint
    except InvalidNote as exc:
        raise _rejected(
            f"the checkpoint is not signed by the log key pinned for the serving node ({exc})",
            "checkpoint_signature",
        ) from None
    try:
        opened = open_note(note, [witness_key])
    except InvalidNote as exc:  # UnknownKey: no line by that key at all
        raise _rejected(
            f"the checkpoint carries no valid cosignature by {witness_key.name} ({exc})",
            "no_cosignature",
        ) from None
    if not any(
        (s.name, s.key_id) == (witness_key.name, witness_key.key_id) for s in opened.verified
    ):
        raise _rejected(f"the checkpoint is not cosigned by {witness_key.name}", "no_cosignature")
    return cp, opened.timestamps[witness_key.name]


def verify_page(
    page: UnverifiedPartnerPage,
    *,
    log_key: NoteVerifier,
    witness_key: CosignatureVerifier,
    nation: str,
    start: int = 0,
) -> VerifiedPartnerPage:
    """Check everything in ``page``, trusting only ``log_key`` (the serving node's,
    as the auditor's own node pinned it), ``witness_key`` (the auditor's own
    nation's witness) and the rule; :class:`PartnerPageRejected` at the first
    failure. ``start``: the index the page was asked from."""
    if not isinstance(nation, str) or not _NATION.match(nation):
        raise ValueError("nation must be three capital letters")
    if page.nation != nation:
        raise _rejected(f"the page is for {page.nation}, not {nation}", "wrong_nation")
    cp, cosigned_at = _cosigned(page, log_key, witness_key)
    if page.tree_size != cp.size:
        raise _malformed(f"tree_size {page.tree_size} is not the checkpoint's {cp.size}")
    entries: list[VerifiedEntry] = []
    last = start - 1
    for e in page.entries:
        if not last < e.index < cp.size:
            raise _rejected(
                f"entry {e.index} is out of order or outside [{start}, {cp.size})",
                "out_of_range",
                e.index,
            )
        last = e.index
        entries.append(_verify_entry(e, cp, nation))
    if page.next_from is not None and not last < page.next_from <= cp.size:
        raise _rejected(f"next ({page.next_from}) is not after the page", "out_of_range")
    return VerifiedPartnerPage(nation, cp, cosigned_at, tuple(entries), page.next_from)


def _verify_entry(e: ProvedEntry, cp: Checkpoint, nation: str) -> VerifiedEntry:
    leaf = merkle.leaf_hash(e.body)
    try:
        merkle.verify_inclusion(e.index, cp.size, leaf, e.proof, cp.root)
    except InvalidProof as exc:
        raise _rejected(
            f"entry {e.index} is not in the cosigned tree of size {cp.size} ({exc})",
            "inclusion",
            e.index,
        ) from None
    try:
        entry = decode_entry(e.body)
    except InvalidProof as exc:
        raise _rejected(f"entry {e.index} is not a canonical log entry ({exc})", "malformed",
                        e.index) from None  # fmt: skip
    if entry.index != e.index:
        raise _rejected(
            f"the entry proved at {e.index} names index {entry.index}", "inclusion", e.index
        )
    nations = evident_nations(entry.payload)
    if nation not in nations:
        raise _rejected(
            f"entry {e.index} ({entry.kind}) does not concern {nation}: it names "
            f"{', '.join(sorted(nations)) or 'no nation'}",
            "not_concerned",
            e.index,
        )
    return VerifiedEntry(e.index, entry, e.body, leaf, nations)
