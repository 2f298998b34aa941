"""/metrics: the domain counted with bounded labels that name no one, and only
for the operator (a loopback peer, or a scraper holding RELTO_METRICS_TOKEN)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from relto.config import Settings
from relto.decisions import CODES
from relto.errors import ConfigError
from relto.events import MemorySink
from relto.metrics import (
    ACTIONS,
    OTHER,
    CheckpointState,
    DomainMetrics,
    NodeStateCollector,
    ScrapeAccess,
    ScrapeRefused,
)
from relto.node import Node
from relto.server import create_app
from relto.vetting import ACTIVE
from relto.ztdf import KeyAccessDenied

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)
TOKEN = "scrape-token-0123456789abcdef"
SECRET = "s3cr3t-value-that-must-never-leak-0123456789"

#: The label values a domain series may carry: fixed sets, no identifiers.
ALLOWED_LABELS = {
    "action": {*ACTIONS, OTHER},
    "outcome": {"allowed", "denied", "permit", "deny", "fail"},
    "reason": None,  # checked against the node's reason set
    "within": {"30d"},
}


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("metrics-demo")
    app = create_app(Settings(demo=True, data_dir=folder), sink=MemorySink())
    app.state.node.db.dispose()
    return folder


@pytest.fixture
def demo(tmp_path: Path, demo_template: Path) -> Iterator[tuple[Node, TestClient]]:
    """A demo node whose transparency log is its sink (appends are counted)."""
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    app = create_app(Settings(demo=True, data_dir=data))
    node: Node = app.state.node
    with TestClient(app, raise_server_exceptions=False, client=LOOPBACK) as client:
        yield node, client
    node.db.dispose()


def _app(tmp_path: Path, **settings: object) -> TestClient:
    app = create_app(
        Settings(
            data_dir=tmp_path,
            secret_key=SecretStr(SECRET),
            keystore_passphrase=SecretStr(SECRET + "-ks"),
            **settings,  # type: ignore[arg-type]
        )
    )
    return TestClient(app, raise_server_exceptions=False)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text)[name, tuple(sorted(labels.items()))]


# -- what is counted ------------------------------------------------------------------


def test_decisions_and_key_releases_are_counted_by_outcome_and_code(
    demo: tuple[Node, TestClient],
) -> None:
    node, client = demo
    at = datetime.now(UTC)
    ramirez = node.directory.principal("usa-eng-ramirez", via="session")
    sato = node.directory.principal("jpn-eng-sato", via="session")
    assert ramirez is not None and sato is not None
    _, allowed, plain = node.documents.open(ramirez, "hyp-thermal-protection", at)
    assert allowed.allowed and plain
    _, denied, nothing = node.documents.open(sato, "undersea-autonomy-icd", at)
    assert not denied.allowed and nothing is None
    # A key the KAS refuses by itself (the console check skipped).
    svc = node.documents
    doc = svc._get("hyp-thermal-protection")
    with pytest.raises(KeyAccessDenied):
        svc._decrypt(doc, svc._keys.unwrap_for("jpn-eng-sato", "JPN", "read"))

    r = client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert _value(text, "relto_decisions_total", action="read", outcome="allowed") == 1
    assert _value(text, "relto_decisions_total", action="read", outcome="denied") == 1
    for code in denied.codes:
        assert _value(text, "relto_decision_denial_reasons_total", action="read", reason=code) == 1
    assert _value(text, "relto_kas_rewraps_total", action="read", outcome="permit") == 1
    assert _value(text, "relto_kas_rewraps_total", action="read", outcome="deny") == 1
    assert _value(text, "relto_kas_rewraps_total", action="relabel", outcome="permit") == 0
    assert _value(text, "relto_audit_appends_total") >= 4  # two decisions, two rewraps
    assert _value(text, "relto_audit_append_seconds_count") >= 1
    assert _value(text, "relto_audit_checkpoint_age_seconds") == float("inf")  # none signed
    assert _value(text, "relto_audit_entries_unchecked") >= 4
    assert _value(text, "relto_clearances_expiring", within="30d") >= 1  # demo: +21 days
    assert "relto_clearances_expired_active" in text
    # the HTTP metrics are still there
    assert "relto_http_requests_total" in text


def test_metrics_name_no_document_person_or_policy(demo: tuple[Node, TestClient]) -> None:
    """Metrics are a side channel: read by operators who may not see the log's bodies."""
    node, client = demo
    at = datetime.now(UTC)
    sato = node.directory.principal("jpn-eng-sato", via="session")
    ramirez = node.directory.principal("usa-eng-ramirez", via="session")
    assert sato is not None and ramirez is not None
    doc, _, _ = node.documents.open(ramirez, "hyp-thermal-protection", at)
    node.documents.open(sato, "undersea-autonomy-icd", at)
    text = client.get("/metrics").text
    for secret in (
        "hyp-thermal-protection",
        "undersea-autonomy-icd",
        doc.title,
        doc.policy_uuid,
        "ramirez",
        "sato",
        "USA",
        "JPN",
    ):
        assert secret and secret not in text, secret
    reasons = node.metrics.reasons
    for family in text_string_to_metric_families(text):
        if family.name.startswith("relto_http_"):
            continue  # method, route template and status
        for sample in family.samples:
            for key, value in sample.labels.items():
                if key == "le":  # a histogram bucket bound
                    float(value)
                    continue
                allowed = reasons if key == "reason" else ALLOWED_LABELS[key]
                assert allowed is not None and value in allowed, (sample.name, key, value)


