"""This node's own federation keys, as the server and ``relto federation descriptor``
both load them.

- the node key and an attestation key: private JWKs in ``<data_dir>/federation/``
  (:func:`relto.federation.keyfiles.load_or_create_key`, created on first use), or
  with ``RELTO_FEDERATION_KEYSTORE=pkcs11`` P-256 keys on the HSM
  (:mod:`relto.federation.hsmkeys`);
- the transparency log's checkpoint verifier key and the witness's cosignature
  verifier key (from the audit keys, created on first use);
- the KAS's active public keys, read from its key store when a descriptor is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relto.audit.config import AuditSettings, node_signer
from relto.audit.keys import load_or_create_signer
from relto.config import Settings, is_loopback
from relto.errors import ConfigError
from relto.federation._keys import SigningKey
from relto.federation.attestation import AttestationSigner
from relto.federation.config import FederationSettings
from relto.federation.descriptor import KasKey, check_base_url
from relto.federation.hsmkeys import ATTESTATION_LABEL, NODE_LABEL, Pkcs11SigningKey
from relto.federation.keyfiles import load_or_create_key
from relto.kas.config import KasSettings
from relto.kas.keys import KeyState, KeyStore

__all__ = ["HomeKeys", "active_kas_keys", "home_base_url", "load_home_keys"]


@dataclass(frozen=True)
class HomeKeys:
    """The keys a node's descriptor names (the KAS keys are read when it is made)."""

    node_key: SigningKey
    attestation: AttestationSigner
    log_key: str
    witness_key: str


def _signing_keys(settings: Settings) -> tuple[SigningKey, SigningKey]:
    """The node key and the attestation key, from files or the HSM
    (``RELTO_FEDERATION_KEYSTORE``)."""
    federation = FederationSettings()  # type: ignore[call-arg]
    if federation.keystore == "pkcs11":
        kas = KasSettings()  # type: ignore[call-arg]
        if not kas.pkcs11_token or kas.pkcs11_pin is None:
            raise ConfigError(
                "RELTO_FEDERATION_KEYSTORE=pkcs11 needs RELTO_KAS_PKCS11_TOKEN and "
                "RELTO_KAS_PKCS11_PIN (the token the node's keys are made on)"
            )
        library, pin = kas.pkcs11_library, kas.pkcs11_pin.get_secret_value()
        return (
            Pkcs11SigningKey(library, kas.pkcs11_token, pin, NODE_LABEL),
            Pkcs11SigningKey(library, kas.pkcs11_token, pin, ATTESTATION_LABEL),
        )
    folder = settings.data_dir / "federation"
    return load_or_create_key(folder / "node.jwk"), load_or_create_key(folder / "attestation.jwk")


def load_home_keys(settings: Settings, audit: AuditSettings | None = None) -> HomeKeys:
    """Load (creating on first use) the node key, the attestation key, and the log
    and witness keys. ``ConfigError`` when a key file is unsafe or unreadable, or
    the HSM cannot be used."""
    audit = audit or AuditSettings()
    node_key, attestation = _signing_keys(settings)
    witness = load_or_create_signer(
        audit.witness_key_file or settings.data_dir / "audit" / "witness.key",
        f"relto/{settings.nation.lower()}/witness",
    )
    return HomeKeys(
        node_key=node_key,
        # The kid is the key's RFC 7638 thumbprint: stable across restarts and workers.
        attestation=AttestationSigner(attestation.public.thumbprint, attestation),
        log_key=node_signer(settings, audit).verifier().vkey,
        witness_key=witness.cosignature_verifier().vkey,
    )


def active_kas_keys(store: KeyStore) -> Callable[[], list[KasKey]]:
    """The KAS's active public keys, read anew at each call (keys rotate)."""

    def read() -> list[KasKey]:
        return [
            KasKey(k.kid, k.algorithm, k.public_key_pem)
            for k in store.list_keys()
            if k.state is KeyState.ACTIVE
        ]

    return read


def home_base_url(settings: Settings) -> str | None:
    """Where partners reach this node: ``RELTO_PUBLIC_URL``, else ``http://<bind>:<port>``
    when it listens on a loopback address; ``None`` when neither makes a valid
    federation address (an https URL, or http on loopback)."""
    host = f"[{settings.bind}]" if ":" in settings.bind else settings.bind
    url = settings.public_url or (
        f"http://{host}:{settings.port}" if is_loopback(settings.bind) else None
    )
    if url is None:
        return None
    url = url.rstrip("/")
    try:
        return check_base_url(url)
    except ValueError:
        return None
