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

__all__ = ["register"]

_PROGRESS_THRESHOLD = 32 * 1024 * 1024
_DEFAULT_KAS_URL = "http://localhost:8080/kas"
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
            typer.Option("--kas-url", help="KAS URL (online: its public key is fetched from it)."),
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
        from relto.ztdf.online import fetch_kas_public_key

        try:  # the same checks as the server's setting
            namespace = normalise_namespace(namespace)
        except ValueError:
            raise typer.BadParameter("--namespace must be an http(s) URL") from None
        at = datetime.now(UTC)
        projects = list(project or [])
        label_xml, banner = _label_for(label, originator.strip().upper(), at)
        if kas_public_key is not None:
            pem = kas_public_key.read_text(encoding="ascii", errors="replace")
            url = kas_url or _DEFAULT_KAS_URL
            key_id = kid
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
        from relto.ztdf import open_container, private_key_unwrapper
        from relto.ztdf.online import online_unwrapper

        if private_key:
            unwrap = private_key_unwrapper(*(p.read_bytes() for p in private_key))
        elif kas_url is None and not os.environ.get("RELTO_KAS_URL"):
            raise typer.BadParameter("give --private-key (offline) or --kas-url (online)")
        else:
            unwrap = online_unwrapper(kas_url=kas_url, token=token)
        size = file.stat().st_size
        with _progress("opening", size) as progress:
            result = open_container(file, output, unwrap=unwrap, overwrite=force, progress=progress)
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
        """Print the manifest summary and label as JSON (nothing decrypted or verified)."""
        from relto.ztdf import inspect

        typer.echo(json.dumps(inspect(file), indent=2))