def test_unknown_action_and_reason_are_counted_as_other() -> None:
    m = DomainMetrics(reasons=CODES)
    m.decided("exfiltrate", False, ["NOT_RELEASABLE", "doc-1234 is secret"])
    m.rewrapped("read", "deny", ["made_up"])
    samples = _samples(_exposition(m))
    assert samples["relto_decisions_total", (("action", OTHER), ("outcome", "denied"))] == 1
    key = (("action", OTHER), ("reason", OTHER))
    assert samples["relto_decision_denial_reasons_total", key] == 1
    assert samples["relto_kas_rewrap_denial_reasons_total", (("reason", OTHER),)] == 1
    assert not any("doc-1234" in v for _, labels in samples for _, v in labels)


def test_every_reason_the_kas_gives_is_a_label_of_its_own(demo: tuple[Node, TestClient]) -> None:
    """A reason code missing from the node's set would be counted as ``other``."""
    src = Path(__file__).resolve().parents[2] / "src" / "relto"
    # relto.export_control's reasons (and the engine hook's, and the export office's
    # check) are the conditions of one transfer: they reach a KAS answer only inside
    # EXPORT_CONTROLLED's sentence, never as a code of their own
    given = {
        m
        for path in src.rglob("*.py")
        if not {"export_control", "export_office"} & set(path.parts)
        and path.name != "export_hook.py"
        for m in re.findall(r'Reason\(\s*"([A-Za-z_]+)"', path.read_text(encoding="utf-8"))
    }
    given |= set(CODES)
    assert given <= demo[0].metrics.reasons


def _exposition(m: DomainMetrics) -> str:
    return m.scrape("127.0.0.1", None).decode()


# -- scrape-time gauges ------------------------------------------------------------------


def test_checkpoint_age_follows_the_clock_and_sources_are_cached() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    calls = {"checkpoint": 0, "expiries": 0}
    clock = [now]

    def checkpoint() -> CheckpointState:
        calls["checkpoint"] += 1
        return CheckpointState(10, 7, now - timedelta(seconds=90))

    def expiries(at: datetime, within: timedelta) -> tuple[int, int]:
        calls["expiries"] += 1
        assert within == timedelta(days=30)
        return 2, 5

    m = DomainMetrics(reasons=())
    m.registry.register(
        NodeStateCollector(checkpoint=checkpoint, expiries=expiries, ttl=60, clock=lambda: clock[0])
    )
    text = _exposition(m)
    assert _value(text, "relto_audit_checkpoint_age_seconds") == 90
    assert _value(text, "relto_audit_entries_unchecked") == 3
    assert _value(text, "relto_clearances_expiring", within="30d") == 5
    assert _value(text, "relto_clearances_expired_active") == 2
    clock[0] = now + timedelta(seconds=30)
    text = _exposition(m)
    assert _value(text, "relto_audit_checkpoint_age_seconds") == 120  # cached state, live age
    assert calls == {"checkpoint": 1, "expiries": 1}


