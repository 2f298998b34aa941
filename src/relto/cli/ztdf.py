"""``relto protect``, ``relto open``, ``relto inspect``: ZTDF containers from the shell.

Thin edge: parse options, call one recipe of :mod:`relto.ztdf`, render. Every
failure exits non-zero and leaves no output file (the recipes write atomically).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from relto.config import PLACEHOLDER_NAMESPACE, normalise_namespace

if TYPE_CHECKING:
    from relto.labels import Banner
    from relto.ztdf import KeyAccessDenied

__all__ = ["register"]

_PROGRESS_THRESHOLD = 32 * 1024 * 1024
_err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for large files on a terminal; else nothing."""
    if total < _PROGRESS_THRESHOLD or not _err.is_terminal:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _label_for(marking: str, nation: str, at: datetime) -> tuple[bytes, Banner]:
    """STANAG 4774 label XML (in ``nation``'s scheme) for a banner marking, and the banner."""
    from relto.labels import banner_to_label, builtin_policy, parse_banner, write_label

    banner = parse_banner(marking, nation)
    return write_label(banner_to_label(banner, builtin_policy(nation)), at), banner


def _kas_url_for_protect(kas_url: str | None) -> str | None:
    """``--kas-url``, else ``RELTO_KAS_URL`` when it names exactly one KAS."""
    if kas_url is None:
        configured = [u.strip() for u in os.environ.get("RELTO_KAS_URL", "").split(",")]
        configured = [u for u in configured if u]
        if len(configured) > 1:
            raise typer.BadParameter(
                "RELTO_KAS_URL names several KAS URLs; give the one to write with --kas-url"
            )
        kas_url = configured[0] if configured else None
    if kas_url is not None and not kas_url.startswith(("https://", "http://")):
        raise typer.BadParameter("--kas-url must be an http(s) URL")
    return kas_url


def _unverified_marking(label_xml: str | None) -> tuple[str | None, str | None]:
    """(banner, None) for a label in a built-in scheme, else (None, why not)."""
    if label_xml is None:
        return None, None
    from relto.errors import ReltoError
    from relto.labels import builtin_registry, label_to_banner, read_label

    try:
        label = read_label(label_xml.encode("utf-8"), lenient=True)
        registry = builtin_registry()
        spif = registry.get(label.policy_id or "") or next(
            (s for s in registry.values() if s.name.casefold() == label.policy.casefold()), None
        )
        if spif is None:
            return None, f"the label's policy {label.policy[:80]!r} is not a built-in scheme"
        return label_to_banner(label, spif).render(), None
    except (ReltoError, ValueError) as exc:
        return None, f"the label does not read as a marking: {str(exc)[:200]}"


_FAILURE_TEXT = {
    "unauthenticated": (
        "not authenticated by the KAS ({detail}); give an access token (--token or "
        "RELTO_ACCESS_TOKEN) from an identity provider this KAS trusts"
    ),
    "denied": "refused by the KAS's policy ({detail})",
    "wrong_key": "wrong key: {detail}",
    "kas_failed": "the KAS did not release the key: {detail}",
    "unreachable": "KAS unreachable: {detail}",
    "kas_not_allowed": (
        "not asked: the container names this KAS, which you have not allowed "
        "(give it with --kas-url or RELTO_KAS_URL to send it your token)"
    ),
    "error": "failed: {detail}",
}


