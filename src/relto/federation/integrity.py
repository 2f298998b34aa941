"""A node that finds its own stored log altered says so to its partners, signed.

Witnesses see only checkpoints: a row of the log edited by hand in the database,
with the tree's stored hashes left as they were, changes no checkpoint, so no
witness can see it. The node's own software can: it re-derives its stored log
(:mod:`relto.audit.selfcheck`) and, on a mismatch, sends every pinned partner an
**integrity report** -- a compact JWS (``typ`` :data:`REPORT_TYP`) signed by its
node key (the key partners pinned by fingerprint) with claims ``nation``,
``origin`` (its log), ``index`` and ``kind`` of the first mismatch, ``detail``,
``size`` (the log's size then) and ``at``.

A partner takes a report only when it verifies against the node key it pinned for
that nation: nobody else can accuse a node of tampering with its own log. A
replayed report says again what the node said once (kept once).

This cannot stop an operator who also replaces the software; against that, the
witnesses (forks and rollbacks of signed checkpoints) and the partner auditors
(entries with inclusion proofs) remain the checks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog

from relto.audit.witnessing import ALARM_KIND, Alarm, AlarmStore
from relto.events import AuditSink
from relto.federation._keys import PublicJwk, SigningKey, sign_compact, split_compact
from relto.federation._keys import verify_compact as _verify_compact
from relto.federation.errors import FederationError
from relto.federation.replication import Post, http_post

__all__ = [
    "REPORT_PATH",
    "REPORT_TYP",
    "IntegrityReport",
    "InvalidReport",
    "send_report",
    "sign_report",
    "take_report",
    "verify_report",
]

log = structlog.stdlib.get_logger("relto.federation")

#: Where a node takes its partners' integrity reports.
REPORT_PATH = "/api/v1/audit/integrity/report"
#: The reason an alarm from a report carries (beside ``fork`` and ``rollback``).
ALTERED = "altered"

REPORT_TYP = "relto-log-integrity+jwt"
_HEADER = frozenset({"typ", "alg", "kid"})
_CLAIMS = frozenset({"nation", "origin", "index", "kind", "detail", "size", "at"})
_NATION = re.compile(r"^[A-Z]{3}$")
_KINDS = frozenset({"edited", "deleted", "inserted", "reordered", "rewritten", "node-altered"})
#: The largest report accepted (bytes of the compact JWS).
MAX_REPORT = 4096


class InvalidReport(FederationError):
    """An integrity report that is malformed or not signed by the pinned node key."""


@dataclass(frozen=True)
class IntegrityReport:
    """What a node found wrong with its own stored log."""

    nation: str
    origin: str
    index: int
    kind: str
    detail: str
    size: int
    at: datetime

    def claims(self) -> dict[str, object]:
        return {
            "nation": self.nation,
            "origin": self.origin,
            "index": self.index,
            "kind": self.kind,
            "detail": self.detail[:500],
            "size": self.size,
            "at": self.at.astimezone(UTC).isoformat(),
        }


def sign_report(report: IntegrityReport, key: SigningKey) -> str:
    """The node's report, signed with its node key."""
    return sign_compact(key, {"typ": REPORT_TYP, "kid": key.fingerprint}, report.claims())


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise InvalidReport(f"{what} is not a non-negative integer")
    return value


def _str(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidReport(f"{what} must be 1 to {limit} characters")
    return value


def verify_report(token: object, keys: Mapping[str, PublicJwk]) -> IntegrityReport:
    """The report in ``token``, signed by the node key ``keys`` holds for the nation
    it names; :class:`InvalidReport` otherwise (the reason in the message)."""
    if not isinstance(token, str) or len(token) > MAX_REPORT:
        raise InvalidReport(f"a report is a compact JWS of at most {MAX_REPORT} bytes")
    try:
        parts = split_compact(token, typ=REPORT_TYP, header_members=_HEADER)
    except ValueError as exc:
        raise InvalidReport(f"not an integrity report: {exc}") from None
    c = parts.unverified_claims
    if set(c) != _CLAIMS:
        raise InvalidReport(f"a report has exactly the claims {sorted(_CLAIMS)}")
    nation = c["nation"]
    if not isinstance(nation, str) or not _NATION.match(nation):
        raise InvalidReport("nation is not an ISO 3166 alpha-3 code")
    key = keys.get(nation)
    if key is None:
        raise InvalidReport(f"no node of {nation} is pinned here")
    if not _verify_compact(parts, key):
        raise InvalidReport(f"the report is not signed by the pinned node key of {nation}")
    if c["kind"] not in _KINDS:
        raise InvalidReport("kind is not a kind of mismatch")
    try:
        at = datetime.fromisoformat(_str(c["at"], "at", 40))
    except ValueError:
        raise InvalidReport("at is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise InvalidReport("at has no time zone")
    return IntegrityReport(
        nation=nation,
        origin=_str(c["origin"], "origin", 200),
        index=_int(c["index"], "index"),
        kind=str(c["kind"]),
        detail=_str(c["detail"], "detail", 500),
        size=_int(c["size"], "size"),
        at=at.astimezone(UTC),
    )


def take_report(
    token: object,
    keys: Mapping[str, PublicJwk],
    *,
    alarms: AlarmStore,
    sink: AuditSink,
    now: datetime,
) -> tuple[IntegrityReport, bool]:
    """Verify a partner's report and keep it as a witnessing alarm (reason
    ``altered``), recorded as ``audit.witness.alarm`` the first time; the report
    and whether it was new. :class:`InvalidReport` changes nothing."""
    report = verify_report(token, keys)
    mark = hashlib.sha256(f"{report.origin}\n{report.index}\n{report.kind}".encode()).digest()
    alarm = Alarm(
        kind=ALARM_KIND,
        nation=report.nation,
        origin=report.origin,
        reason=ALTERED,
        witnessed_size=report.index,
        size=report.index,  # one alarm per mismatch, however much the log grew since
        root=mark,
        detail=(
            f"the {report.nation} node reports, signed with its node key, that its own "
            f"stored log ({report.size} entries) no longer matches at index {report.index} "
            f"({report.kind}): {report.detail}"
        )[:600],
        first_seen=now,
        last_seen=now,
    )
    new = alarms.raise_alarm(alarm)
    if new:
        sink.record(ALARM_KIND, {**alarm.payload(), "reported_at": report.at.isoformat()})
    return report, new


def send_report(
    report: IntegrityReport,
    key: SigningKey,
    partners: Mapping[str, str],
    *,
    post: Post = http_post,
) -> dict[str, int | None]:
    """Send the signed report to every partner (nation -> base URL); each one's
    HTTP status, ``None`` when it could not be reached (asked again next round)."""
    token = sign_report(report, key)
    answers: dict[str, int | None] = {}
    for nation, base_url in sorted(partners.items()):
        try:
            answers[nation], _ = post(base_url.rstrip("/") + REPORT_PATH, {"report": token})
        except httpx.HTTPError:
            answers[nation] = None
            log.info("integrity_report_unreachable", nation=nation)
    return answers
