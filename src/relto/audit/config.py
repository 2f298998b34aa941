"""The log node's settings (``RELTO_AUDIT_*``) and its signing key.

- ``RELTO_AUDIT_KEY_FILE``: the node's Ed25519 signer key (default
  ``<data_dir>/audit/log.key``, created on first use with mode 0600; the public
  verifier key is written next to it as ``log.key.pub``).
- ``RELTO_AUDIT_ORIGIN``: the checkpoint origin and key name (default
  ``relto/<nation>/audit``).
- ``RELTO_AUDIT_WITNESS_LOGS``: verifier keys of logs this node witnesses besides
  those of the partners it pins (comma-separated, or a file with one per line).
  When set, or when the node takes part in a federation, the node serves C2SP
  tlog-witness ``add-checkpoint`` (:mod:`relto.audit.witnessing`); its witness key
  is ``RELTO_AUDIT_WITNESS_KEY_FILE`` (default ``<data_dir>/audit/witness.key``,
  named ``relto/<nation>/witness``) and its state
  ``<data_dir>/audit/witness-state.json``.
- ``RELTO_AUDIT_WITNESS_PUSH_SECONDS``: how often a federated node sends its
  latest checkpoint to every pinned partner's witness (default 60; 0: never).
- ``RELTO_AUDIT_DATABASE_URL``: where the log is stored. Default: the main database
  on PostgreSQL; on SQLite a file of its own, ``<data_dir>/audit.db``, because
  SQLite has one writer per file and services may call ``sink.record`` while their
  own write transaction is open (see docs/adr/0060).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from relto.audit.keys import load_or_create_signer
from relto.audit.note import NoteSigner, NoteVerifier, parse_verifier
from relto.audit.service import TransparencyLog
from relto.audit.witness import FileWitnessState, Witness
from relto.audit.witnessing import Partner, partner_logs
from relto.config import Settings
from relto.errors import ConfigError
from relto.metrics import DomainMetrics
from relto.store import create_database

__all__ = [
    "AuditSettings",
    "database_url",
    "key_file",
    "node_signer",
    "node_witness",
    "open_log",
    "origin",
]


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELTO_AUDIT_", extra="ignore")

    key_file: Path | None = None
    origin: str | None = None
    database_url: str | None = None
    witness_logs: str | None = None
    witness_key_file: Path | None = None
    witness_push_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=86400,
            description="How often the node sends its latest checkpoint to every pinned "
            "partner's witness and keeps their cosignatures (0: never).",
        ),
    ] = 60


def key_file(settings: Settings, audit: AuditSettings | None = None) -> Path:
    audit = audit or AuditSettings()
    return audit.key_file or settings.data_dir / "audit" / "log.key"


def origin(settings: Settings, audit: AuditSettings | None = None) -> str:
    audit = audit or AuditSettings()
    return audit.origin or f"relto/{settings.nation.lower()}/audit"


def node_signer(settings: Settings, audit: AuditSettings | None = None) -> NoteSigner:
    """The node's checkpoint signer, created on first use."""
    return load_or_create_signer(key_file(settings, audit), origin(settings, audit))


def database_url(settings: Settings, audit: AuditSettings | None = None) -> str:
    audit = audit or AuditSettings()
    if audit.database_url:
        return audit.database_url
    main = settings.effective_database_url
    if main.startswith("sqlite"):
        return f"sqlite:///{(settings.data_dir / 'audit.db').resolve()}"
    return main


def open_log(
    settings: Settings,
    audit: AuditSettings | None = None,
    *,
    metrics: DomainMetrics | None = None,
) -> TransparencyLog:
    """The node's transparency log, on its configured database (migrated).

    A SQLite file of its own is opened with fsync on every commit: a key is released
    only after its entry is on disk. Group commit amortises the cost. ``metrics``:
    where its appends are counted (the node's :class:`~relto.metrics.DomainMetrics`).
    """
    url = database_url(settings, audit)
    own = url != settings.effective_database_url
    return TransparencyLog(create_database(url), sync_commits=own, metrics=metrics)


def _static_logs(audit: AuditSettings) -> dict[str, NoteVerifier]:
    if not audit.witness_logs:
        return {}
    source = Path(audit.witness_logs)
    text = source.read_text(encoding="utf-8") if source.is_file() else audit.witness_logs
    keys = [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip()]
    logs: dict[str, NoteVerifier] = {}
    for k in keys:
        v = parse_verifier(k)
        if not isinstance(v, NoteVerifier):
            raise ConfigError("RELTO_AUDIT_WITNESS_LOGS must hold log (type 0x01) keys")
        logs[v.name] = v
    return logs


def node_witness(
    settings: Settings,
    audit: AuditSettings | None = None,
    *,
    partners: Callable[[], Iterable[Partner]] | None = None,
) -> Witness | None:
    """The node's witness, or ``None`` when it witnesses nothing.

    It knows the logs of ``RELTO_AUDIT_WITNESS_LOGS`` and, on a federated node
    (``partners`` given: the pinned partners, asked at every call), each pinned
    partner's log.
    """
    audit = audit or AuditSettings()
    static = _static_logs(audit)
    if not static and partners is None:
        return None
    path = audit.witness_key_file or settings.data_dir / "audit" / "witness.key"
    signer = load_or_create_signer(path, f"relto/{settings.nation.lower()}/witness")
    state = FileWitnessState(settings.data_dir / "audit" / "witness-state.json")
    if partners is None:
        return Witness(signer, static, state)
    return Witness(signer, partner_logs(static, partners), state)
