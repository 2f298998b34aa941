"""What ``/metrics`` says about the node's domain, and who may scrape it.

:class:`DomainMetrics` is built once by the composition root
(:func:`relto.node.build_node`) and handed to the services that count: the
sharing capability (object decisions), the key access service (rewraps) and the
transparency log (appends). :class:`NodeStateCollector` reads what is better
asked of the database at scrape time (checkpoint age, clearance expiries).
:class:`ScrapeAccess` says who may scrape.

**Labels are bounded and carry no identifiers.** A metric is a side channel: it
is scraped by an operator who is not entitled to the audit log's bodies, kept
by a monitoring system with its own retention and readers, and its label values
are visible to anyone who can see a dashboard. So labels hold only values from
fixed sets known when the node starts -- an action (``read``, ``download``,
``relabel``), an outcome, a reason *code* -- never a document id, title,
person, nation, policy UUID or key id (those would also grow the series without
bound, one per object). A value outside the set is counted as ``other``.

Every counter is per process: under several uvicorn workers each worker counts
its own requests, and a scrape reaches one worker. Sum over the ``instance`` of
every worker, or run one worker per scrape target (see docs/observability.md).
The scrape-time gauges come from the database and agree across workers.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from relto.config import is_loopback
from relto.errors import AccessDenied

__all__ = [
    "ACTIONS",
    "OTHER",
    "CheckpointState",
    "ClearanceExpiries",
    "DomainMetrics",
    "NodeStateCollector",
    "ScrapeAccess",
    "ScrapeRefused",
]

log = structlog.stdlib.get_logger("relto.metrics")

#: The object actions counted by name; any other action is counted as ``other``.
ACTIONS: tuple[str, ...] = ("read", "download", "relabel")
#: The label value for anything outside a metric's fixed set.
OTHER = "other"
_DECISION_OUTCOMES = ("allowed", "denied")
#: A rewrap's outcome per policy: keys released, refused by the decision, or
#: nothing to decide (no key access object unwrapped and verified).
_REWRAP_OUTCOMES = ("permit", "deny", "fail")
#: Commit latency buckets (seconds): group commits take ~1-50 ms on a disk.
_APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ScrapeRefused(AccessDenied):
    """A scrape from a peer that is neither loopback nor holds the metrics token."""

    code = "unauthenticated"


class ScrapeAccess:
    """Who may scrape ``/metrics``.

    Without a token (``RELTO_METRICS_TOKEN`` unset) only loopback peers may: the
    operator on the node's own host (``make run``). With a token every peer must
    send ``Authorization: Bearer <token>`` -- loopback ones too, since a reverse
    proxy on the same host makes every request look like it comes from loopback.
    The token is compared in constant time.
    """

    def __init__(self, token: str | None) -> None:
        if token is not None and not token:
            raise ValueError("the metrics token must not be empty (use None for no token)")
        self._token = None if token is None else token.encode("utf-8")

    @property
    def needs_token(self) -> bool:
        return self._token is not None

    def check(self, peer: str | None, authorization: str | None) -> None:
        """Return if ``peer`` (the client's address) may scrape; raise
        :class:`ScrapeRefused` (the reason in its message, for the log) if not."""
        if self._token is None:
            if peer is None or not is_loopback(peer):
                raise ScrapeRefused("not a loopback peer and no metrics token is configured")
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ScrapeRefused("no bearer token")
        if not hmac.compare_digest(given.strip().encode("utf-8"), self._token):
            raise ScrapeRefused("wrong metrics token")


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


class DomainMetrics:
    """Counters and histograms of the node's domain, on their own registry.

    ``reasons``: every reason code that may appear as a label (the decision
    engine's codes and the key access service's own); any other code is counted
    as ``other``. Every series exists from the start at zero, so rates work from
    the first scrape. The methods are cheap: each is a dictionary look-up of a
    label child bound once here and an increment.
    """

    def __init__(
        self,
        *,
        reasons: Iterable[str],
        access: ScrapeAccess | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.access = access or ScrapeAccess(None)
        self._reasons = frozenset(reasons) | {OTHER}
        self._actions = frozenset(ACTIONS)
        actions = (*ACTIONS, OTHER)
        decisions = Counter(
            "relto_decisions_total",
            "Object decisions (read, download, relabel) recorded, by action and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        denials = Counter(
            "relto_decision_denial_reasons_total",
            "Reasons of denied object decisions, by action and reason code "
            "(one denial may count several reasons).",
            ["action", "reason"],
            registry=self.registry,
        )
        rewraps = Counter(
            "relto_kas_rewraps_total",
            "Key access decisions recorded, one per policy of a rewrap request, by "
            "action and outcome (permit: keys released; deny: refused; fail: no key "
            "access object verified).",
            ["action", "outcome"],
            registry=self.registry,
        )
        rewrap_denials = Counter(
            "relto_kas_rewrap_denial_reasons_total",
            "Reasons of refused key releases, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        appends = Counter(
            "relto_audit_appends_total",
            "Entries appended to the transparency log and committed.",
            registry=self.registry,
        )
        self._append_failures = Counter(
            "relto_audit_append_failures_total",
            "Transparency log appends that failed (the entries were not written).",
            registry=self.registry,
        )
        self._append_seconds = Histogram(
            "relto_audit_append_seconds",
            "Time to write and commit one batch of transparency log entries "
            "(one transaction; waiting for the writer lock not included).",
            buckets=_APPEND_BUCKETS,
            registry=self.registry,
        )
        self._appends = appends
        self._decisions = {
            (a, o): decisions.labels(a, o) for a in actions for o in _DECISION_OUTCOMES
        }
        self._denials = {(a, r): denials.labels(a, r) for a in actions for r in self._reasons}
        self._rewraps = {(a, o): rewraps.labels(a, o) for a in actions for o in _REWRAP_OUTCOMES}
        self._rewrap_denials = {r: rewrap_denials.labels(r) for r in self._reasons}

    @property
    def reasons(self) -> frozenset[str]:
        """Every reason code that is a label value of its own (``other`` included)."""
        return self._reasons

    # -- counting ---------------------------------------------------------------

    def decided(self, action: str, allowed: bool, codes: Sequence[str]) -> None:
        """One recorded object decision and, when denied, its reason codes."""
        action = _bounded(action, self._actions)
        self._decisions[action, "allowed" if allowed else "denied"].inc()
        if not allowed:
            for code in codes:
                self._denials[action, _bounded(code, self._reasons)].inc()

    def rewrapped(self, action: str, outcome: str, codes: Sequence[str] = ()) -> None:
        """One policy of a recorded rewrap: ``permit``, ``deny`` (with the
        decision's reason codes) or ``fail``."""
        self._rewraps[_bounded(action, self._actions), outcome].inc()
        if outcome == "deny":
            for code in codes:
                self._rewrap_denials[_bounded(code, self._reasons)].inc()

    def appended(self, entries: int, seconds: float) -> None:
        """``entries`` committed to the transparency log in one transaction."""
        self._appends.inc(entries)
        self._append_seconds.observe(seconds)

    def append_failed(self, entries: int) -> None:
        self._append_failures.inc(entries)

    # -- scraping ---------------------------------------------------------------

    def scrape(
        self, peer: str | None, authorization: str | None, *more: CollectorRegistry
    ) -> bytes:
        """The exposition of this registry and ``more`` (the HTTP metrics), if
        ``peer`` may scrape (:class:`ScrapeAccess`); else :class:`ScrapeRefused`."""
        self.access.check(peer, authorization)
        return b"".join(generate_latest(r) for r in (*more, self.registry))


@dataclass(frozen=True)
class CheckpointState:
    """The log's size and its latest signed checkpoint (``None``: none yet)."""

    log_size: int
    checkpoint_size: int | None
    checkpoint_at: datetime | None


@dataclass(frozen=True)
class ClearanceExpiries:
    """Granted or interim clearances whose validity ends within the horizon
    (``expiring``), and those past their validity date that nobody renewed or
    closed (``expired_active``: the record still says granted or interim)."""

    expiring: int
    expired_active: int


class NodeStateCollector(Collector):
    """Gauges read from the database at scrape time, cached ``ttl`` seconds so a
    scrape storm costs one query per source per ``ttl``. A source that fails is
    left out of that scrape (and logged); the scrape itself still answers.

    ``checkpoint``: the log's :class:`CheckpointState`; ``expiries(at, horizon)``:
    ``(expired, expiring)`` clearance counts as of ``at``."""

    def __init__(
        self,
        *,
        checkpoint: Callable[[], CheckpointState],
        expiries: Callable[[datetime, timedelta], tuple[int, int]],
        horizon: timedelta = timedelta(days=30),
        ttl: float = 15.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._checkpoint = checkpoint
        self._expiries = expiries
        self._horizon = horizon
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, CheckpointState | None, ClearanceExpiries | None] | None = None

    def _read(self, now: datetime) -> tuple[CheckpointState | None, ClearanceExpiries | None]:
        with self._lock:
            mono = time.monotonic()
            if self._cached is not None and mono - self._cached[0] < self._ttl:
                return self._cached[1], self._cached[2]
            state: CheckpointState | None = None
            expiries: ClearanceExpiries | None = None
            try:
                state = self._checkpoint()
            except Exception as exc:  # a scrape must answer whatever the database does
                log.warning("metrics_source_failed", source="checkpoint", error=type(exc).__name__)
            try:
                expired, expiring = self._expiries(now, self._horizon)
                expiries = ClearanceExpiries(expiring=expiring, expired_active=expired)
            except Exception as exc:
                log.warning("metrics_source_failed", source="clearances", error=type(exc).__name__)
            self._cached = (mono, state, expiries)
            return state, expiries

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        state, expiries = self._read(now)
        if state is not None:
            age = (
                float("inf")
                if state.checkpoint_at is None
                else max(0.0, (now - state.checkpoint_at).total_seconds())
            )
            yield GaugeMetricFamily(
                "relto_audit_checkpoint_age_seconds",
                "Seconds since the latest signed checkpoint of the transparency log "
                "(+Inf: none signed yet).",
                value=age,
            )
            yield GaugeMetricFamily(
                "relto_audit_entries_unchecked",
                "Log entries not yet covered by a signed checkpoint.",
                value=state.log_size - (state.checkpoint_size or 0),
            )
        if expiries is not None:
            days = f"{self._horizon.days}d"
            expiring = GaugeMetricFamily(
                "relto_clearances_expiring",
                "Granted or interim clearances whose validity ends within the horizon.",
                labels=["within"],
            )
            expiring.add_metric([days], expiries.expiring)
            yield expiring
            yield GaugeMetricFamily(
                "relto_clearances_expired_active",
                "Clearances past their validity date whose record still says granted or "
                "interim (expired, not renewed or closed).",
                value=expiries.expired_active,
            )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """No description: registering must not query the database."""
        return iter(())
