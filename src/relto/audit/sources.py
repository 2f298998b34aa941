"""Where ``relto audit verify`` reads a log from: a database URL or file, or a relto
server's audit API (``http(s)://host[:port]``)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from relto.audit.errors import AuditError, InvalidProof
from relto.audit.service import MAX_PAGE, TransparencyLog
from relto.audit.verify import LogRow, LogSource
from relto.errors import NotFound
from relto.store import create_database

__all__ = ["API_PREFIX", "DatabaseSource", "HttpSource", "open_source"]

API_PREFIX = "/api/v1/audit"


class DatabaseSource:
    """Reads rows and stored nodes straight from a relto database."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log

    def rows(self) -> Iterator[LogRow]:
        return self.rows_from(0)

    def rows_from(self, start: int) -> Iterator[LogRow]:
        for index, leaf_hash, body, kind in self.log.iter_rows(start=start):
            yield LogRow(index, leaf_hash, body, kind)

    def consistency(self, first: int, second: int) -> Sequence[bytes]:
        """The proof as computed from the stored nodes (the caller checks it)."""
        try:
            return self.log.consistency_path(first, second)
        except NotFound:
            raise InvalidProof(f"the stored tree holds no tree of size {second}") from None

    def nodes(self, level: int, start: int, end: int) -> Mapping[int, bytes] | None:
        return self.log.stored_nodes(level, start, end)


class HttpSource:
    """Reads rows from a relto server's ``/api/v1/audit/entries`` (no stored nodes).

    Entry bodies are for auditors and security officers, each for the entries that
    concern their nation: ``token`` is an OIDC access token of one, sent as a
    bearer token to this server only. Entries about other nations come as their
    leaf hash alone, and are checked by it.
    """

    def __init__(
        self, base_url: str, client: httpx.Client | None = None, *, token: str | None = None
    ) -> None:
        self.base = base_url.rstrip("/")
        if not self.base.endswith(API_PREFIX):
            self.base += API_PREFIX
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.Client(timeout=30.0, headers=headers, follow_redirects=False)

    def rows(self) -> Iterator[LogRow]:
        """The rows up to the log's size when reading starts (reading entries is
        itself recorded, so the log grows while it is read)."""
        size = int(self.checkpoint().split("\n")[1])
        start = 0
        while start < size:
            resp = self.client.get(
                f"{self.base}/entries",
                params={"start": start, "end": min(size, start + MAX_PAGE)},
            )
            if resp.status_code in (401, 404) and start == 0:
                raise AuditError(
                    f"log server answered {resp.status_code} for entries: reading them needs "
                    "an auditor's or security officer's token (RELTO_AUDIT_TOKEN)"
                )
            if resp.status_code != 200:
                raise AuditError(f"log server answered {resp.status_code} for entries")
            items = resp.json().get("entries", [])
            if not items:
                return
            for item in items:
                body = item.get("body")
                yield LogRow(
                    int(item["index"]),
                    base64.b64decode(item["leaf_hash"]),
                    None if body is None else base64.b64decode(body),
                )
            start = int(items[-1]["index"]) + 1

    def nodes(self, level: int, start: int, end: int) -> Mapping[int, bytes] | None:
        return None

    def checkpoint(self) -> str:
        resp = self.client.get(f"{self.base}/checkpoint")
        if resp.status_code != 200:
            raise AuditError(f"log server answered {resp.status_code} for the checkpoint")
        return resp.text


def open_source(where: str, *, token: str | None = None) -> LogSource:
    """A database URL (``sqlite:///...``, ``postgresql://...``), a SQLite file path,
    or an ``http(s)://`` relto server (``token``: an auditor's access token)."""
    if where.startswith(("http://", "https://")):
        return HttpSource(where, token=token)
    if "://" in where:
        url = where
    else:
        path = Path(where)
        if not path.is_file():
            raise AuditError(f"no database file at {where}")
        url = f"sqlite:///{path.resolve()}"
    return DatabaseSource(TransparencyLog(create_database(url, migrate=False)))
