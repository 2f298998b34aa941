"""``relto audit``: checkpoints, proofs, offline verification and witnessing.

Exit codes of ``verify``: 0 the stored log matches the checkpoint; 1 it does not
(the first mismatching index is printed) or the checkpoint is not trusted.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from relto.audit.errors import AuditError, InvalidNote
from relto.audit.note import CosignatureVerifier, NoteVerifier, Verifier, parse_verifier

__all__ = ["register"]

audit_app = typer.Typer(
    help="The transparency log: checkpoints, proofs, verification, witnessing.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _read_key(value: str) -> Verifier:
    """A verifier key given inline or as a file holding it."""
    path = Path(value)
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else value
    return parse_verifier(text)


def _log(db: str | None) -> Any:
    from relto.audit.config import database_url
    from relto.audit.service import TransparencyLog
    from relto.config import load_settings
    from relto.store import create_database

    url = db or database_url(load_settings())
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    return TransparencyLog(create_database(url))


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Log database URL or SQLite file (default: the configured one)."),
]


@audit_app.command("checkpoint")
def checkpoint_cmd(db: DbOption = None) -> None:
    """Sign the current tree head as a C2SP checkpoint and print it."""
    from relto.audit.config import node_signer
    from relto.config import load_settings

    log = _log(db)
    note = log.sign_checkpoint(node_signer(load_settings()))
    typer.echo(note, nl=False)


@audit_app.command("key")
def key_cmd() -> None:
    """Print the log node's verifier key (give it to partners and witnesses)."""
    from relto.audit.config import node_signer
    from relto.config import load_settings

    typer.echo(node_signer(load_settings()).verifier().vkey)


@audit_app.command("self-check")
def self_check_cmd() -> None:
    """Re-derive this node's whole stored log now (what the server does every
    RELTO_AUDIT_SELF_CHECK_SECONDS); on a mismatch, record it and report it, signed
    with the node key, to every pinned partner. Exit 0: it matches; 1: it does not."""
    from relto.config import load_settings
    from relto.node import build_node
    from relto.server.integrity import self_check_once

    node = build_node(load_settings())
    try:
        result = self_check_once(node)
    finally:
        node.db.dispose()
    if result is None:
        typer.echo("no checkpoint signed yet: nothing to check against")
        return
    if result.finding is None:
        typer.echo(
            f"ok: {result.checked} entries re-derived against the checkpoint of size "
            f"{result.checkpoint_size}"
        )
        return
    f = result.finding
    typer.echo(f"ALTERED: index {f.index} ({f.kind}): {f.detail}", err=True)
    if node.federation is not None:
        typer.echo("reported, signed, to every pinned partner", err=True)
    raise typer.Exit(1)


