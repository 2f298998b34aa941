"""One relto node, as a client sees it: its REST API and its key access service.

Every request carries ``Authorization: DPoP <credential>`` and a fresh DPoP proof
of the caller's key (RFC 9449). The credential is an access token of the
person's own nation's identity provider at their home node, or an attestation
their home node issued at any other node (:class:`relto.client.HomeSession`
fetches and renews it). The node decides who the caller is; nothing here claims
anything about the person.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from relto.audit.errors import PartnerPageRejected
from relto.audit.note import CosignatureVerifier, NoteVerifier
from relto.audit.partner_view import VerifiedPartnerPage, page_from_json, verify_page
from relto.client._dpop import DpopKey
from relto.client.errors import (
    AccessDenied,
    ClientError,
    KasUnreachable,
    NodeUnreachable,
    NotAuthenticated,
    NotFound,
    ProofRejected,
    Reason,
    RequestRefused,
)
from relto.kas.client import KasClient
from relto.kas.client import KasUnreachable as _KasDown
from relto.ztdf.errors import FailureKind, KeyAccessDenied
from relto.ztdf.manifest import KeyAccess

__all__ = [
    "Attestation",
    "Credential",
    "Decision",
    "NodeClient",
    "ObjectInfo",
    "Partner",
    "same_url",
]

#: A credential, or a function returning a fresh one for each request.
Credential = str | Callable[[], str]
#: A refusal that names its reason first: ``attestation_revoked: the USA node has ...``.
_NAMED = re.compile(r"^([a-z][a-z0-9_]{2,60}): (.+)$", re.DOTALL)
#: What an object id may look like (it goes into URL paths and console links).
_OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Largest JSON answer read (a page of 100 objects is far below it).
_MAX_JSON = 4 * 1024 * 1024


def same_url(a: str, b: str) -> bool:
    """The same scheme, host, port and path (default ports filled in)."""

    def key(url: str) -> tuple[str, str, int | None, str]:
        p = urlsplit(url)
        default = {"https": 443, "http": 80}.get(p.scheme.lower())
        return (p.scheme.lower(), (p.hostname or "").lower(), p.port or default, p.path.rstrip("/"))

    return key(a) == key(b)


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata as the node shows it to the caller."""

    id: str
    title: str
    project_id: str
    originator: str
    banner: str
    classification: str
    rel_to: tuple[str, ...]
    owner: str
    filename: str
    media_type: str
    size: int
    version: int
    created_at: datetime
    updated_at: datetime
    policy_uuid: str
    #: The node holding it (its nation, or its base URL when the nation is unknown).
    node: str
    #: Nations whose KASes each hold a share of its key (empty: the holder's alone).
    custody: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any], node: str) -> ObjectInfo:
        if not isinstance(d, dict) or not _OBJECT_ID.match(str(d.get("id", ""))):
            raise NodeUnreachable(f"{node} node sent an object with a malformed id", node=node)
        try:
            return cls(
                id=str(d["id"]),
                title=str(d["title"]),
                project_id=str(d["project_id"]),
                originator=str(d["originator"]),
                banner=str(d["banner"]),
                classification=str(d["classification"]),
                rel_to=tuple(str(n) for n in d["rel_to"]),
                owner=str(d["owner"]),
                filename=str(d["filename"]),
                media_type=str(d["media_type"]),
                size=int(d["size"]),
                version=int(d["version"]),
                created_at=datetime.fromisoformat(str(d["created_at"])),
                updated_at=datetime.fromisoformat(str(d.get("updated_at", d["created_at"]))),
                policy_uuid=str(d["policy_uuid"]),
                node=node,
                custody=tuple(str(n) for n in d.get("custody") or ()),
            )
        except (KeyError, TypeError, ValueError):
            raise NodeUnreachable(f"{node} node sent a malformed object", node=node) from None


@dataclass(frozen=True)
class Partner:
    """A partner node: its nation and base URL (and KAS URL, when not ``<base>/kas``)."""

    nation: str
    base_url: str
    kas_url: str | None = None
    #: Its transparency log's verifier key as the home node pinned it ("" unknown).
    log_key: str = ""


@dataclass(frozen=True)
class Decision:
    """A decision the node explained: allowed or not, and every reason."""

    allowed: bool
    reasons: tuple[Reason, ...]
    rule: str
    obligations: tuple[str, ...]


@dataclass(frozen=True)
class Attestation:
    """An attestation the home node issued (a compact JWT) and when it expires."""

    token: str
    expires_at: datetime


