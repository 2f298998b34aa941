"""A person's work across nodes: signed in at home, attested everywhere else.

:class:`HomeSession` holds the person's DPoP key and their home node's access
token. For another node it asks the home node for an attestation bound to that
key (renewed a minute before it expires) and hands back a :class:`NodeClient`
that presents it. :meth:`HomeSession.open` opens an object wherever it is held:
the container comes from the holding node, and each key share from the KAS the
container names -- one for a plain object, several for one in joint custody --
through the client of the node that KAS belongs to. A container naming a KAS
that is not one of the session's nodes is refused before anything is sent there:
a hostile container must not collect credentials.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx

from relto.audit.errors import InvalidNote
from relto.audit.note import CosignatureVerifier, NoteVerifier, parse_verifier
from relto.audit.partner_view import VerifiedPartnerPage
from relto.client._dpop import DpopKey
from relto.client.errors import (
    AccessDenied,
    ClientError,
    KasUnreachable,
    NodeUnreachable,
    NotFound,
)
from relto.client.node import (
    Attestation,
    Credential,
    NodeClient,
    ObjectInfo,
    Partner,
    same_url,
)
from relto.ztdf import Unwrap, open_container
from relto.ztdf.errors import FailureKind, KeyAccessDenied, ZtdfError
from relto.ztdf.manifest import KeyAccess

__all__ = ["AttestationCache", "HomeSession", "Partner", "open_with"]

#: An attestation is renewed when less than this is left of it.
RENEW_BEFORE = timedelta(seconds=60)


class AttestationCache:
    """A current attestation from ``fetch``, fetched again when less than
    :data:`RENEW_BEFORE` of it is left; call it for the token (a credential)."""

    def __init__(
        self,
        fetch: Callable[[], Attestation],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._held: Attestation | None = None

    def __call__(self) -> str:
        with self._lock:
            if self._held is None or self._held.expires_at - self._clock() < RENEW_BEFORE:
                self._held = self._fetch()
            return self._held.token


class HomeSession:
    """A person signed in at their home node.

    ``token``: an access token of the home nation's identity provider, bound to
    ``dpop`` (or a function returning a fresh one); ``attest``: how to get an
    attestation (default: ask the home node's API; a node acting for a console
    session passes its own issuer); ``clock``: for renewing attestations.
    """

    def __init__(
        self,
        home_url: str,
        *,
        token: Credential,
        dpop: DpopKey | None = None,
        nation: str = "",
        partners: tuple[Partner, ...] = (),
        attest: Callable[[], Attestation] | None = None,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.dpop = dpop or DpopKey.generate()
        self._timeout, self._transport = timeout, transport
        self.home = NodeClient(
            home_url,
            credential=token,
            dpop=self.dpop,
            nation=nation,
            timeout=timeout,
            transport=transport,
        )
        self._attestation = AttestationCache(attest or self.home.attestation, clock)
        self._partners: dict[str, NodeClient] = {}
        for p in partners:
            self.partner(p.base_url, nation=p.nation, kas_url=p.kas_url)

    def close(self) -> None:
        self.home.close()
        for client in self._partners.values():
            client.close()

    def __enter__(self) -> HomeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def attestation(self) -> str:
        """A current attestation of the person (renewed when under a minute is left)."""
        return self._attestation()

    def discover(self) -> list[Partner]:
        """Add the partner nodes the home node pins (and will vouch for the person to);
        the list, by nation."""
        found = self.home.partners()
        for p in found:
            self.partner(p.base_url, nation=p.nation, kas_url=p.kas_url)
        return found

    def partner(self, base_url: str, *, nation: str = "", kas_url: str | None = None) -> NodeClient:
        """The client of another nation's node, presenting the person's attestation."""
        key = base_url.rstrip("/")
        found = self._partners.get(key)
        if found is None:
            found = NodeClient(
                base_url,
                credential=self.attestation,
                dpop=self.dpop,
                nation=nation,
                kas_url=kas_url,
                timeout=self._timeout,
                transport=self._transport,
            )
            self._partners[key] = found
        return found

    def by_nation(self, nation: str) -> NodeClient:
        """The client of ``nation``'s node (home or a partner added or discovered)."""
        for node in self.nodes():
            if node.nation == nation:
                return node
        raise NotFound(f"no node of {nation[:3]} is known to this session (discover first)")

    def nodes(self) -> list[NodeClient]:
        """Home first, then the partners in the order they were added."""
        return [self.home, *self._partners.values()]

    def objects(self, *, readable: bool = False) -> Iterator[ObjectInfo]:
        """Every object the person may know of, at home and at every partner; a partner
        that cannot be reached raises (its objects alone are unavailable: catch
        :class:`NodeUnreachable` per node with :meth:`NodeClient.objects` to go on)."""
        for node in self.nodes():
            yield from node.objects(readable=readable)

    def audit_partner(self, nation: str, *, start: int = 0, limit: int = 50) -> VerifiedPartnerPage:
        """As an auditor (or security officer) of the home nation: the entries of
        ``nation``'s log that concern the home nation, from index ``start``, every
        one verified against keys the home node holds -- the log key it pinned for
        ``nation`` and its own witness key, which must have cosigned the checkpoint
        -- so nothing of ``nation``'s node is trusted. :class:`ProofRejected` when
        anything fails to verify; :class:`NotFound` when the home node pins no node
        of ``nation``."""
        mine = self.home.home_nation()
        pinned = next((p for p in self.home.partners() if p.nation == nation), None)
        if pinned is None or not pinned.log_key:
            raise NotFound(f"your home node pins no node of {nation[:3]}: nothing to check it by")
        log_key = _verifier(pinned.log_key, NoteVerifier, self.home.label)
        witness = _verifier(self.home.witness_key(), CosignatureVerifier, self.home.label)
        node = self.partner(pinned.base_url, nation=nation, kas_url=pinned.kas_url)
        return node.partner_audit(
            mine, log_key=log_key, witness_key=witness, start=start, limit=limit
        )

    def open(self, node: NodeClient, object_id: str) -> bytes:
        """The plaintext of ``object_id`` held by ``node``; :class:`AccessDenied` with
        the holding node's reasons when a KAS refuses."""
        return open_with(node, object_id, self.nodes())


