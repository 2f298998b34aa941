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
- ``RELTO_AUDIT_SELF_CHECK_SECONDS``: how often a federated node re-derives its
  whole stored log (:mod:`relto.audit.selfcheck`) and reports a mismatch, signed,
  to every pinned partner (default 600; 0: never).
- ``RELTO_AUDIT_MIN_COSIGNATURES``: how many pinned partners' witnesses must have
  cosigned a checkpoint for the console to call the log witnessed, and what
  ``relto audit verify --pinned-witnesses`` requires unless told otherwise (a
  whole number from 0 to 64). Unset: one per pinned partner that is a member of
  the partnership this node serves (every pinned partner while it serves none),
  so 0 on a node that pins nobody. Set to more than 0 on a node with no
  federation address (nobody can cosign its checkpoints), the node refuses to
  start.
- ``RELTO_AUDIT_DATABASE_URL``: where the log is stored. Default: the main database
  on PostgreSQL; on SQLite a file of its own, ``<data_dir>/audit.db``, because
  SQLite has one writer per file and services may call ``sink.record`` while their
  own write transaction is open (see docs/adr/0060).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError
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
    "MAX_MIN_COSIGNATURES",
    "AuditSettings",
    "check_min_cosignatures",
    "database_url",
    "key_file",
    "node_signer",
    "node_witness",
    "open_log",
    "origin",
    "required_cosignatures",
]

#: The most cosignatures ``RELTO_AUDIT_MIN_COSIGNATURES`` may require: more
#: partners than any federation of allies pins.
MAX_MIN_COSIGNATURES = 64


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
    self_check_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=604800,
            description="How often a federated node re-derives its whole stored log and, "
            "on a mismatch, reports it signed to every pinned partner (0: never).",
        ),
    ] = 600
    min_cosignatures: Annotated[
        int | None,
        Field(
            ge=0,
            le=MAX_MIN_COSIGNATURES,
            description="Pinned partners' witness cosignatures a checkpoint needs to count "
            "as witnessed (unset: one per pinned member partner).",
        ),
    ] = None

    def __init__(self, **values: Any) -> None:
        """Read ``RELTO_AUDIT_*``; :class:`ConfigError` (one line naming the
        variable) for a value that makes no sense, so a node refuses to start."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = "RELTO_AUDIT_" + "_".join(str(p) for p in err["loc"]).upper()
            if name == "RELTO_AUDIT_MIN_COSIGNATURES":
                raise ConfigError(
                    f"{name}={err.get('input')!r} is not a number of partner cosignatures: "
                    f"give a whole number from 0 to {MAX_MIN_COSIGNATURES}, or leave it "
                    "unset (one per pinned member partner)"
                ) from None
            raise ConfigError(f"{name}={err.get('input')!r}: {err['msg']}") from None


def required_cosignatures(
    audit: AuditSettings, *, pinned: Collection[str], members: Collection[str] | None
) -> int:
    """How many pinned partners' witnesses must cosign a checkpoint.

    ``RELTO_AUDIT_MIN_COSIGNATURES`` when set; otherwise one per nation in
    ``pinned`` (the partners this node pins now) that is in ``members`` (the
    member nations of the partnership it serves; ``None`` when it serves none:
    every pinned partner). A node that pins nobody needs none.
    """
    if audit.min_cosignatures is not None:
        return audit.min_cosignatures
    if members is None:
        return len(set(pinned))
    return len(set(pinned) & set(members))


def check_min_cosignatures(audit: AuditSettings, *, witnessed: bool) -> None:
    """Refuse a requirement nobody can meet: cosignatures required of a node that
    sends its checkpoints to no witness (``witnessed`` false: it has no federation
    address, or pushes never)."""
    n = audit.min_cosignatures
    if n and not witnessed:
        why = (
            "RELTO_AUDIT_WITNESS_PUSH_SECONDS=0 sends its checkpoints to no partner"
            if audit.witness_push_seconds == 0
            else "this node has no federation address (RELTO_PUBLIC_URL), so it sends its "
            "checkpoints to no partner"
        )
        raise ConfigError(
            f"RELTO_AUDIT_MIN_COSIGNATURES={n} cannot be met: {why}, and no partner witness "
            "ever cosigns one; set it to 0 or unset it"
        )


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
