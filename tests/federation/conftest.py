"""Nodes of several nations, each with its keys, making descriptors at a fixed time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from relto.audit.note import NoteSigner
from relto.federation import (
    AttestationKey,
    AttestationSigner,
    KasKey,
    PinnedNode,
    SigningKey,
    make_descriptor,
    verify_descriptor,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _kas_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass
class FakeNode:
    """A nation's node: its node key, one attestation key, log and witness keys."""

    nation: str
    node_key: SigningKey = field(default_factory=SigningKey.generate)
    attestation: SigningKey = field(default_factory=lambda: SigningKey.generate("P-256"))
    kas_pem: str = field(default_factory=_kas_pem)

    @property
    def base_url(self) -> str:
        return f"https://relto.{self.nation.lower()}.example"

    @property
    def signer(self) -> AttestationSigner:
        return AttestationSigner("att-1", self.attestation)

    def descriptor(
        self,
        *,
        at: datetime = NOW,
        valid: timedelta = timedelta(days=30),
        signing_key: SigningKey | None = None,
        **overrides: object,
    ) -> str:
        fields: dict[str, object] = {
            "nation": self.nation,
            "base_url": self.base_url,
            "node_key": self.node_key.public,
            "kas_keys": [KasKey("kas-ec-1", "ec:secp256r1", self.kas_pem)],
            "log_key": NoteSigner.generate(f"relto/{self.nation.lower()}/audit").verifier().vkey,
            "witness_key": NoteSigner.generate(f"relto/{self.nation.lower()}/witness")
            .cosignature_verifier()
            .vkey,
            "attestation_keys": [AttestationKey("att-1", self.attestation.public)],
            "issued_at": at,
            "not_after": at + valid,
            "signing_key": signing_key or self.node_key,
        }
        fields.update(overrides)
        return make_descriptor(**fields)  # type: ignore[arg-type]

    def pinned(self, *, at: datetime = NOW) -> PinnedNode:
        token = self.descriptor(at=at)
        d = verify_descriptor(token, None, at, fingerprint=self.node_key.fingerprint)
        return PinnedNode(d, token, at, "test")


@pytest.fixture
def gbr() -> FakeNode:
    return FakeNode("GBR")


@pytest.fixture
def usa() -> FakeNode:
    return FakeNode("USA")
