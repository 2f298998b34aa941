"""``relto federation``: this node's descriptor, and the partner nodes it trusts.

- ``descriptor --out FILE``: make and sign this node's descriptor (its node key
  and attestation key are created in ``<data_dir>/federation/`` on first use, mode
  0600) and print the node key's fingerprint, to give partners out of band;
- ``trust FILE --fingerprint FP --actor ID``: pin a partner's descriptor, signed
  by the key whose fingerprint its security officer gave out of band;
- ``update FILE --actor ID``: replace a pinned descriptor by one its node key signed;
- ``untrust NATION --actor ID``; ``list``;
- ``refresh``: fetch each pinned node's descriptor from its address and take a
  newer one its pinned node key signed (the server does it every
  ``RELTO_FEDERATION_REFRESH_SECONDS``; :mod:`relto.federation.refresh`).

Changing trust is ``federation:trust:write``: ``--actor`` names a person of this
node's directory, who must be a security officer of the node's nation; the
authorisation point decides and records, and every change is recorded in the
transparency log (``federation.node.pinned|updated|unpinned``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from relto.audit.config import open_log
from relto.authz import Authorizer
from relto.config import Settings, load_settings
from relto.errors import InvalidInput
from relto.federation import PinnedNode, TrustStore
from relto.federation.descriptor import MAX_DESCRIPTOR_VALIDITY
from relto.federation.homekeys import active_kas_keys, load_home_keys
from relto.federation.issuer import DescriptorIssuer
from relto.federation.refresh import DescriptorRefresher
from relto.kas.config import KasSettings
from relto.kas.runtime import open_key_store
from relto.store import create_database
from relto.store.federation import SqlPinRepository
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["register"]

federation_app = typer.Typer(
    help="Federation: this node's descriptor and the partner nodes it trusts.",
    no_args_is_help=True,
)

ActorId = Annotated[
    str,
    typer.Option(
        "--actor",
        help="Who changes trust: a security officer of this node's nation, by person id "
        "in the node's directory.",
    ),
]


def _settings() -> Settings:
    return load_settings().with_demo_secrets()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise InvalidInput(f"cannot read a descriptor from {path}") from None


class _TrustChange:
    """The node's trust store, acting for ``actor`` as the directory records them."""

    def __init__(self, actor: str) -> None:
        settings = _settings()
        db = create_database(settings.effective_database_url)
        log = open_log(settings)
        who = Directory(VettingService(db, log)).principal(actor, via="node")
        if who is None:
            raise InvalidInput(f"no person {actor[:64]!r} in this node's directory")
        self.who = who
        self.store = TrustStore(SqlPinRepository(db), Authorizer(log), log, settings.nation)


def _row(pin: PinnedNode) -> dict[str, object]:
    d = pin.descriptor
    return {
        "nation": d.nation,
        "fingerprint": pin.fingerprint,
        "base_url": d.base_url,
        "issued_at": d.issued_at.isoformat(),
        "not_after": d.not_after.isoformat(),
        "attestation_keys": [k.kid for k in d.attestation_keys],
        "kas_keys": [k.kid for k in d.kas_keys],
        "pinned_at": pin.pinned_at.isoformat(),
        "pinned_by": pin.pinned_by,
    }


@federation_app.command("descriptor")
def descriptor(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the descriptor.")],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="This node's address [RELTO_PUBLIC_URL]."),
    ] = None,
    valid_days: Annotated[
        int,
        typer.Option(
            "--valid-days", min=1, max=MAX_DESCRIPTOR_VALIDITY.days, help="Validity in days."
        ),
    ] = 90,
) -> None:
    """Make and sign this node's descriptor; print its node key's fingerprint."""
    settings = _settings()
    url = base_url or settings.public_url
    if not url:
        raise InvalidInput("set RELTO_PUBLIC_URL or pass --base-url: partners must reach it")
    keys = load_home_keys(settings)  # the same keys the server's descriptor names
    kas = open_key_store(settings, KasSettings())  # type: ignore[call-arg]
    try:
        token = DescriptorIssuer(
            nation=settings.nation,
            base_url=url,
            keys=keys,
            kas_keys=active_kas_keys(kas),
            validity=timedelta(days=valid_days),
        ).current(datetime.now(UTC))
    except ValueError as exc:
        raise InvalidInput(f"cannot make the descriptor: {exc}") from None
    out.write_text(token + "\n", encoding="ascii")
    typer.echo(f"wrote {out}")
    typer.echo(f"nation {settings.nation}")
    typer.echo(f"fingerprint {keys.node_key.fingerprint}")


@federation_app.command("trust")
def trust(
    descriptor_file: Annotated[Path, typer.Argument(help="The partner node's descriptor.")],
    fingerprint: Annotated[
        str,
        typer.Option(
            "--fingerprint",
            help="The node key's fingerprint (SHA256:...), received from the partner's "
            "security officer out of band.",
        ),
    ],
    actor: ActorId,
) -> None:
    """Pin a partner node for the first time."""
    change = _TrustChange(actor)
    pin = change.store.pin(
        _read(descriptor_file), fingerprint=fingerprint, actor=change.who, now=datetime.now(UTC)
    )
    typer.echo(json.dumps(_row(pin), indent=2))


@federation_app.command("update")
def update(
    descriptor_file: Annotated[Path, typer.Argument(help="The partner node's new descriptor.")],
    actor: ActorId,
) -> None:
    """Replace a pinned descriptor by one signed with its node key."""
    change = _TrustChange(actor)
    pin = change.store.update(_read(descriptor_file), actor=change.who, now=datetime.now(UTC))
    typer.echo(json.dumps(_row(pin), indent=2))


@federation_app.command("untrust")
def untrust(
    nation: Annotated[str, typer.Argument(help="The nation whose node to stop trusting.")],
    actor: ActorId,
) -> None:
    """Stop trusting a partner node."""
    change = _TrustChange(actor)
    pin = change.store.unpin(nation.upper(), actor=change.who, now=datetime.now(UTC))
    typer.echo(json.dumps(_row(pin), indent=2))


@federation_app.command("refresh")
def refresh() -> None:
    """Fetch every pinned node's descriptor from its address and take a newer one
    signed by the pinned node key (what the server does every
    RELTO_FEDERATION_REFRESH_SECONDS). One JSON line per partner."""
    settings = _settings()
    db = create_database(settings.effective_database_url)
    log = open_log(settings)
    store = TrustStore(SqlPinRepository(db), Authorizer(log), log, settings.nation)
    results = DescriptorRefresher(store).refresh(datetime.now(UTC))
    for r in results:
        typer.echo(json.dumps({"nation": r.nation, "outcome": r.outcome, "detail": r.detail}))
    if any(r.outcome == "refused" for r in results):
        raise typer.Exit(3)


@federation_app.command("list")
def list_pins() -> None:
    """List the pinned partner nodes (JSON)."""
    settings = _settings()
    repo = SqlPinRepository(create_database(settings.effective_database_url))
    typer.echo(json.dumps([_row(p) for p in repo.all()], indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(federation_app, name="federation")