def open_with(
    holder: NodeClient,
    object_id: str,
    nodes: list[NodeClient],
    local: Mapping[str, Unwrap] | None = None,
) -> bytes:
    """Fetch ``object_id``'s container from ``holder`` and open it in memory, each key
    share rewrapped by the node among ``nodes`` whose KAS the entry names -- or, for
    a KAS URL in ``local``, by that unwrap (a node opening for its own person
    through its own KAS in-process)."""
    try:
        container = holder.container(object_id)
    except KasUnreachable:
        raise
    except NodeUnreachable as exc:  # the node holds the object and its key: both are out
        raise KasUnreachable(
            f"{holder.label} key access service unreachable: the {holder.label} node does not "
            f"answer ({exc}); only {holder.label}'s objects are unavailable",
            node=holder.label,
        ) from None
    #: What went wrong with each key share, in the client's own terms.
    problems: list[ClientError] = []

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        mine = next((u for url, u in (local or {}).items() if same_url(url, ka.url)), None)
        if mine is not None:
            return mine(ka, policy_b64)
        owner = next((n for n in nodes if n.holds(ka.url)), None)
        if owner is None:
            problems.append(
                ClientError(
                    f"{holder.label} object {object_id}: the container names a KAS that is not "
                    f"one of this session's nodes ({ka.url[:200]}); nothing was sent to it",
                    node=holder.label,
                )
            )
            raise KeyAccessDenied("KAS not allowed", kind=FailureKind.KAS_NOT_ALLOWED)
        try:
            return owner.rewrap(ka, policy_b64)
        except ClientError as exc:
            problems.append(exc)
            raise

    out = io.BytesIO()
    try:
        open_container(io.BytesIO(container), out, unwrap=unwrap)
    except KeyAccessDenied as exc:
        if problems:  # unreachable, not authenticated, a stranger KAS: say that
            raise problems[0] from None
        if exc.kind is FailureKind.DENIED:
            raise _denied(holder, object_id) from None
        raise ClientError(f"{holder.label} object {object_id}: {exc}", node=holder.label) from None
    except ZtdfError as exc:
        raise ClientError(
            f"{holder.label} object {object_id} cannot be opened: {exc}", node=holder.label
        ) from None
    return out.getvalue()


_V = TypeVar("_V", NoteVerifier, CosignatureVerifier)


def _verifier(vkey: str, kind: type[_V], home: str) -> _V:
    """The home node's key of ``kind``; :class:`NodeUnreachable` for anything else."""
    try:
        v = parse_verifier(vkey)
    except InvalidNote:
        v = None
    if not isinstance(v, kind):
        raise NodeUnreachable(f"{home} node sent a malformed {kind.__name__} key", node=home)
    return v


def _denied(holder: NodeClient, object_id: str) -> AccessDenied:
    """The refusal, with the holding node's explained decision when it gives one."""
    try:
        decision = holder.decision(object_id)
    except AccessDenied as refused:  # refused before any decision (the attestation's status)
        return refused
    except ClientError:
        return AccessDenied(f"{holder.label} key access service refused", node=holder.label)
    codes = ", ".join(r.code for r in decision.reasons) or "refused"
    return AccessDenied(
        f"{holder.label} refused: {codes}", node=holder.label, reasons=decision.reasons
    )
