"""``relto kas``: the key access service's keys.

``relto kas keys list|rotate|retire|import`` manage the configured key store (file or
PKCS#11, from ``RELTO_KAS_KEYSTORE`` ...); ``relto kas public-key`` prints the
active public key PEM for offline ``relto protect --kas-public-key``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from relto.config import load_settings
from relto.kas.config import KasSettings
from relto.kas.errors import KeyStoreError
from relto.kas.filestore import FileKeyStore
from relto.kas.keys import KeyInfo, KeyState, KeyStore, parse_algorithm
from relto.kas.runtime import open_key_store

__all__ = ["register"]

kas_app = typer.Typer(help="The key access service (KAS).", no_args_is_help=True)
keys_app = typer.Typer(help="KAS key pairs: list, rotate, retire.", no_args_is_help=True)
kas_app.add_typer(keys_app, name="keys")


def _store() -> KeyStore:
    settings = load_settings().with_demo_secrets()
    return open_key_store(settings, KasSettings())  # type: ignore[call-arg]


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
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="rsa:2048 or ec:secp256r1")
    ] = "rsa:2048",
) -> None:
    """Add a key and make it active; the previous one still opens old containers."""
    info = _store().rotate(parse_algorithm(_algorithm(algorithm)), at=datetime.now(UTC))
    typer.echo(json.dumps(_row(info), indent=2))


@keys_app.command("retire")
def retire(kid: Annotated[str, typer.Argument(help="The key id to retire.")]) -> None:
    """Retire a key: it never unwraps again (containers wrapped to it stop opening)."""
    info = _store().retire(kid, at=datetime.now(UTC))
    typer.echo(json.dumps(_row(info), indent=2))


@keys_app.command("import")
def import_key(
    pem_file: Annotated[Path, typer.Argument(help="Unencrypted PEM private key to import.")],
    kid: Annotated[str, typer.Option("--kid", help="The key id containers name it by.")],
    active: Annotated[
        bool, typer.Option("--active", help="Make it the active key (default: rotated).")
    ] = False,
) -> None:
    """Import an existing KAS private key (file store), e.g. from another OpenTDF KAS."""
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
