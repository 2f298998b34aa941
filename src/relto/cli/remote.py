"""Online commands, through :mod:`relto.client`: sign in at the home node's
identity provider, then list, decide, open and protect across the nodes the home
node pins.

- ``relto login --node URL --issuer URL --client-id ID``: the authorization code
  flow with PKCE in the person's browser (loopback redirect), a DPoP-bound token;
  kept with its key in ``~/.config/relto/session.json`` (``$RELTO_CLIENT_SESSION``),
  mode 0600;
- ``relto logout``;
- ``relto remote objects [--readable]``: every node's objects the person may know of;
- ``relto remote decide NATION ID [--action read]``: the holding node's explained
  decision;
- ``relto remote open NATION ID -o OUT``: the plaintext, each key share from the
  KAS the container names (several for joint custody);
- ``relto remote protect FILE --title ... --project ... --classification ...
  --rel-to ...``: upload to the home node, which labels and encrypts it;
- ``relto remote audit NATION [--from I] [--limit N] [--pages P]``: as an auditor
  of the home nation, the entries of NATION's log that concern it, each shown ✓
  only once verified against the home node's keys (the log key it pinned for
  NATION, its own witness's cosignature); exit 5 and nothing more shown when
  anything fails to verify (ADR 0142).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from relto.client import (
    DpopKey,
    HomeSession,
    NodeClient,
    NodeUnreachable,
    ProofRejected,
    SavedSession,
    sign_in,
)
from relto.client.signin import default_session_path

__all__ = ["register"]

remote_app = typer.Typer(
    help="Work with relto nodes over the network as the signed-in person (relto login).",
    no_args_is_help=True,
)

SessionFile = Annotated[
    Path | None,
    typer.Option(
        "--session",
        help="Where the sign-in is kept [RELTO_CLIENT_SESSION, ~/.config/relto/session.json].",
    ),
]
Nation = Annotated[str, typer.Argument(help="The nation whose node holds the object (GBR).")]
ObjectId = Annotated[str, typer.Argument(help="The object's id on that node.")]


def _session(path: Path | None) -> HomeSession:
    saved = SavedSession.load(path or default_session_path())
    me = HomeSession(saved.home_url, token=saved.access_token, dpop=saved.dpop, nation=saved.nation)
    me.discover()
    return me


def login(
    node: Annotated[str, typer.Option(help="Your home node's base URL.")],
    issuer: Annotated[str, typer.Option(help="Your nation's OpenID provider (issuer URL).")],
    client_id: Annotated[
        str, typer.Option(help="relto's public client id at that provider (loopback redirect).")
    ],
    session: SessionFile = None,
    timeout: Annotated[float, typer.Option(min=10, help="Seconds to wait for the browser.")] = 300,
) -> None:
    """Sign in at your nation's identity provider, in your browser, for your home node."""
    key = DpopKey.generate()

    def show(url: str) -> None:
        typer.echo(f"Sign in in your browser; if it does not open, visit:\n  {url}")
        import webbrowser

        webbrowser.open(url)

    got = sign_in(issuer, client_id, key, open_browser=show, timeout=timeout)
    with NodeClient(node, credential=got.access_token, dpop=key) as home:
        nation = home.home_nation()
    path = session or default_session_path()
    SavedSession(node.rstrip("/"), nation, issuer, got.access_token, got.expires_at, key).save(path)
    typer.echo(f"signed in for the {nation} node until {got.expires_at:%H:%M} UTC ({path})")


def logout(session: SessionFile = None) -> None:
    """Forget the sign-in (the token and its key)."""
    path = session or default_session_path()
    typer.echo("signed out" if SavedSession.forget(path) else "was not signed in")


@remote_app.command("objects")
def objects(
    session: SessionFile = None,
    readable: Annotated[bool, typer.Option(help="Only those you may read now.")] = False,
) -> None:
    """Objects you may know of, at home and at every partner node: one per line,
    tab-separated (holding nation, id, marking, project, title); a node that cannot
    be reached is named on stderr and the others are still listed."""
    unreachable = False
    with _session(session) as me:
        for node in me.nodes():
            try:
                for o in node.objects(readable=readable):
                    typer.echo(f"{o.node}\t{o.id}\t{o.banner}\t{o.project_id}\t{o.title}")
            except NodeUnreachable as exc:
                typer.echo(f"{exc}: its objects are not listed", err=True)
                unreachable = True
    if unreachable:
        raise typer.Exit(4)


