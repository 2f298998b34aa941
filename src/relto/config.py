"""Typed settings, read from ``RELTO_*`` environment variables.

Defaults give the embedded set-up: SQLite and blobs in ``./.relto-data``, the server
on loopback port 8080. Outside demo mode relto refuses to start while a secret is
missing or still a placeholder, and says which one; demo mode generates its secrets
once and keeps them in the data folder (never use demo mode for real data).

Who may sign people in: each trusted OIDC issuer is bound to one nation
(``RELTO_OIDC_ISSUERS``, or the single-issuer shorthand ``RELTO_OIDC_ISSUER`` bound to
``RELTO_NATION``); :attr:`Settings.trusted_issuers` is the one list both make.
:meth:`Settings.check_startup` is what a server runs before it starts.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from relto.errors import ConfigError

__all__ = [
    "PLACEHOLDER_NAMESPACE",
    "PLACEHOLDER_SECRETS",
    "OidcIssuer",
    "Settings",
    "is_loopback",
    "load_settings",
    "normalise_namespace",
    "secret_weakness",
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
        "changeit",
        "passw0rd",
        "letmein",
        "insecure",
        "dummy",
        "sample",
        "qwerty",
        "admin",
        "relto",
    }
)
_MIN_SECRET_LENGTH = 16

#: The settings that hold secrets; `config show` masks them.
SECRET_FIELDS = ("secret_key", "keystore_passphrase")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_NATION = re.compile(r"[A-Z]{3}")
#: Default secrets of S3-compatible stores (MinIO's root account, SeaweedFS examples).
_STORE_DEFAULT_SECRETS = frozenset({"minioadmin", "minio123", "some_secret_key1"})
#: S3 bucket names (the portable subset of AWS's rules) and key prefixes relto accepts.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._-]{0,199}")


def _http_url(value: str) -> str:
    """An absolute http(s) URL with a host, else ``ValueError``. Not normalised:
    OIDC compares issuer identifiers as exact strings."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or value != value.strip():
        raise ValueError(f"{value[:200]!r} is not an http(s) URL")
    return value


