"""Serving a partner nation's auditor the entries of this log that concern their
nation, with inclusion proofs against a checkpoint their own witness cosigned
(ADR 0142; the rule and the wire format: :mod:`relto.audit.partner_view`).

Who may ask: :data:`relto.authz.Permission.AUDIT_PARTNER_ENTRIES_READ`, decided
and recorded by the authorisation point for the asked nation -- a person whose
home node attests them ``auditor`` or ``security_officer``, for their own home
nation only. The checkpoint is the latest one this node keeps a cosignature of
by that nation's witness, under the witness key pinned for that nation now
(:class:`~relto.audit.witnessing.CheckpointPusher` keeps them); before the first,
:class:`~relto.audit.errors.NotCosigned`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from relto.audit.checkpoint import Checkpoint, parse_checkpoint_body
from relto.audit.entries import decode_entry
from relto.audit.errors import InvalidNote, InvalidProof, NotCosigned
from relto.audit.note import add_signatures, parse_note
from relto.audit.partner_view import (
    MAX_PARTNER_PAGE,
    ProvedEntry,
    UnverifiedPartnerPage,
    concerns,
)
from relto.audit.service import MAX_PAGE, TransparencyLog
from relto.audit.witnessing import CosignatureStore
from relto.authz import Authorizer, Grantee, Permission, Scope

__all__ = ["MAX_PARTNER_SCAN", "PartnerAuditView"]

#: Most log entries one page reads (a nation concerned by few entries goes on from
#: where the page says).
MAX_PARTNER_SCAN = 20_000


class PartnerAuditView:
    """The entries of this node's log that concern one partner nation, proved.

    ``cosignatures``: the partners' witnesses' cosignatures of this log;
    ``witness_keys``: each pinned partner's witness key as pinned now (nation ->
    verifier key).
    """

    def __init__(
        self,
        log: TransparencyLog,
        cosignatures: CosignatureStore,
        witness_keys: Callable[[], Mapping[str, str]],
        authorizer: Authorizer,
        *,
        max_scan: int = MAX_PARTNER_SCAN,
    ) -> None:
        self._log = log
        self._cosignatures = cosignatures
        self._witness_keys = witness_keys
        self._authz = authorizer
        self._max_scan = max(1, min(max_scan, MAX_PARTNER_SCAN))

    def cosigned_checkpoint(self, nation: str) -> tuple[str, Checkpoint]:
        """The latest checkpoint ``nation``'s witness cosigned under its pinned key,
        with every partner's cosignature of it appended; :class:`NotCosigned`."""
        pinned = self._witness_keys().get(nation)
        if pinned is None:
            raise NotCosigned(f"no witness of {nation} is pinned on this node")
        size = self._cosignatures.last_size(nation)
        kept = self._cosignatures.get(size, nation) if size else None
        note = self._log.checkpoint(size) if kept is not None else None
        if kept is None or note is None or kept.witness_key != pinned:
            raise NotCosigned(
                f"no checkpoint of this log is cosigned by the witness of {nation} yet "
                "(it is pushed every RELTO_AUDIT_WITNESS_PUSH_SECONDS): ask again later"
            )
        try:
            cp = parse_checkpoint_body(parse_note(note).text)  # this node signed it
        except InvalidNote:
            raise NotCosigned(f"the checkpoint {nation} cosigned cannot be read") from None
        if not kept.covers(cp):
            raise NotCosigned(f"the cosignature by {nation} does not cover the stored checkpoint")
        lines = [c.signature() for c in self._cosignatures.at(size) if c.covers(cp)]
        return add_signatures(note, *lines), cp

    def page(
        self, who: Grantee, nation: str, *, start: int, limit: int = 50
    ) -> UnverifiedPartnerPage:
        """Entries from index ``start`` that concern ``nation``, oldest first, at most
        ``limit`` (bounded by :data:`MAX_PARTNER_PAGE`), each with its inclusion
        proof in the checkpoint ``nation``'s witness cosigned last; reading at most
        ``max_scan`` entries. Decided and recorded first: AccessDenied for anyone
        but an attested auditor or security officer of ``nation``."""
        limit = max(1, min(limit, MAX_PARTNER_PAGE))
        self._authz.require(
            who,
            Permission.AUDIT_PARTNER_ENTRIES_READ,
            Scope.of([nation]),
            target=f"partner entries of {nation} from {start}",
        )
        note, cp = self.cosigned_checkpoint(nation)
        end = min(cp.size, start + self._max_scan)
        found: list[ProvedEntry] = []
        at = start
        while at < end:
            upto = min(end, at + MAX_PAGE)
            for stored in self._log.entries(at, upto):
                try:
                    entry = decode_entry(stored.body)
                except InvalidProof:
                    continue  # a damaged row names nobody: the node's own auditors see it
                if not concerns(entry.payload, nation):
                    continue
                proof = self._log.inclusion_path(stored.index, cp.size)
                found.append(ProvedEntry(stored.index, stored.body, proof))
                if len(found) >= limit:
                    after = stored.index + 1
                    return UnverifiedPartnerPage(
                        nation, note, cp.size, tuple(found), after if after < cp.size else None
                    )
            at = upto
        return UnverifiedPartnerPage(
            nation, note, cp.size, tuple(found), end if end < cp.size else None
        )