def test_a_failing_source_leaves_its_gauges_out_not_the_scrape() -> None:
    def broken() -> CheckpointState:
        raise RuntimeError("database down")

    m = DomainMetrics(reasons=())
    m.registry.register(NodeStateCollector(checkpoint=broken, expiries=lambda at, w: (0, 1)))
    text = _exposition(m)
    assert "relto_audit_checkpoint_age_seconds" not in text
    assert _value(text, "relto_clearances_expiring", within="30d") == 1


def test_clearance_expiry_query_agrees_with_the_clearance_history(
    demo: tuple[Node, TestClient],
) -> None:
    """The one SQL query counts what replaying each clearance's events says."""
    node, _ = demo
    page = node.vetting.list_clearances(limit=200)
    assert page.next_after is None  # the demo fits one page
    clearances = list(page.items)
    within = timedelta(days=30)
    now = datetime.now(UTC)
    nonzero = 0
    for days in (0, 20, 400, 1500):
        at = now + timedelta(days=days)
        expired = expiring = 0
        for c in clearances:
            until = c.valid_until_at(at)
            if c.recorded_status_at(at) not in ACTIVE or until is None:
                continue
            if until <= at:
                expired += 1
            elif until <= at + within:
                expiring += 1
        assert node.vetting.clearance_expiries(at, within) == (expired, expiring), at
        nonzero += expired + expiring
    assert nonzero > 0


# -- who may scrape ---------------------------------------------------------------------


def test_remote_scrape_without_a_token_is_refused(tmp_path: Path) -> None:
    client = _app(tmp_path)
    remote = TestClient(client.app, raise_server_exceptions=False, client=REMOTE)
    r = remote.get("/metrics")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "relto_" not in r.text
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    loopback = TestClient(client.app, raise_server_exceptions=False, client=LOOPBACK)
    assert loopback.get("/metrics").status_code == 200
    assert remote.get("/healthz").status_code == 200  # only /metrics is restricted


def test_token_lets_a_remote_scraper_in_and_is_then_required_from_everyone(
    tmp_path: Path,
) -> None:
    client = _app(tmp_path, metrics_token=SecretStr(TOKEN))
    remote = TestClient(client.app, raise_server_exceptions=False, client=REMOTE)
    ok = remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "relto_decisions_total" in ok.text
    for bad in ("", "Bearer", f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}"):
        assert remote.get("/metrics", headers={"Authorization": bad}).status_code == 401, bad
    # Behind a reverse proxy on the same host every peer is loopback: the token counts.
    loopback = TestClient(client.app, raise_server_exceptions=False, client=LOOPBACK)
    assert loopback.get("/metrics").status_code == 401


@pytest.mark.parametrize("token", ["changeme", "short-token", " padded-token-0123456789 "])
def test_weak_metrics_token_refused_at_startup(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError, match="RELTO_METRICS_TOKEN"):
        _app(tmp_path, metrics_token=SecretStr(token))


def test_metrics_token_is_masked_in_config_show() -> None:
    shown = Settings(metrics_token=SecretStr(TOKEN)).masked()
    assert TOKEN not in str(shown)


def test_scrape_access_refuses_missing_peer() -> None:
    with pytest.raises(ScrapeRefused):
        ScrapeAccess(None).check(None, None)
    ScrapeAccess(None).check("::1", None)
    with pytest.raises(ValueError):
        ScrapeAccess("")