@remote_app.command("decide")
def decide(
    nation: Nation,
    object_id: ObjectId,
    action: Annotated[str, typer.Option(help="read, download, share or relabel.")] = "read",
    session: SessionFile = None,
) -> None:
    """The holding node's explained decision for you."""
    with _session(session) as me:
        d = me.by_nation(nation.upper()).decision(object_id, action)
    typer.echo(f"{'allowed' if d.allowed else 'denied'} ({d.rule})")
    for r in d.reasons:
        typer.echo(f"  {r.code}: {r.sentence}")
    if not d.allowed:
        raise typer.Exit(3)


@remote_app.command("open")
def open_object(
    nation: Nation,
    object_id: ObjectId,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the plaintext.")],
    force: Annotated[bool, typer.Option(help="Overwrite OUT.")] = False,
    session: SessionFile = None,
) -> None:
    """Open an object: the key from the KAS of every nation holding a share."""
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists (--force to overwrite)")
    with _session(session) as me:
        data = me.open(me.by_nation(nation.upper()), object_id)
    tmp = out.with_name(out.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(out)
    typer.echo(f"wrote {out} ({len(data)} bytes)")


@remote_app.command("protect")
def protect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    title: Annotated[str, typer.Option()],
    project: Annotated[str, typer.Option()],
    classification: Annotated[str, typer.Option()],
    rel_to: Annotated[list[str], typer.Option("--rel-to", help="Repeat per nation.")],
    session: SessionFile = None,
) -> None:
    """Upload a file to your home node, which labels and encrypts it."""
    with _session(session) as me, file.open("rb") as f:
        o = me.home.protect(
            f,
            title=title,
            project_id=project,
            classification=classification,
            rel_to=[n.upper() for n in rel_to],
            filename=file.name,
        )
    typer.echo(f"{o.id} {o.banner}")


#: Exit code when a partner's answer fails verification.
EXIT_REJECTED = 5
_WHO = ("subject", "by", "actor", "person_id")
_WHAT = ("object", "document", "target", "policy_uuid")


def _summary(payload: Any) -> str:
    """Who and what an entry names, and its outcome, in one short cell."""
    who = next((str(payload[k]) for k in _WHO if isinstance(payload.get(k), str)), "")
    what = next((str(payload[k]) for k in _WHAT if isinstance(payload.get(k), str)), "")
    allowed = payload.get("allowed")
    outcome = "" if not isinstance(allowed, bool) else ("allowed" if allowed else "denied")
    return " ".join(x for x in (who, what, outcome) if x)[:200]


@remote_app.command("audit")
def audit(
    nation: Annotated[str, typer.Argument(help="The nation whose node's log to check (GBR).")],
    start: Annotated[int, typer.Option("--from", min=0, help="First log index to read.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Entries per page.")] = 50,
    pages: Annotated[int, typer.Option(min=1, max=1000, help="Most pages to read.")] = 20,
    session: SessionFile = None,
) -> None:
    """As an auditor of your nation: what NATION's log records about your nation's
    people and objects, every entry proved in a checkpoint your own nation's
    witness cosigned (tab-separated: index, time, kind, who/what/outcome)."""
    nation = nation.upper()
    shown = 0
    with _session(session) as me:
        mine = me.home.home_nation()
        at: int | None = start
        first = True
        for _ in range(pages):
            if at is None:
                break
            try:
                page = me.audit_partner(nation, start=at, limit=limit)
            except ProofRejected as exc:
                typer.echo(
                    f"REJECTED: {exc}. Nothing from the {nation} node is to be believed; "
                    "keep its answer and tell your security officer.",
                    err=True,
                )
                raise typer.Exit(EXIT_REJECTED) from None
            if first:
                first = False
                cp = page.checkpoint
                when = datetime.fromtimestamp(page.cosigned_at, UTC)
                typer.echo(
                    f"{nation} log {cp.origin}, {cp.size} entries: signed by its pinned log "
                    f"key ✓, cosigned by the {mine} witness at {when:%Y-%m-%d %H:%M:%S} UTC ✓"
                )
            for e in page.entries:
                typer.echo(
                    f"✓ {e.index}\t{e.entry.time}\t{e.entry.kind}\t{_summary(e.entry.payload)}"
                )
                shown += 1
            at = page.next_from
    more = "" if at is None else f"; more from index {at} (--from {at})"
    typer.echo(f"{shown} entries concerning {mine} verified{more}")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(remote_app, name="remote")
