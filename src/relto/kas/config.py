"""Settings of the key access service, read from ``RELTO_KAS_*`` variables.

The trusted OIDC issuers (``RELTO_OIDC_ISSUERS``, ``RELTO_OIDC_*``) and the key
store passphrase are relto's own settings (:class:`relto.config.Settings`).

A rewrap needs a DPoP proof unless ``RELTO_KAS_REQUIRE_DPOP=false``: without one
the signed request token cannot be verified and a stolen bearer token is enough to
take keys. The KAS logs ``kas_dpop_not_required`` at start when it is relaxed (for
clients that send no proof, such as otdf-python 0.11.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KasSettings"]


class KasSettings(BaseSettings):
    """Every field is ``RELTO_KAS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="RELTO_KAS_", extra="ignore")

    keystore: Literal["file", "pkcs11"] = Field("file", description="Where KAS keys live.")
    keystore_dir: Path | None = Field(
        None, description="Folder of the file key store; default <data_dir>/kas-keys."
    )
    pkcs11_library: str = Field(
        "/usr/lib/softhsm/libsofthsm2.so", description="PKCS#11 module (.so) of the HSM."
    )
    pkcs11_token: str | None = Field(None, description="Label of the PKCS#11 token.")
    pkcs11_pin: SecretStr | None = Field(None, description="User PIN of the PKCS#11 token.")
    create_keys: bool = Field(
        True, description="Create an rsa:2048 and an ec:secp256r1 key at start if none is active."
    )
    require_dpop: bool = Field(
        True,
        description="Refuse rewrap requests without a DPoP proof; false only for clients "
        "that cannot send one (logged as a warning at start).",
    )
    dpop_window_seconds: int = Field(60, ge=1, le=600, description="Accepted DPoP iat skew.")
    leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew allowed on tokens.")
    public_url: str | None = Field(
        None,
        description="Public base URL of this KAS (e.g. https://kas.gbr.example/kas); "
        "DPoP htu is checked against it. Default: the request's own URL.",
    )
    token_endpoint: str | None = Field(
        None, description="Token endpoint advertised in /.well-known/opentdf-configuration."
    )