@audit_app.command("prove")
def prove_cmd(
    index: Annotated[int | None, typer.Option(min=0, help="Entry index to prove.")] = None,
    leaf_hash: Annotated[str | None, typer.Option(help="Leaf hash (base64) to prove.")] = None,
    size: Annotated[int | None, typer.Option(min=1, help="Tree size (default: current).")] = None,
    consistency_from: Annotated[
        int | None, typer.Option(min=1, help="Prove consistency from this size instead.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Print an inclusion proof (or a consistency proof) as JSON."""
    log = _log(db)
    out: dict[str, Any]
    if consistency_from is not None:
        c = log.consistency_proof(consistency_from, size)
        out = {
            "first": c.first,
            "second": c.second,
            "first_root": _b64(c.first_root),
            "second_root": _b64(c.second_root),
            "proof": [_b64(x) for x in c.proof],
        }
    else:
        if (index is None) == (leaf_hash is None):
            raise typer.BadParameter("give exactly one of --index or --leaf-hash")
        if leaf_hash is not None:
            p = log.inclusion_proof_by_hash(base64.b64decode(leaf_hash, validate=True), size)
        else:
            p = log.inclusion_proof(index, size)
        out = {
            "index": p.index,
            "tree_size": p.tree_size,
            "leaf_hash": _b64(p.leaf_hash),
            "root": _b64(p.root),
            "proof": [_b64(x) for x in p.proof],
        }
    typer.echo(json.dumps(out, indent=2))


def _pinned_witness_keys() -> list[Verifier]:
    """The witness cosigner keys of the partner nodes this node pins."""
    from relto.config import load_settings
    from relto.store import create_database
    from relto.store.federation import SqlPinRepository

    settings = load_settings()
    repo = SqlPinRepository(create_database(settings.effective_database_url))
    return [parse_verifier(p.descriptor.witness_key) for p in repo.all()]


def _node_min_cosignatures() -> int:
    """The cosignatures this node requires (``RELTO_AUDIT_MIN_COSIGNATURES``; unset:
    one per pinned partner that is a member of the partnership it serves)."""
    from relto.audit.config import AuditSettings, required_cosignatures
    from relto.config import load_settings
    from relto.store import create_database
    from relto.store.federation import SqlPinRepository
    from relto.store.partnership import SqlPartnershipRepository

    settings = load_settings()
    db = create_database(settings.effective_database_url)
    pinned = [p.nation for p in SqlPinRepository(db).all() if p.nation != settings.nation]
    with db.session() as s:
        served = SqlPartnershipRepository(s).list_partnerships(0, 1).items
    members = served[0].members if served else None
    return required_cosignatures(AuditSettings(), pinned=pinned, members=members)


def _fetch_cosigned(log_source: str) -> tuple[str, bytes]:
    """An http(s) log's latest checkpoint cosigned by partner witnesses."""
    import httpx

    if not log_source.startswith(("http://", "https://")):
        raise InvalidNote(
            "give --checkpoint, or --cosigned-from (or an http(s) --log) to fetch the "
            "cosigned checkpoint from"
        )
    url = log_source.rstrip("/") + "/api/v1/audit/checkpoint/cosigned"
    try:
        resp = httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        raise InvalidNote(f"cannot fetch {url}: {type(exc).__name__}") from None
    if resp.status_code != 200 or len(resp.content) > 64 * 1024:
        raise InvalidNote(f"{url} answered HTTP {resp.status_code}: no cosigned checkpoint")
    return url, resp.content


def _default_log_key() -> NoteVerifier | None:
    from relto.audit.config import key_file
    from relto.config import load_settings

    pub = key_file(load_settings())
    pub = pub.with_name(pub.name + ".pub")
    if pub.is_file():
        v = parse_verifier(pub.read_text(encoding="utf-8").strip())
        return v if isinstance(v, NoteVerifier) else None
    return None


@audit_app.command("verify")
def verify_cmd(
    log_source: Annotated[
        str, typer.Option("--log", help="Database URL, SQLite file, or http(s) relto server.")
    ],
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Trusted checkpoint file (repeatable); without it, an http(s) --log's "
            "latest checkpoint cosigned by partner witnesses is fetched.",
        ),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(help="The log's verifier key, inline or a file (default: local .pub)."),
    ] = None,
    witness_key: Annotated[
        list[str] | None, typer.Option(help="A witness's cosigner key (repeatable).")
    ] = None,
    min_cosignatures: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Witness cosignatures each checkpoint needs (default: with "
            "--pinned-witnesses, the node's RELTO_AUDIT_MIN_COSIGNATURES; else 0).",
        ),
    ] = None,
    cosigned_from: Annotated[
        str | None,
        typer.Option(
            "--cosigned-from",
            help="Without --checkpoint: the relto node (http(s) URL) whose latest "
            "cosigned checkpoint to trust (default: an http(s) --log).",
        ),
    ] = None,
    pinned_witnesses: Annotated[
        bool,
        typer.Option(
            "--pinned-witnesses",
            help="Also accept the witness keys of the partner nodes this node pins.",
        ),
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="For an http(s) --log: a file holding an auditor's OIDC access token "
            "(default: $RELTO_AUDIT_TOKEN). Entry bodies are not public."
        ),
    ] = None,
) -> None:
    """Check checkpoint signatures, re-derive the log and report the first mismatch."""
    from relto.audit.checkpoint import open_checkpoint
    from relto.audit.sources import open_source
    from relto.audit.verify import verify_log

    key = _read_key(log_key) if log_key else _default_log_key()
    if not isinstance(key, NoteVerifier):
        raise InvalidNote("need the log's verifier key (--log-key)")
    witnesses = [_read_key(w) for w in witness_key or []]
    if pinned_witnesses:
        witnesses.extend(_pinned_witness_keys())
    if min_cosignatures is None:
        min_cosignatures = _node_min_cosignatures() if pinned_witnesses else 0
    if any(not isinstance(w, CosignatureVerifier) for w in witnesses):
        raise InvalidNote("witness keys must be cosigner (type 0x04) keys")
    trusted = []
    sources = [(str(path), path.read_bytes()) for path in checkpoint or []]
    if not sources:
        sources = [_fetch_cosigned(cosigned_from or log_source)]
    for path, body in sources:
        try:
            signed = open_checkpoint(body, key, extra=witnesses)
        except InvalidNote as exc:
            typer.echo(f"checkpoint {path}: not trusted: {exc}", err=True)
            raise typer.Exit(1) from None
        cosigs = len(signed.verified.timestamps)
        if cosigs < min_cosignatures:
            typer.echo(
                f"checkpoint {path}: {cosigs} witness cosignature(s), need {min_cosignatures}",
                err=True,
            )
            raise typer.Exit(1)
        trusted.append(signed.checkpoint)
    token = (
        token_file.read_text(encoding="utf-8").strip()
        if token_file
        else os.environ.get("RELTO_AUDIT_TOKEN", "").strip()
    )
    report = verify_log(open_source(log_source, token=token or None), trusted)
    typer.echo(report.describe())
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("keygen")
def keygen_cmd(
    name: Annotated[str, typer.Option(help="Key name, e.g. witness.example/aus.")],
    out: Annotated[Path, typer.Option(help="Private key file to create (mode 0600).")],
) -> None:
    """Create a signer key (for a witness or a log) and print its verifier keys."""
    from relto.audit.keys import write_new_signer

    signer = write_new_signer(out, name)
    typer.echo(f"log/note key:    {signer.verifier().vkey}")
    typer.echo(f"cosigner key:    {signer.cosignature_verifier().vkey}")


