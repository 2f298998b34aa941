"""Wiring of the key access service from settings: key store, authenticator, decider.

:class:`KasRuntime` is what the HTTP edge holds (as ``Node.kas``, built by
:func:`relto.node.build_node`): it runs one rewrap in the required order --
authenticate the caller, verify the signed request token, then hand over to
:meth:`KasService.rewrap` (policy binding, decision, audit, release).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from relto.config import Settings
from relto.errors import ConfigError
from relto.events import AuditSink
from relto.federation.acceptance import AttestationAcceptor, WouldBlock
from relto.kas.auth import (
    AttestationAuthenticator,
    Authenticator,
    Caller,
    ReplayCache,
    build_authenticator,
    is_attestation,
    verify_request_token,
)
from relto.kas.config import KasSettings
from relto.kas.decider import Decider, DenyAllDecider, TransferRecorder
from relto.kas.errors import KasInvalidRequest, Unauthenticated, UnknownKey
from relto.kas.filestore import FileKeyStore
from relto.kas.keys import ALGORITHMS, KeyStore
from relto.kas.replay import DatabaseReplayCache, SqliteReplayCache
from relto.kas.service import KasService
from relto.kas.wire import RewrapResponse, UnsignedRewrap, parse_request_body
from relto.metrics import DomainMetrics
from relto.store import Database

__all__ = ["KasRuntime", "build_runtime", "open_key_store", "replay_cache"]

log = structlog.stdlib.get_logger("relto.kas")


@dataclass
class KasRuntime:
    service: KasService
    settings: KasSettings
    authenticator: Authenticator | None = None
    issuer: str | None = None
    #: People of other nations, by their home node's attestation (``None``: none).
    attestations: AttestationAuthenticator | None = None

    @property
    def decider(self) -> Decider:
        return self.service.decider

    @decider.setter
    def decider(self, value: Decider) -> None:
        self.service.decider = value

    async def handle_rewrap_async(
        self,
        *,
        srt: str,
        authorization: str | None,
        dpop: str | None,
        method: str,
        url: str,
        at: datetime,
        request_id: str = "",
    ) -> RewrapResponse:
        """:meth:`handle_rewrap` for an event loop, which must never wait on I/O.

        When authenticating this request needs no I/O -- an access token verified
        moments ago, or an attestation whose pins and status list are in memory
        (ADR 0131) -- the checks run inline, a DPoP proof's replay-cache entry is
        awaited (batched by the SQLite cache's own thread), and
        :meth:`KasService.rewrap_async` goes on (which itself moves a blocking key
        store or decider to a worker thread, and awaits the audit record).
        Otherwise the whole rewrap runs on a worker thread. Same checks, same
        refusals, either way.
        """
        whole = functools.partial(
            self.handle_rewrap,
            srt=srt,
            authorization=authorization,
            dpop=dpop,
            method=method,
            url=url,
            at=at,
            request_id=request_id,
        )
        if is_attestation(authorization):
            caller = await self._attested_inline(authorization, dpop, method, url, at)
            if caller is None:  # a pin reload or a status list fetch is due
                return await asyncio.to_thread(whole)
        elif self.authenticator is None or self.authenticator.needs_io(authorization, dpop):
            return await asyncio.to_thread(whole)
        else:
            pending: list[tuple[str, float]] = []
            caller = self._caller(authorization, dpop, method, url, at, defer_replay=pending)
            await self.authenticator.record_proofs(pending)
        body, verified = self._request_body(srt, caller, at)
        return await self.service.rewrap_async(
            body, caller, at=at, request_verified=verified, request_id=request_id
        )

    def handle_rewrap(
        self,
        *,
        srt: str,
        authorization: str | None,
        dpop: str | None,
        method: str,
        url: str,
        at: datetime,
        request_id: str = "",
    ) -> RewrapResponse:
        caller = self._caller(authorization, dpop, method, url, at)
        body, verified = self._request_body(srt, caller, at)
        return self.service.rewrap(
            body, caller, at=at, request_verified=verified, request_id=request_id
        )

    def _caller(
        self,
        authorization: str | None,
        dpop: str | None,
        method: str,
        url: str,
        at: datetime,
        *,
        defer_replay: list[tuple[str, float]] | None = None,
    ) -> Caller:
        if is_attestation(authorization):
            return self._attested(authorization, dpop, method, url, at)
        if self.authenticator is None:
            exc = Unauthenticated("unauthenticated")
            exc.reason = "no OIDC issuer is configured"  # type: ignore[attr-defined]
            raise exc
        return self.authenticator.authenticate(
            authorization=authorization,
            dpop=dpop,
            method=method,
            urls=self._htu(url),
            at=at,
            defer_replay=defer_replay,
        )

    def _htu(self, url: str) -> list[str]:
        """What a DPoP proof's ``htu`` may be: the configured public URL when there
        is one (the Host header is the caller's to choose), else the request's URL."""
        if self.settings.public_url:
            path = url.split("/kas.AccessService/", 1)[-1]
            base = self.settings.public_url.rstrip("/").removesuffix("/kas")
            return [f"{base}/kas.AccessService/{path}"]
        return [url]

    def _attested(
        self, authorization: str | None, dpop: str | None, method: str, url: str, at: datetime
    ) -> Caller:
        """A person of another nation, by their home node's attestation: verified,
        bound to the DPoP key, its status read (a refusal is decided and recorded)."""
        if self.attestations is None:
            exc = Unauthenticated("unauthenticated")
            exc.reason = "this node accepts no attestations"  # type: ignore[attr-defined]
            raise exc
        return self.attestations.authenticate(
            authorization=authorization, dpop=dpop, method=method, urls=self._htu(url), at=at
        )

    async def _attested_inline(
        self, authorization: str | None, dpop: str | None, method: str, url: str, at: datetime
    ) -> Caller | None:
        """:meth:`_attested` on the event loop, from memory only; ``None`` when it
        would wait on I/O (then nothing was decided nor recorded)."""
        if self.attestations is None:
            return self._attested(authorization, dpop, method, url, at)  # refuses
        pending: list[tuple[str, float]] = []
        try:
            caller = self.attestations.authenticate(
                authorization=authorization,
                dpop=dpop,
                method=method,
                urls=self._htu(url),
                at=at,
                defer_replay=pending,
                blocking=False,
            )
        except WouldBlock:
            return None
        except Unauthenticated:
            # The blocking path records the proof before it looks at the
            # attestation: a replayed proof is named before a refused attestation.
            await self.attestations.record_proofs(pending)
            raise
        await self.attestations.record_proofs(pending)
        return caller

    def _request_body(self, srt: str, caller: Caller, at: datetime) -> tuple[UnsignedRewrap, bool]:
        """The request body of the signed request token, and whether that token's
        signature was verified."""
        claims, verified = verify_request_token(
            srt, caller, at=at, leeway_seconds=self.settings.leeway_seconds
        )
        body_text = claims.get("requestBody")
        if not isinstance(body_text, str):
            bad = KasInvalidRequest("invalid request")
            bad.reason = "request token has no requestBody"  # type: ignore[attr-defined]
            raise bad
        return parse_request_body(body_text), verified

    def well_known(self, base_url: str) -> dict[str, Any]:
        kas_url = self.service.kas_url or f"{base_url}/kas"
        config: dict[str, Any] = {
            "health": {"endpoint": "/healthz"},
            "kas": {
                "uri": kas_url,
                "algorithms": list(ALGORITHMS),
                "dpop_required": self.settings.require_dpop,
            },
        }
        if self.issuer:
            config["platform_issuer"] = self.issuer
            idp: dict[str, Any] = {"issuer": self.issuer}
            if self.settings.token_endpoint:
                idp["token_endpoint"] = self.settings.token_endpoint
            config["idp"] = idp
        try:
            info = self.service.store.active("rsa:2048")
            config["base_key"] = {
                "kas_url": kas_url,
                "public_key": {
                    "algorithm": info.algorithm,
                    "kid": info.kid,
                    "pem": info.public_key_pem,
                },
            }
        except UnknownKey:
            pass
        return config


def open_key_store(settings: Settings, kas: KasSettings) -> KeyStore:
    """The key store the settings name; raises ``ConfigError`` if it cannot be opened."""
    if kas.keystore == "pkcs11":
        from relto.kas.pkcs11store import Pkcs11KeyStore

        if not kas.pkcs11_token or kas.pkcs11_pin is None:
            raise ConfigError("RELTO_KAS_PKCS11_TOKEN and RELTO_KAS_PKCS11_PIN must be set")
        return Pkcs11KeyStore(
            kas.pkcs11_library, kas.pkcs11_token, kas.pkcs11_pin.get_secret_value()
        )
    if settings.keystore_passphrase is None:
        raise ConfigError("RELTO_KEYSTORE_PASSPHRASE is not set; the KAS key store needs it")
    folder = kas.keystore_dir or (settings.data_dir / "kas-keys")
    try:
        return FileKeyStore(folder, settings.keystore_passphrase.get_secret_value())
    except ValueError as exc:
        raise ConfigError(f"RELTO_KEYSTORE_PASSPHRASE: {exc}") from None


def ensure_active_keys(store: KeyStore, *, at: datetime) -> None:
    for algorithm in ALGORITHMS:
        try:
            store.active(algorithm)
        except UnknownKey:
            info = store.rotate(algorithm, at=at)
            log.info("kas_key_created", kid=info.kid, algorithm=algorithm)


def replay_cache(settings: Settings, db: Database | None) -> ReplayCache:
    """The DPoP replay cache: the node's PostgreSQL database when it has one (every
    host of the node shares it), else a SQLite file in the data folder (the
    processes of this host share it)."""
    if db is not None and db.dialect == "postgresql":
        return DatabaseReplayCache(db)
    return SqliteReplayCache(settings.data_dir / "kas-dpop-replay.sqlite")


def build_runtime(
    settings: Settings,
    sink: AuditSink,
    decider: Decider | None = None,
    *,
    kas_settings: KasSettings | None = None,
    store: KeyStore | None = None,
    authenticator: Authenticator | None = None,
    db: Database | None = None,
    metrics: DomainMetrics | None = None,
    acceptor: AttestationAcceptor | None = None,
    transfers: TransferRecorder | None = None,
) -> KasRuntime:
    """The KAS of a node. ``acceptor``: pinned partner nodes whose attestations of
    their own people this KAS accepts (``None``: only OIDC tokens)."""
    kas = kas_settings or KasSettings()  # type: ignore[call-arg]
    if store is None:
        store = open_key_store(settings, kas)
    if kas.create_keys:
        ensure_active_keys(store, at=datetime.now(UTC))
    trusted = settings.trusted_issuers
    replay: ReplayCache | None = None
    if authenticator is None and trusted:
        replay = replay_cache(settings, db)
        authenticator = build_authenticator(
            settings,
            require_dpop=kas.require_dpop,
            leeway_seconds=kas.leeway_seconds,
            dpop_window_seconds=kas.dpop_window_seconds,
            replay=replay,
        )
    attestations = None
    if acceptor is not None:
        attestations = AttestationAuthenticator(
            acceptor,
            replay=replay or replay_cache(settings, db),
            dpop_window_seconds=kas.dpop_window_seconds,
        )
    if authenticator is None:
        log.warning("kas_no_oidc", detail="no OIDC issuer configured: every rewrap is refused")
    for url, item in trusted.items():
        if not item.audience:
            log.warning(
                "kas_no_audience",
                issuer=url,
                detail="no audience for this issuer: its tokens for any audience are accepted",
            )
    if not kas.require_dpop:
        log.warning(
            "kas_dpop_not_required",
            detail="RELTO_KAS_REQUIRE_DPOP=false: a bearer token alone can take keys and "
            "request tokens go unverified; only for clients that cannot send DPoP proofs",
        )
    if decider is None:
        decider = DenyAllDecider()
        log.warning("kas_deny_all", detail="no decision engine wired in: every rewrap is denied")
    service = KasService(
        store=store,
        sink=sink,
        decider=decider,
        kas_url=kas.public_url or "",
        metrics=metrics,
        transfers=transfers,
    )
    return KasRuntime(
        service=service,
        settings=kas,
        authenticator=authenticator,
        issuer=home_issuer(settings),
        attestations=attestations,
    )


def home_issuer(settings: Settings) -> str | None:
    """The issuer advertised to SDKs (``platform_issuer``): the node's own people's
    issuer -- ``RELTO_OIDC_ISSUER`` when set, else the first issuer bound to
    ``RELTO_NATION``."""
    if settings.oidc_issuer:
        return settings.oidc_issuer
    for url, item in settings.trusted_issuers.items():
        if item.nation == settings.nation:
            return url
    return None
