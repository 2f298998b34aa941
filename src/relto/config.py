"""Typed settings, read from ``RELTO_*`` environment variables.

Defaults give the embedded set-up: SQLite and blobs in ``./.relto-data``, the server
on loopback port 8080. Outside demo mode relto refuses to start while a secret is
missing or still a placeholder, and says which one; demo mode generates its secrets
once and keeps them in the data folder (never use demo mode for real data).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from relto.errors import ConfigError

__all__ = [
    "PLACEHOLDER_NAMESPACE",
    "PLACEHOLDER_SECRETS",
    "Settings",
    "load_settings",
    "normalise_namespace",
]

#: The placeholder attribute namespace (``relto.ztdf.attributes.DEFAULT_NAMESPACE``
#: says the same; a test keeps them equal without config importing the ztdf core).
PLACEHOLDER_NAMESPACE = "https://relto.example"

#: Values that are obviously not real secrets.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "password",
        "demo",
        "test",
        "example",
        "xxx",
        "todo",
        "placeholder",
        "default",
    }
)
_MIN_SECRET_LENGTH = 16

#: The settings that hold secrets; `config show` masks them.
SECRET_FIELDS = ("secret_key", "keystore_passphrase")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """relto's configuration. Every field is ``RELTO_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="RELTO_", extra="ignore")

    data_dir: Path = Field(
        Path("./.relto-data"), description="Folder for the database, blobs and keys."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite in the data folder; postgresql://... too.",
    )
    blob_store: str | None = Field(
        None,
        description="Where payloads go: a folder path or file:// URL; default <data_dir>/blobs.",
    )
    bind: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the server listens on.")
    log_level: LogLevel = Field("INFO", description="Log level.")
    demo: bool = Field(
        False, description="Demo mode: demo partnership, demo login, generated secrets."
    )
    nation: str = Field(
        "GBR",
        min_length=3,
        max_length=3,
        description="The nation this node serves (ISO 3166 alpha-3).",
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs console sessions. Required outside demo mode."
    )
    keystore_passphrase: SecretStr | None = Field(
        None,
        description="Seals private keys at rest in the file key store. Required outside demo mode.",
    )
    oidc_issuer: str | None = Field(None, description="OIDC issuer whose tokens are accepted.")
    oidc_jwks_url: str | None = Field(None, description="JWKS URL of the OIDC issuer.")
    oidc_audience: str | None = Field(None, description="Expected audience of bearer tokens.")
    max_upload_bytes: int = Field(1 << 30, ge=1, description="Largest upload accepted.")
    attribute_namespace: str = Field(
        PLACEHOLDER_NAMESPACE,
        description="Namespace of the policy attribute FQNs written into containers "
        "(<namespace>/attr/<name>/value/<value>): an https URL of an authority this "
        "deployment controls. The default is a placeholder.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("nation")
    @classmethod
    def _upper_nation(cls, v: str) -> str:
        return v.upper()

    @field_validator("attribute_namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return normalise_namespace(v)

    # -- derived values -------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'relto.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        if not self.blob_store:
            return self.data_dir / "blobs"
        if self.blob_store.startswith("file://"):
            return Path(self.blob_store.removeprefix("file://"))
        if "://" in self.blob_store:
            raise ConfigError(
                f"RELTO_BLOB_STORE: unsupported scheme in {self.blob_store.split('://')[0]!r}; "
                "use a folder path or file:// URL"
            )
        return Path(self.blob_store)

    # -- safety -----------------------------------------------------------------

    def check_secrets(self) -> None:
        """Refuse to start with a missing or placeholder secret (outside demo mode)."""
        if self.demo:
            return
        for name in SECRET_FIELDS:
            value: SecretStr | None = getattr(self, name)
            env = f"RELTO_{name.upper()}"
            if value is None:
                raise ConfigError(f"{env} is not set; relto refuses to start without it")
            raw = value.get_secret_value()
            if raw.strip().lower() in PLACEHOLDER_SECRETS:
                raise ConfigError(f"{env} is a placeholder value; set a real secret")
            if len(raw) < _MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{env} is too short; use at least {_MIN_SECRET_LENGTH} characters"
                )

    def with_demo_secrets(self) -> Settings:
        """Demo mode: fill missing secrets from ``<data_dir>/demo-secrets`` (made once)."""
        if not self.demo:
            return self
        path = self.data_dir / "demo-secrets"
        values: dict[str, str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                key, _, val = line.partition("=")
                if key and val:
                    values[key] = val
        changed = False
        for name in SECRET_FIELDS:
            if name not in values:
                values[name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
            tmp.chmod(0o600)
            tmp.replace(path)
        update = {
            name: SecretStr(values[name]) for name in SECRET_FIELDS if getattr(self, name) is None
        }
        return self.model_copy(update=update)

    def masked(self) -> dict[str, str]:
        """The settings as strings, secrets masked (for `relto config show`)."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                out[name] = "(not set)" if value is None else "********"
            else:
                out[name] = "(default)" if value is None else str(value)
        out["effective_database_url"] = _mask_url(self.effective_database_url)
        out["database_url"] = _mask_url(out["database_url"])
        return out


def _mask_url(url: str) -> str:
    """Hide a password inside a database URL (SQLAlchemy's own URL parser does it)."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://(unreadable URL hidden)"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides on top."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        first = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else str(exc)
        raise ConfigError(f"invalid configuration: {detail}") from None


def normalise_namespace(value: str) -> str:
    """An attribute namespace as relto writes it: an absolute http(s) URL without
    user, query or fragment, host lower-cased, no trailing slash (OpenTDF compares
    attribute FQNs as strings). Raises ``ValueError`` otherwise."""
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ValueError("must be an http(s) URL like https://attributes.example.gov")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
