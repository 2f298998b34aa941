"""Settings of this node's federation home side, read from ``RELTO_FEDERATION_*``.

The node's nation, data folder and public address are relto's own settings
(:class:`relto.config.Settings`: ``RELTO_NATION``, ``RELTO_DATA_DIR``,
``RELTO_PUBLIC_URL``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from relto.federation.attestation import MAX_ATTESTATION_LIFETIME
from relto.federation.descriptor import MAX_DESCRIPTOR_VALIDITY

__all__ = ["FederationSettings"]


class FederationSettings(BaseSettings):
    """Every field is ``RELTO_FEDERATION_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="RELTO_FEDERATION_", extra="ignore")

    attestation_ttl: int = Field(
        300,
        ge=1,
        le=int(MAX_ATTESTATION_LIFETIME.total_seconds()),
        description="Seconds an attestation of one of this node's people lives (at most 300).",
    )
    descriptor_valid_days: int = Field(
        90,
        ge=1,
        le=MAX_DESCRIPTOR_VALIDITY.days,
        description="Validity of the descriptor served at /.well-known/relto-node; it is "
        "re-issued when less than a quarter of it is left.",
    )
    refresh_seconds: int = Field(
        600,
        ge=0,
        le=86400,
        description="How often the server fetches each pinned node's descriptor from its "
        "address and takes a newer one signed by the pinned node key (0: never; "
        "relto federation refresh does it by hand).",
    )
    keystore: Literal["file", "pkcs11"] = Field(
        "file",
        description="Where the node key and the attestation key live: key files in "
        "<data_dir>/federation/ (mode 0600), or P-256 keys generated on the PKCS#11 token "
        "of RELTO_KAS_PKCS11_LIBRARY / _TOKEN / _PIN, never extractable.",
    )
    changes_push_seconds: int = Field(
        30,
        ge=0,
        le=3600,
        description="How often the server offers the partnership changes it holds to every "
        "pinned partner node (0: never; officers can still exchange them by file).",
    )
    partner_silent_rounds: int = Field(
        3,
        ge=1,
        le=1000,
        description="A pinned partner not heard from for more than this many witness push "
        "intervals (RELTO_AUDIT_WITNESS_PUSH_SECONDS), and missed by as many push rounds in "
        "a row, is shown as silent until it is heard from again.",
    )