@audit_app.command("witness")
def witness_cmd(
    checkpoint: Annotated[Path, typer.Option(help="The log's signed checkpoint file.")],
    log_source: Annotated[
        str, typer.Option("--log", help="Where to fetch the consistency proof from.")
    ],
    log_key: Annotated[str, typer.Option(help="The log's verifier key, inline or a file.")],
    key: Annotated[Path, typer.Option(help="This witness's private key file.")],
    state: Annotated[Path, typer.Option(help="This witness's state file.")],
) -> None:
    """Cosign a checkpoint if it extends the last one this witness cosigned.

    Prints the checkpoint with the cosignature added; exit 1 on a fork or rollback.
    """
    from relto.audit.keys import load_signer
    from relto.audit.note import parse_note
    from relto.audit.witness import FileWitnessState, Witness

    lk = _read_key(log_key)
    if not isinstance(lk, NoteVerifier):
        raise InvalidNote("the log key must be a note (type 0x01) key")
    w = Witness(load_signer(key), [lk], FileWitnessState(state))
    note = checkpoint.read_text(encoding="utf-8")
    parsed = parse_note(note)
    lines = parsed.text.split("\n")
    new_size = int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else 0
    last = w.last_size(lk.name)
    proof: list[bytes] = []
    if 0 < last < new_size:
        proof = _fetch_consistency(log_source, last, new_size)
    try:
        cosigned = w.cosign_note(note, proof, at=datetime.now(UTC))
    except AuditError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    sys.stdout.write(cosigned)


def _fetch_consistency(where: str, first: int, second: int) -> list[bytes]:
    if where.startswith(("http://", "https://")):
        import httpx

        from relto.audit.sources import API_PREFIX

        base = where.rstrip("/")
        if not base.endswith(API_PREFIX):
            base += API_PREFIX
        resp = httpx.get(
            f"{base}/proof/consistency", params={"first": first, "second": second}, timeout=30
        )
        if resp.status_code != 200:
            raise AuditError(f"log server answered {resp.status_code} for a consistency proof")
        return [base64.b64decode(x) for x in resp.json()["proof"]]
    return list(_log(where).consistency_proof(first, second).proof)