class OidcIssuer(BaseModel):
    """One trusted OIDC issuer: the nation it vouches for, where its signing keys
    are, and the audience its tokens must name (``None``: any audience -- refused
    outside demo mode by :meth:`Settings.check_startup`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nation: str = Field(description="The one nation whose people this issuer signs in.")
    jwks_url: str = Field(description="The issuer's JWKS (its token signing keys).")
    audience: str | None = Field(None, description="Audience its tokens must name.")

    @field_validator("nation")
    @classmethod
    def _nation(cls, v: str) -> str:
        if not _NATION.fullmatch(v):
            raise ValueError(f"nation {v[:20]!r} is not three upper-case letters (e.g. GBR)")
        return v

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, v: str) -> str:
        return _http_url(v)

    @field_validator("audience")
    @classmethod
    def _audience(cls, v: str | None) -> str | None:
        return v or None


#: The most ``RELTO_MAX_UPLOAD_BYTES`` may be: opened documents are held in memory.
MAX_DOCUMENT_BYTES = 256 << 20


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
        description="Where payloads go: a folder path or file:// URL (default <data_dir>/blobs), "
        "or s3://bucket/prefix for an S3-compatible object store (RELTO_S3_*; ADR 0161).",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint (https://minio.example:9000); unset: AWS's endpoint for "
        "RELTO_S3_REGION.",
    )
    s3_region: str = Field("us-east-1", description="S3 region (signing and AWS's endpoint).")
    s3_access_key_id: SecretStr | None = Field(
        None, description="S3 access key id (required with an s3:// blob store)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 secret access key (required with an s3:// blob store)."
    )
    s3_addressing_style: Literal["path", "virtual"] | None = Field(
        None,
        description="Bucket in the path (SeaweedFS, MinIO) or in the host name (AWS); "
        "unset: path with RELTO_S3_ENDPOINT_URL, else virtual.",
    )
    s3_max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per S3 request, with back-off and jitter."
    )
    s3_retry_mode: Literal["standard", "adaptive"] = Field(
        "standard", description="botocore retry mode (adaptive also rate-limits the client)."
    )
    s3_connect_timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds to connect to the object store."
    )
    s3_read_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds to wait for the object store to answer."
    )
    s3_part_size_mib: int = Field(8, ge=5, le=512, description="Multipart upload part size (MiB).")
    s3_upload_concurrency: int = Field(
        4,
        ge=1,
        le=32,
        description="Parts of one upload sent at once; an upload holds at most this many "
        "parts in memory.",
    )
    s3_grace_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        description="Age after which an object no row names, a claim no live writer holds, "
        "or an unfinished multipart upload is swept at start-up.",
    )
    s3_ca_bundle: Path | None = Field(
        None, description="CA certificates to verify the object store's TLS certificate."
    )
    bind: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the server listens on.")
    log_level: LogLevel = Field("INFO", description="Log level.")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a scraper must send for /metrics (from any address). "
        "Unset: /metrics answers loopback peers only.",
    )
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
    oidc_client_id: str | None = Field(
        None,
        description="Console sign-in: this node's client id at its own OIDC issuer "
        "(authorization code flow with PKCE; redirect URI <RELTO_PUBLIC_URL>/login/oidc/callback).",
    )
    oidc_client_secret: SecretStr | None = Field(
        None, description="Console sign-in: the client secret (required with the client id)."
    )
    oidc_issuers: dict[str, OidcIssuer] = Field(
        default_factory=dict,
        description='Trusted OIDC issuers, JSON: {"<issuer URL>": {"nation": "GBR", '
        '"jwks_url": "...", "audience": "..."}}; each vouches for one nation only.',
    )
    max_upload_bytes: int = Field(
        20 << 20,
        ge=1,
        le=MAX_DOCUMENT_BYTES,
        description="Largest document accepted by the API and the console; an opened "
        "document is decrypted into memory, so this also bounds a request's memory "
        "(at most 256 MiB).",
    )
    max_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Largest request body of every route but the uploads (JSON APIs, the "
        "KAS, forms); larger ones are refused with 413 before they are read.",
    )
    rate_limit_login: str = Field(
        "10/minute", description='Sign-ins per client address ("N/second|minute|hour", or "off").'
    )
    rate_limit_api: str = Field(
        "600/minute",
        description='/api requests per client address and per credential (or "off").',
    )
    rate_limit_kas: str = Field(
        "100000/minute",
        description='KAS requests per client address and per credential (or "off").',
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or networks, comma-separated) whose "
        "X-Forwarded-For is believed; otherwise the client address is the socket peer.",
    )
    audit_checkpoint_interval: float = Field(
        1.0,
        ge=0.0,
        le=3600.0,
        description="Seconds between two signings of the public audit checkpoint "
        "(a new one only when the log grew).",
    )
    attribute_namespace: str = Field(
        PLACEHOLDER_NAMESPACE,
        description="Namespace of the policy attribute FQNs written into containers "
        "(<namespace>/attr/<name>/value/<value>): an https URL of an authority this "
        "deployment controls. The default is a placeholder.",
    )
    public_url: str | None = Field(
        None,
        description="The address people use to reach this node (https://relto.gbr.example). "
        "https makes console cookies Secure, with the __Host- prefix.",
    )
    trust_forwarded_proto: bool = Field(
        False,
        description="Believe X-Forwarded-Proto: https (set only behind a TLS proxy that "
        "always sets or strips it); console cookies are then Secure for such requests.",
    )
    console_marking_floor: Literal[
        "UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"
    ] = Field(
        "UNCLASSIFIED",
        description="Banner of console pages showing no marked document, and the lowest "
        "banner of every page (the partnership's common scale).",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        return _http_url(v) if v else None

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

    @field_validator("rate_limit_login", "rate_limit_api", "rate_limit_kas")
    @classmethod
    def _rate_limit(cls, v: str) -> str:
        v = v.strip()
        if v.lower() in ("off", ""):
            return "off"
        try:
            parse_rate(v)
        except ValueError:
            raise ValueError(f"{v[:40]!r} is not a rate like 10/minute (or off)") from None
        return v

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, v: object) -> object:
        if isinstance(v, str):
            v = [part.strip() for part in v.split(",") if part.strip()]
        if isinstance(v, list):
            for item in v:
                ipaddress.ip_network(str(item), strict=False)  # ValueError if not an address
        return v

    @field_validator("oidc_issuers")
    @classmethod
    def _issuer_urls(cls, v: dict[str, OidcIssuer]) -> dict[str, OidcIssuer]:
        for url in v:
            _http_url(url)
        return v

    # -- derived values -------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'relto.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """The payload folder of a local blob store (:class:`ConfigError` for s3://)."""
        if not self.blob_store:
            return self.data_dir / "blobs"
        if self.blob_store.startswith("file://"):
            return Path(self.blob_store.removeprefix("file://"))
        if "://" in self.blob_store:
            scheme = self.blob_store.split("://")[0]
            raise ConfigError(
                f"RELTO_BLOB_STORE: {scheme[:20]!r} is not a folder; "
                "use a folder path, a file:// URL or s3://bucket/prefix"
            )
        return Path(self.blob_store)

    @property
    def blob_bucket(self) -> tuple[str, str] | None:
        """``(bucket, prefix)`` of an ``s3://bucket/prefix`` blob store (the prefix
        empty or ending in ``/``), else ``None``. :class:`ConfigError` when malformed."""
        if not self.blob_store or not self.blob_store.startswith("s3://"):
            return None
        bucket, _, prefix = self.blob_store.removeprefix("s3://").partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(
                "RELTO_BLOB_STORE: the bucket of s3://bucket/prefix must be 3-63 lower-case "
                "letters, digits, '.' or '-'"
            )
        prefix = prefix.strip("/")
        if prefix and (not _PREFIX.fullmatch(prefix) or ".." in prefix or "//" in prefix):
            raise ConfigError(
                "RELTO_BLOB_STORE: the prefix of s3://bucket/prefix must be letters, digits, "
                "'/', '.', '_' or '-'"
            )
        return bucket, f"{prefix}/" if prefix else ""

    def check_blob_store(self) -> None:
        """An s3:// blob store needs its credentials and an http(s) endpoint without
        credentials in it; a local one needs nothing. Raises ``ConfigError``."""
        if self.blob_bucket is None:
            self.blob_dir  # noqa: B018 -- refuses an unknown scheme
            return
        key_id, secret = self.s3_access_key_id, self.s3_secret_access_key
        if not (key_id and key_id.get_secret_value() and secret and secret.get_secret_value()):
            raise ConfigError(
                "RELTO_BLOB_STORE is s3://...: set RELTO_S3_ACCESS_KEY_ID and "
                "RELTO_S3_SECRET_ACCESS_KEY"
            )
        raw = secret.get_secret_value().strip().lower()
        if not self.demo and (raw in PLACEHOLDER_SECRETS or raw in _STORE_DEFAULT_SECRETS):
            raise ConfigError(
                "RELTO_S3_SECRET_ACCESS_KEY is a placeholder or a store's default; "
                "give relto an access key of its own"
            )
        if self.s3_endpoint_url is not None:
            try:
                _http_url(self.s3_endpoint_url)
            except ValueError:
                raise ConfigError("RELTO_S3_ENDPOINT_URL is not an http(s) URL") from None
            parts = urlsplit(self.s3_endpoint_url)
            if parts.username or parts.password or parts.query or parts.fragment:
                raise ConfigError(
                    "RELTO_S3_ENDPOINT_URL must be scheme://host[:port][/path]: credentials go "
                    "in RELTO_S3_ACCESS_KEY_ID and RELTO_S3_SECRET_ACCESS_KEY"
                )

    @property
    def trusted_issuers(self) -> Mapping[str, OidcIssuer]:
        """Every trusted OIDC issuer by issuer URL: ``RELTO_OIDC_ISSUERS`` and the
        shorthand ``RELTO_OIDC_ISSUER`` / ``_JWKS_URL`` / ``_AUDIENCE``, bound to
        ``RELTO_NATION``. Raises ``ConfigError`` when the shorthand is half set or
        names an issuer ``RELTO_OIDC_ISSUERS`` configures differently."""
        issuers = dict(self.oidc_issuers)
        if self.oidc_issuer is None and self.oidc_jwks_url is None:
            return issuers
        if not self.oidc_issuer or not self.oidc_jwks_url:
            raise ConfigError(
                "RELTO_OIDC_ISSUER and RELTO_OIDC_JWKS_URL go together: set both or neither"
            )
        try:
            _http_url(self.oidc_issuer)
            short = OidcIssuer(
                nation=self.nation, jwks_url=self.oidc_jwks_url, audience=self.oidc_audience
            )
        except ValueError as exc:
            detail = str(exc).splitlines()
            raise ConfigError(
                f"RELTO_OIDC_ISSUER / RELTO_OIDC_JWKS_URL: {detail[-1].strip()}"
            ) from None
        known = issuers.get(self.oidc_issuer)
        if known is not None and known != short:
            raise ConfigError(
                f"OIDC issuer {self.oidc_issuer} is configured twice with different values "
                "(RELTO_OIDC_ISSUER and RELTO_OIDC_ISSUERS): keep one"
            )
        issuers[self.oidc_issuer] = short
        return issuers

    # -- safety -----------------------------------------------------------------

    def check_startup(self) -> None:
        """Everything a server refuses to start with: a missing or placeholder
        secret (:meth:`check_secrets`), a trusted issuer without an audience
        (outside demo mode: a token the issuer minted for any other service would
        do), and demo mode on a non-loopback address (demo mode signs anyone in
        without a password). Raises ``ConfigError`` with one line."""
        if self.demo and not is_loopback(self.bind):
            raise ConfigError(
                f"RELTO_BIND={self.bind} is not a loopback address: demo mode signs anyone "
                "in without a password and only listens on loopback"
            )
        self.check_secrets()
        self.check_metrics_token()
        self.check_blob_store()
        issuers = self.trusted_issuers
        if self.demo:
            return
        self.check_console_sign_in()
        for url, issuer in issuers.items():
            if issuer.audience:
                continue
            if url == self.oidc_issuer and url not in self.oidc_issuers:
                where = "set RELTO_OIDC_AUDIENCE"
            else:
                where = 'set its "audience" in RELTO_OIDC_ISSUERS'
            raise ConfigError(
                f"OIDC issuer {url} has no audience: {where} (the client id relto's "
                "tokens are issued for), or tokens minted for any other service would do"
            )

    @property
    def login_issuer(self) -> str | None:
        """The issuer the console signs people in with: ``RELTO_OIDC_ISSUER``, else
        the first trusted issuer bound to ``RELTO_NATION`` (``None``: no such issuer)."""
        issuers = self.trusted_issuers
        if self.oidc_issuer and self.oidc_issuer in issuers:
            return self.oidc_issuer
        return next((u for u, i in issuers.items() if i.nation == self.nation), None)

    def check_console_sign_in(self) -> None:
        """Console sign-in through the node's own issuer (``RELTO_OIDC_CLIENT_ID``)
        needs a strong client secret, the node's address (the redirect URI) and an
        issuer bound to the node's nation. Raises ``ConfigError`` with one line."""
        if not self.oidc_client_id:
            return
        secret = self.oidc_client_secret.get_secret_value() if self.oidc_client_secret else ""
        if not secret:
            raise ConfigError("RELTO_OIDC_CLIENT_SECRET is not set; RELTO_OIDC_CLIENT_ID needs it")
        if secret.strip().lower() in PLACEHOLDER_SECRETS or secret_weakness(secret):
            raise ConfigError(
                "RELTO_OIDC_CLIENT_SECRET is too weak (at least 16 characters, about 48 bits "
                "or more); register the client with a random secret"
            )
        if not self.public_url:
            raise ConfigError(
                "RELTO_OIDC_CLIENT_ID needs RELTO_PUBLIC_URL: the sign-in redirect URI is "
                "<RELTO_PUBLIC_URL>/login/oidc/callback"
            )
        if self.login_issuer is None:
            raise ConfigError(
                f"RELTO_OIDC_CLIENT_ID is set but no trusted OIDC issuer is bound to {self.nation}"
            )

    def check_secrets(self) -> None:
        """Refuse to start with a missing, placeholder or weak secret (outside demo
        mode; :func:`secret_weakness` says what weak means)."""
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
            weakness = secret_weakness(raw)
            if weakness is not None:
                raise ConfigError(
                    f"{env} is too weak ({weakness}); use a random value such as the "
                    "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )

    def check_metrics_token(self) -> None:
        """Refuse a placeholder or short ``RELTO_METRICS_TOKEN`` (demo mode too: a
        token is only ever set to let remote scrapers in)."""
        if self.metrics_token is None:
            return
        raw = self.metrics_token.get_secret_value()
        if raw.strip().lower() in PLACEHOLDER_SECRETS:
            raise ConfigError("RELTO_METRICS_TOKEN is a placeholder value; set a real secret")
        if len(raw) < _MIN_SECRET_LENGTH or raw != raw.strip() or " " in raw:
            raise ConfigError(
                f"RELTO_METRICS_TOKEN must be at least {_MIN_SECRET_LENGTH} characters, "
                "without spaces"
            )

    def with_demo_secrets(self) -> Settings:
        """Demo mode: fill missing secrets from ``<data_dir>/demo-secrets`` (made once)."""
        if not self.demo:
            return self
        path = self.data_dir / "demo-secrets"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Server workers start together: they take turns, so all of them end up with
        # the secrets the first one wrote (not each its own).
        with (self.data_dir / "demo-secrets.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            values = _read_secrets(path)
            missing = [name for name in SECRET_FIELDS if name not in values]
            for name in missing:
                values[name] = secrets.token_urlsafe(32)
            if missing:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                with open(tmp, "w", encoding="utf-8", opener=_private) as f:
                    f.write("".join(f"{k}={v}\n" for k, v in values.items()))
                    f.flush()
                    os.fsync(f.fileno())
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
            elif name == "oidc_issuers":
                out[name] = json.dumps(
                    {url: issuer.model_dump() for url, issuer in value.items()}, sort_keys=True
                )
            else:
                out[name] = "(default)" if value is None else str(value)
        out["effective_database_url"] = _mask_url(self.effective_database_url)
        out["database_url"] = _mask_url(out["database_url"])
        return out


#: Fewest distinct characters a secret may have.
_MIN_DISTINCT = 8
#: Least estimated entropy of a secret, in bits (length x Shannon entropy per character).
_MIN_ENTROPY_BITS = 48.0


def _period(text: str) -> int:
    """The length of the shortest unit that ``text`` repeats ("abab" -> 2)."""
    n = len(text)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and text[:p] * (n // p) == text:
            return p
    return n


def _only_placeholder_words(text: str) -> bool:
    """Whether ``text`` (letters only) is nothing but placeholder words run together."""
    words = {"".join(c for c in w if c.isalpha()) for w in PLACEHOLDER_SECRETS} - {""}
    reachable = [True] + [False] * len(text)
    for i in range(len(text)):
        if reachable[i]:
            for w in words:
                if text.startswith(w, i):
                    reachable[i + len(w)] = True
    return reachable[len(text)]


def secret_weakness(value: str) -> str | None:
    """Why ``value`` is too weak to be a secret, or ``None``.

    The rule (ADR 0081): at least 16 characters; no short unit repeated
    (``changemechangeme``, ``aaaaaaaaaaaaaaaa``); not made of placeholder words with
    digits or punctuation (``changeme-12345678``); at least 8 distinct characters;
    and at least 48 bits by a Shannon estimate (length x entropy per character of
    the value's own character frequencies). 32 random URL-safe bytes pass with
    ~200 bits. The reason never quotes the value.
    """
    if len(value) < _MIN_SECRET_LENGTH:
        return f"shorter than {_MIN_SECRET_LENGTH} characters"
    lowered = value.lower()
    if _period(lowered) <= len(lowered) // 2:
        return "a short pattern repeated"
    letters = "".join(c for c in lowered if c.isalpha())
    if not letters or _only_placeholder_words(letters):
        return "placeholder words, digits and punctuation"
    if len(set(value)) < _MIN_DISTINCT:
        return f"fewer than {_MIN_DISTINCT} different characters"
    counts = Counter(value)
    per_char = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())
    if per_char * len(value) < _MIN_ENTROPY_BITS:
        return f"less than {_MIN_ENTROPY_BITS:.0f} bits by estimate"
    return None


def _read_secrets(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, val = line.partition("=")
            if key and val:
                values[key] = val
    return values


def _private(path: str, flags: int) -> int:
    """Open a new file readable by its owner only (no window at a wider mode)."""
    return os.open(path, flags, 0o600)


def _mask_url(url: str) -> str:
    """Hide a password inside a database URL (SQLAlchemy's own URL parser does it)."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://(unreadable URL hidden)"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (``127.0.0.0/8``, ``::1``)."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