class NodeClient:
    """The REST API and KAS of the node at ``base_url``.

    ``credential``: the access token (home node) or attestation (elsewhere), or a
    function returning it; ``dpop``: the key it is bound to; ``nation``: how
    errors name the node (default: its host); ``kas_url``: where its KAS is
    (default ``<base_url>/kas``, what relto nodes write into containers).
    """

    def __init__(
        self,
        base_url: str,
        *,
        credential: Credential,
        dpop: DpopKey,
        nation: str = "",
        kas_url: str | None = None,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        p = urlsplit(base_url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ValueError(f"not a node address: {base_url[:200]!r}")
        self.base_url = base_url.rstrip("/")
        self.nation = nation
        self.kas_url = kas_url or self.base_url + "/kas"
        self.dpop = dpop
        self._credential = credential
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    @property
    def label(self) -> str:
        return self.nation or (urlsplit(self.base_url).hostname or self.base_url)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def credential(self) -> str:
        return self._credential() if callable(self._credential) else self._credential

    # -- HTTP ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        url = self.base_url + path
        headers: dict[str, str] = {"Accept": "application/json"}
        if auth:
            token = self.credential()
            headers["Authorization"] = f"DPoP {token}"
            headers["DPoP"] = self.dpop.proof(method, url, access_token=token)
        try:
            resp = self._http.request(method, url, params=params, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise NodeUnreachable(
                f"{self.label} node unreachable ({type(exc).__name__})", node=self.label
            ) from None
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        if len(resp.content) > _MAX_JSON:
            raise NodeUnreachable(f"{self.label} node sent too large an answer", node=self.label)
        try:
            return resp.json()
        except ValueError:
            raise NodeUnreachable(
                f"{self.label} node did not answer JSON (HTTP {resp.status_code})", node=self.label
            ) from None

    def _error(self, resp: httpx.Response) -> ClientError:
        code, message = "", ""
        try:
            body = resp.json()
            error = body.get("error", body) if isinstance(body, dict) else {}
            code = str(error.get("code", ""))[:60]
            message = "".join(ch for ch in str(error.get("message", ""))[:300] if ch.isprintable())
        except ValueError:
            pass
        node, status = self.label, resp.status_code
        said = f"{node} node: {message or code or f'HTTP {status}'}"
        named = _NAMED.match(message)
        if named and code in ("http_error", "unauthenticated", ""):
            code, message = named.group(1), named.group(2)  # "attestation_revoked: the ..."
        if status == 401:
            return NotAuthenticated(said, node=node, reason=code, status=status)
        if status == 404:
            return NotFound(said, node=node, status=status)
        if status == 403:
            reasons = (Reason(code, message),) if code else ()
            return AccessDenied(said, node=node, reasons=reasons, status=status)
        if status >= 500:
            return NodeUnreachable(said, node=node, status=status)
        return RequestRefused(said, node=node, reason=code, status=status)

    # -- the REST API ---------------------------------------------------------------------

    def objects(self, *, readable: bool = False, page_size: int = 100) -> Iterator[ObjectInfo]:
        """Every object the caller may know of on this node (metadata only), page by page;
        ``readable``: only those the caller may read now."""
        offset = 0
        while True:
            page = self._json(
                self._send(
                    "GET",
                    "/api/v1/objects",
                    params={"offset": offset, "limit": page_size, "readable": readable},
                )
            )
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise NodeUnreachable(f"{self.label} node sent a malformed page", node=self.label)
            for item in items:
                yield ObjectInfo.from_json(item, self.label)
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                return

    def object(self, object_id: str) -> ObjectInfo:
        data = self._json(self._send("GET", f"/api/v1/objects/{_segment(object_id)}"))
        return ObjectInfo.from_json(data, self.label)

    def container(self, object_id: str) -> bytes:
        """The object's ZTDF container (ciphertext: opening it needs its KAS)."""
        return self._send("GET", f"/api/v1/objects/{_segment(object_id)}/container").content

    def decision(self, object_id: str, action: str = "read") -> Decision:
        """The node's explained decision for the caller on ``object_id``."""
        data = self._json(
            self._send(
                "GET", f"/api/v1/objects/{_segment(object_id)}/decision", params={"action": action}
            )
        )
        try:
            return Decision(
                allowed=bool(data["allowed"]),
                reasons=tuple(Reason(str(r["code"]), str(r["sentence"])) for r in data["reasons"]),
                rule=str(data.get("rule", "")),
                obligations=tuple(str(o) for o in data.get("obligations", ())),
            )
        except (KeyError, TypeError):
            raise NodeUnreachable(f"{self.label} node sent a malformed decision") from None

    def protect(
        self,
        data: bytes | BinaryIO,
        *,
        title: str,
        project_id: str,
        classification: str,
        rel_to: Sequence[str],
        filename: str = "document",
        media_type: str = "application/octet-stream",
    ) -> ObjectInfo:
        """Upload a file for the node to label, encrypt (its KAS's key) and keep."""
        body = io.BytesIO(data) if isinstance(data, bytes) else data
        fields: list[tuple[str, str]] = [
            ("title", title),
            ("project_id", project_id),
            ("classification", classification),
            *(("rel_to", n) for n in rel_to),
        ]
        resp = self._send(
            "POST",
            "/api/v1/objects",
            data=fields,
            files={"file": (filename, body, media_type)},
        )
        return ObjectInfo.from_json(self._json(resp), self.label)

    def attestation(self) -> Attestation:
        """An attestation of the caller from this node -- their home node -- bound to
        the caller's DPoP key."""
        data = self._json(self._send("POST", "/api/v1/federation/attestation"))
        try:
            return Attestation(str(data["attestation"]), datetime.fromisoformat(data["expires_at"]))
        except (KeyError, TypeError, ValueError):
            raise NodeUnreachable(f"{self.label} node sent a malformed attestation") from None

    def partners(self) -> list[Partner]:
        """The partner nodes this node -- the caller's home node -- pins."""
        data = self._partner_list()
        try:
            return [
                Partner(
                    str(p["nation"]),
                    str(p["base_url"]),
                    str(p.get("kas_url") or "") or None,
                    str(p.get("log_key") or ""),
                )
                for p in data["partners"]
            ]
        except (KeyError, TypeError):
            raise NodeUnreachable(f"{self.label} node sent a malformed partner list") from None

    def home_nation(self) -> str:
        """The nation of this node, as it says when it vouches for the caller."""
        nation = self._partner_list().get("nation")
        if not isinstance(nation, str) or len(nation) != 3:
            raise NodeUnreachable(f"{self.label} node sent a malformed partner list")
        if not self.nation:
            self.nation = nation
        return nation

    def witness_key(self) -> str:
        """This node's -- the caller's home node's -- own witness key, which cosigns
        partners' checkpoints (ADR 0140): what a partner auditor checks by."""
        key = self._partner_list().get("witness_key")
        if not isinstance(key, str) or not key:
            raise NodeUnreachable(f"{self.label} node did not say its witness key")
        return key

    def partner_audit(
        self,
        nation: str,
        *,
        log_key: NoteVerifier,
        witness_key: CosignatureVerifier,
        start: int = 0,
        limit: int = 50,
    ) -> VerifiedPartnerPage:
        """The entries of this node's log that concern ``nation`` (the caller's own,
        as an attested auditor), from index ``start``, each proved in a checkpoint
        signed by ``log_key`` and cosigned by ``witness_key`` -- keys the caller got
        from their own home node, never from this one. :class:`ProofRejected` when
        anything fails to verify (ADR 0142)."""
        resp = self._send(
            "GET",
            "/api/v1/audit/partner/entries",
            params={"nation": nation, "from": start, "limit": limit},
        )
        try:
            page = page_from_json(self._json(resp))
            return verify_page(
                page, log_key=log_key, witness_key=witness_key, nation=nation, start=start
            )
        except PartnerPageRejected as exc:
            raise ProofRejected(
                f"{self.label} node's audit entries for {nation} rejected: {exc}",
                node=self.label,
                reason=exc.reason,
                index=exc.index,
            ) from None

    def _partner_list(self) -> dict[str, Any]:
        data = self._json(self._send("GET", "/api/v1/federation/partners"))
        if not isinstance(data, dict):
            raise NodeUnreachable(f"{self.label} node sent a malformed partner list")
        return data

    def descriptor(self) -> str:
        """The node's signed descriptor (pin it only after checking its fingerprint)."""
        return self._send("GET", "/.well-known/relto-node", auth=False).text.strip()

    # -- the KAS ------------------------------------------------------------------------

    def holds(self, kas_url: str) -> bool:
        """Whether ``kas_url`` is this node's KAS."""
        return same_url(kas_url, self.kas_url)

    def rewrap(self, ka: KeyAccess, policy_b64: str) -> bytes:
        """The key share of ``ka``, released by this node's KAS to the caller."""
        kas = KasClient(
            allowed_urls=[self.kas_url],
            token=self._credential,
            dpop_key=self.dpop.key,
            timeout=self._timeout,
            transport=self._transport,
        )
        try:
            return kas.rewrap(ka, policy_b64)
        except _KasDown as exc:
            raise KasUnreachable(
                f"{self.label} key access service unreachable ({exc})", node=self.label
            ) from None
        except KeyAccessDenied as exc:
            if exc.kind is FailureKind.UNAUTHENTICATED:
                raise NotAuthenticated(
                    f"{self.label} key access service: {exc.detail or exc}",
                    node=self.label,
                    reason=_said_code(exc.detail),
                ) from None
            raise
        finally:
            kas.close()


def _segment(object_id: str) -> str:
    if not _OBJECT_ID.match(object_id):
        raise ValueError(f"not an object id: {object_id[:200]!r}")
    return object_id


def _said_code(detail: str | None) -> str:
    """The KAS's refusal code out of ``HTTP 401 unauthenticated: <code>: ...``."""
    if not detail:
        return ""
    try:
        return str(json.loads(detail).get("code", ""))
    except (ValueError, AttributeError):
        pass
    parts = [p.strip() for p in detail.split(":")]
    return parts[1] if len(parts) > 2 else ""
