"""``relto kas``: the key access service's keys.

``relto kas keys list|rotate|retire|import`` manage the configured key store (file or
PKCS#11, from ``RELTO_KAS_KEYSTORE`` ...); ``relto kas public-key`` prints the
active public key PEM for offline ``relto protect --kas-public-key``.

Changing keys is key management (``kas:keys:write``): ``--actor`` names a person of
this node's directory, who must be a security officer of the node's nation; the
authorisation point decides and records, and every change is recorded in the
node's transparency log (``kas.key.rotated``, ``kas.key.retired``,
``kas.key.imported``) once it is made.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from relto.audit.config import open_log
from relto.authz import Authorizer, Permission, Scope
from relto.config import load_settings
from relto.errors import InvalidInput
from relto.events import AuditSink
from relto.kas.config import KasSettings
from relto.kas.errors import KeyStoreError
from relto.kas.filestore import FileKeyStore
from relto.kas.keys import KeyInfo, KeyState, KeyStore, parse_algorithm
from relto.kas.runtime import open_key_store
from relto.store import create_database
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["register"]

kas_app = typer.Typer(help="The key access service (KAS).", no_args_is_help=True)
keys_app = typer.Typer(help="KAS key pairs: list, rotate, retire.", no_args_is_help=True)
kas_app.add_typer(keys_app, name="keys")


def _store() -> KeyStore:
    settings = load_settings().with_demo_secrets()
    return open_key_store(settings, KasSettings())  # type: ignore[call-arg]


ActorId = Annotated[
    str,
    typer.Option(
        "--actor",
        help="Who changes the keys: a security officer of this node's nation, by person id "
        "in the node's directory.",
    ),
]


class _KeyChange:
    """The authorisation point's answer for a key change, and its record."""

    def __init__(self, actor: str, target: str) -> None:
        settings = load_settings().with_demo_secrets()
        db = create_database(settings.effective_database_url)
        self.log: AuditSink = open_log(settings)
        self.nation = settings.nation
        who = Directory(VettingService(db, self.log)).principal(actor, via="node")
        if who is None:
            raise InvalidInput(f"no person {actor[:64]!r} in this node's directory")
        Authorizer(self.log).require(
            who, Permission.KAS_KEYS_WRITE, Scope.of([settings.nation]), target=target
        )
        self.actor = who.person_id

    def done(self, kind: str, info: KeyInfo) -> None:
        self.log.record(
            f"kas.key.{kind}",
            {**_row(info), "nation": self.nation, "by": self.actor,
             "at": datetime.now(UTC).isoformat()},
        )  # fmt: skip


def _row(info: KeyInfo) -> dict[str, str | None]:
    return {
        "kid": info.kid,
        "algorithm": info.algorithm,
        "state": info.state.value,
        "created_at": info.created_at.isoformat(),
        "retired_at": info.retired_at.isoformat() if info.retired_at else None,
    }


def _algorithm(value: str) -> str:
    try:
        return parse_algorithm(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@keys_app.command("list")
def list_keys() -> None:
    """List every key with its id, algorithm and state (JSON)."""
    typer.echo(json.dumps([_row(k) for k in _store().list_keys()], indent=2))


@keys_app.command("rotate")
def rotate(
    actor: ActorId,
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="rsa:2048 or ec:secp256r1")
    ] = "rsa:2048",
) -> None:
    """Add a key and make it active; the previous one still opens old containers."""
    change = _KeyChange(actor, f"rotate {algorithm}")
    info = _store().rotate(parse_algorithm(_algorithm(algorithm)), at=datetime.now(UTC))
    change.done("rotated", info)
    typer.echo(json.dumps(_row(info), indent=2))


@keys_app.command("retire")
def retire(
    kid: Annotated[str, typer.Argument(help="The key id to retire.")],
    actor: ActorId,
) -> None:
    """Retire a key: it never unwraps again (containers wrapped to it stop opening)."""
    change = _KeyChange(actor, f"retire {kid}")
    info = _store().retire(kid, at=datetime.now(UTC))
    change.done("retired", info)
    typer.echo(json.dumps(_row(info), indent=2))


@keys_app.command("import")
def import_key(
    pem_file: Annotated[Path, typer.Argument(help="Unencrypted PEM private key to import.")],
    kid: Annotated[str, typer.Option("--kid", help="The key id containers name it by.")],
    actor: ActorId,
    active: Annotated[
        bool, typer.Option("--active", help="Make it the active key (default: rotated).")
    ] = False,
) -> None:
    """Import an existing KAS private key (file store), e.g. from another OpenTDF KAS."""
    change = _KeyChange(actor, f"import {kid}")
    store = _store()
    if not isinstance(store, FileKeyStore):
        raise KeyStoreError("importing keys is supported by the file key store only")
    try:
        data = pem_file.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read {pem_file}: {exc.strerror}") from None
    state = KeyState.ACTIVE if active else KeyState.ROTATED
    try:
        info = store.import_key(data, kid=kid, at=datetime.now(UTC), state=state)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    change.done("imported", info)
    typer.echo(json.dumps(_row(info), indent=2))


@kas_app.command("public-key")
def public_key(
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="rsa:2048 or ec:secp256r1")
    ] = "rsa:2048",
    kid_only: Annotated[bool, typer.Option("--kid", help="Print only the key id.")] = False,
) -> None:
    """Print the active public key (PEM) for offline protection."""
    info = _store().active(parse_algorithm(_algorithm(algorithm)))
    typer.echo(info.kid if kid_only else info.public_key_pem.rstrip("\n"))


def register(app: typer.Typer) -> None:
    app.add_typer(kas_app, name="kas")