def _explain_denial(exc: KeyAccessDenied) -> None:
    """Say, per key access entry tried, why the container key was not recovered."""
    _err.print("relto: error: could not recover the container key", markup=False)
    for f in exc.failures:
        text = _FAILURE_TEXT.get(str(f.kind), "failed: {detail}").format(detail=f.detail)
        _err.print(f"  {f.kas_url}: {text}", markup=False)
    if not exc.failures:
        _err.print(f"  {exc.detail}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``protect``, ``open`` and ``inspect`` to the ``relto`` command."""

    @app.command("protect")
    def protect_cmd(
        file: Annotated[
            Path,
            typer.Argument(exists=True, dir_okay=False, readable=True, help="File to protect."),
        ],
        label: Annotated[
            str,
            typer.Option("--label", "-l", help='Banner marking, e.g. "SECRET//REL TO USA, GBR".'),
        ],
        output: Annotated[Path, typer.Option("--output", "-o", help="Container to write (.tdf).")],
        project: Annotated[
            list[str] | None, typer.Option("--project", "-p", help="Project (repeatable).")
        ] = None,
        kas_url: Annotated[
            str | None,
            typer.Option(
                "--kas-url",
                help="KAS URL written into the container (online: its public key is fetched"
                " from it). Default: RELTO_KAS_URL when it names one KAS.",
            ),
        ] = None,
        kas_public_key: Annotated[
            Path | None,
            typer.Option(
                "--kas-public-key", exists=True, dir_okay=False, help="Offline: KAS public key PEM."
            ),
        ] = None,
        kid: Annotated[str, typer.Option("--kid", help="Key id of the KAS key.")] = "",
        originator: Annotated[
            str,
            typer.Option(
                "--originator",
                envvar="RELTO_NATION",
                help="Originating nation (its scheme labels it).",
            ),
        ] = "GBR",
        dissem: Annotated[
            list[str] | None, typer.Option("--dissem", help="Entity the policy names (repeatable).")
        ] = None,
        segment_size: Annotated[
            int, typer.Option("--segment-size", help="Segment size in bytes.")
        ] = 2 * 1024 * 1024,
        mime_type: Annotated[str, typer.Option("--mime-type")] = "application/octet-stream",
        integrity_encoding: Annotated[
            str,
            typer.Option(
                "--integrity-encoding",
                help="raw: schema 4.3.0, what current OpenTDF SDKs write. hex: the legacy"
                " form (no schemaVersion, hex before base64) for readers that know only it.",
            ),
        ] = "raw",
        force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
        namespace: Annotated[
            str,
            typer.Option(
                "--namespace",
                envvar="RELTO_ATTRIBUTE_NAMESPACE",
                help="Namespace of the policy attribute FQNs.",
            ),
        ] = PLACEHOLDER_NAMESPACE,
    ) -> None:
        """Encrypt FILE into an OpenTDF-compatible ZTDF container labelled with MARKING."""
        from relto.ztdf import KasTarget, protect
        from relto.ztdf.attributes import marking_attributes
        from relto.ztdf.container import INTEGRITY_ENCODINGS
        from relto.ztdf.online import fetch_kas_public_key

        try:  # the same checks as the server's setting
            namespace = normalise_namespace(namespace)
        except ValueError:
            raise typer.BadParameter("--namespace must be an http(s) URL") from None
        at = datetime.now(UTC)
        projects = list(project or [])
        label_xml, banner = _label_for(label, originator.strip().upper(), at)
        if integrity_encoding not in INTEGRITY_ENCODINGS:
            raise typer.BadParameter(
                f"--integrity-encoding must be one of {', '.join(INTEGRITY_ENCODINGS)}"
            )
        kas_url = _kas_url_for_protect(kas_url)
        if kas_public_key is not None:
            if kas_url is None:
                raise typer.BadParameter(
                    "--kas-public-key needs --kas-url (or RELTO_KAS_URL): the container must"
                    " name the KAS that holds the private key"
                )
            pem = kas_public_key.read_text(encoding="ascii", errors="replace")
            url, key_id = kas_url, kid
        elif kas_url is not None:
            pem, served_kid = fetch_kas_public_key(kas_url, kid=kid)
            url, key_id = kas_url, kid or served_kid
        else:
            raise typer.BadParameter("give --kas-public-key (offline) or --kas-url (online)")
        size = file.stat().st_size
        with _progress("protecting", size) as progress:
            result = protect(
                file,
                output,
                kas=[KasTarget(url=url, public_key_pem=pem, kid=key_id)],
                at=at,
                attributes=marking_attributes(
                    banner.classification, banner.rel_to, projects, namespace
                ),
                dissem=list(dissem or []),
                label_xml=label_xml,
                segment_size=segment_size,
                mime_type=mime_type,
                overwrite=force,
                progress=progress,
                integrity_encoding=integrity_encoding,
            )
        _err.print(
            f"protected {file.name} -> {output} ({result.plaintext_size} bytes, {banner.render()})",
            markup=False,
        )

    @app.command("open")
    def open_cmd(
        file: Annotated[
            Path,
            typer.Argument(exists=True, dir_okay=False, readable=True, help="Container (.tdf)."),
        ],
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Where to write the plaintext.")
        ],
        private_key: Annotated[
            list[Path] | None,
            typer.Option(
                "--private-key", exists=True, dir_okay=False, help="Offline: KAS private key PEM."
            ),
        ] = None,
        kas_url: Annotated[
            str | None, typer.Option("--kas-url", help="Online: open through this KAS.")
        ] = None,
        token: Annotated[
            str | None,
            typer.Option("--token", envvar="RELTO_ACCESS_TOKEN", help="Online: OIDC access token."),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
    ) -> None:
        """Verify and decrypt a ZTDF container (offline with --private-key, or online)."""
        from relto.ztdf import KeyAccessDenied, open_container, private_key_unwrapper
        from relto.ztdf.online import online_unwrapper

        if private_key:
            unwrap = private_key_unwrapper(*(p.read_bytes() for p in private_key))
        elif kas_url is None and not os.environ.get("RELTO_KAS_URL"):
            raise typer.BadParameter("give --private-key (offline) or --kas-url (online)")
        else:
            unwrap = online_unwrapper(kas_url=kas_url, token=token)
        size = file.stat().st_size
        try:
            with _progress("opening", size) as progress:
                result = open_container(
                    file, output, unwrap=unwrap, overwrite=force, progress=progress
                )
        except KeyAccessDenied as exc:
            _explain_denial(exc)
            raise typer.Exit(1) from None
        _err.print(
            f"opened {file.name} -> {output} ({result.plaintext_size} bytes, verified)",
            markup=False,
        )

    @app.command("inspect")
    def inspect_cmd(
        file: Annotated[
            Path,
            typer.Argument(exists=True, dir_okay=False, readable=True, help="Container (.tdf)."),
        ],
    ) -> None:
        """Print the manifest summary, marking and label as JSON (nothing decrypted or
        verified)."""
        from relto.ztdf import inspect

        info = inspect(file)
        marking, why_not = _unverified_marking(info.get("unverified_label_xml"))
        info["unverified_marking"] = marking
        if why_not is not None:
            info["unverified_marking_error"] = why_not
        if marking is not None:
            _err.print(f"marking (unverified): {marking}", markup=False)
        typer.echo(json.dumps(info, indent=2))
