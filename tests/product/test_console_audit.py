"""The console's audit page: bounded pages with a link to older entries, filters
(event, person, document, time), people and documents by name as the reader may
see them, and incremental verification of the log."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.config import Settings
from relto.node import Node
from relto.server import create_app

Login = Callable[[TestClient, str], str]
T = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def logged_app(tmp_path: Path, demo_template: Path) -> Iterator[TestClient]:
    """A demo node whose sink is its own transparency log (as in production)."""
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    app = create_app(Settings(demo=True, data_dir=data))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
    app.state.node.db.dispose()


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _decisions(client: TestClient, n: int, *, subject: str, obj: str, at: datetime = T) -> None:
    _node(client).log.append_many(
        [("decision", {"subject": subject, "object": obj, "action": "read", "allowed": True}, at)
         for _ in range(n)]
    )  # fmt: skip


def _indexes(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-index="(\d+)"', page)]


def test_audit_page_is_bounded_and_pages_back(login: Login, logged_app: TestClient) -> None:
    _decisions(logged_app, 250, subject="gbr-eng-harper", obj="hyp-thermal-protection")
    login(logged_app, "gbr-aud-patel")
    first = logged_app.get("/console/audit", params={"size": 20})
    assert first.status_code == 200
    rows = _indexes(first.text)
    assert len(rows) == 20 and rows == sorted(rows, reverse=True)
    older = re.search(r'href="([^"]+)" id="older"', first.text)
    assert older
    second = logged_app.get(older.group(1).replace("&amp;", "&"))
    more = _indexes(second.text)
    assert len(more) == 20 and max(more) < min(rows)
    assert len(_indexes(logged_app.get("/console/audit", params={"size": 100_000}).text)) == 100


def test_audit_filters_by_event_person_document_and_time(
    login: Login, logged_app: TestClient
) -> None:
    _decisions(logged_app, 5, subject="gbr-eng-harper", obj="hyp-thermal-protection")
    _decisions(logged_app, 3, subject="gbr-eng-lowe", obj="ai-sensor-fusion",
               at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # fmt: skip
    login(logged_app, "gbr-aud-patel")

    def kinds(**params: str) -> list[str]:
        page = logged_app.get("/console/audit", params=params).text
        return re.findall(r'<tr data-kind="([^"]+)"', page)

    assert set(kinds(kind="decision")) == {"decision"}
    assert set(kinds(kind="authz.")) == {"authz.decision"}
    lowe = logged_app.get("/console/audit", params={"person": "gbr-eng-lowe"}).text
    assert len(_indexes(lowe)) == 3 and "gbr-eng-harper" not in lowe
    doc = logged_app.get("/console/audit", params={"document": "hyp-thermal-protection"}).text
    assert len(_indexes(doc)) == 5
    window = {"kind": "decision", "since": "2026-12-01", "until": "2026-12-02"}
    assert len(kinds(**window)) == 3
    assert kinds(kind="decision", since="2099-01-01") == []
    bad = logged_app.get("/console/audit", params={"person": "<script>"})
    assert bad.status_code == 200 and "person is not a valid id" in bad.text
    assert "<script>" not in bad.text.split('id="audit-entries"')[0].split("</form>")[-1]


def test_audit_names_people_and_documents(login: Login, logged_app: TestClient) -> None:
    _decisions(logged_app, 1, subject="gbr-eng-harper", obj="hyp-thermal-protection")
    login(logged_app, "gbr-aud-patel")
    page = logged_app.get("/console/audit", params={"kind": "decision"}).text
    assert "Olivia Harper (gbr-eng-harper)" in page
    assert "Thermal protection test results (flight 7) (hyp-thermal-protection)" in page


def test_title_of_document_reader_may_not_know_withheld(
    login: Login, logged_app: TestClient
) -> None:
    """An entry about a GBR engineer names a USA document not releasable to GBR
    (and even carries its title): the GBR auditor reads the entry, never the title
    or marking, and sees the USA engineer by id only."""
    node = _node(logged_app)
    ramirez = node.directory.principal("usa-eng-ramirez", via="node")
    assert ramirez is not None
    usa_only = node.documents.upload(
        ramirez, title="Scramjet inlet geometry", project_id="hypersonic",
        classification="SECRET", rel_to=[], filename="s.txt", media_type="text/plain",
        data=b"usa only", at=datetime.now(UTC),
    )  # fmt: skip
    node.log.append(
        "decision",
        {"subject": "gbr-eng-harper", "object": usa_only.id, "object_title": usa_only.title,
         "banner": usa_only.banner, "action": "read", "allowed": False,
         "by": "usa-eng-ramirez"},
    )  # fmt: skip
    login(logged_app, "gbr-aud-patel")
    page = logged_app.get("/console/audit", params={"document": usa_only.id}).text
    assert len(_indexes(page)) == 1  # the entry concerns GBR: its engineer
    assert f"{usa_only.id} (title withheld)" in page
    assert "Scramjet" not in page and "NOFORN" not in page and "REL TO USA" not in page
    assert "Carlos Ramirez" not in page and "usa-eng-ramirez" in page


def test_second_view_verifies_only_new_entries(login: Login, logged_app: TestClient) -> None:
    _decisions(logged_app, 300, subject="gbr-eng-harper", obj="hyp-thermal-protection")
    login(logged_app, "gbr-aud-patel")
    first = logged_app.get("/console/audit").text
    assert "ok: the stored log matches the checkpoint" in first
    second = logged_app.get("/console/audit").text
    assert "verified</span>" in second and "extends the tree head of size" in second
    assert 'id="full-verification"' in second
    full = logged_app.get("/console/audit", params={"verify": "full"}).text
    assert "ok: the stored log matches the checkpoint" in full


def test_tampered_new_entry_fails_the_next_view(login: Login, logged_app: TestClient) -> None:
    from sqlalchemy import text

    login(logged_app, "gbr-aud-patel")
    assert "verified</span>" in logged_app.get("/console/audit").text
    _decisions(logged_app, 5, subject="gbr-eng-harper", obj="hyp-thermal-protection")
    log = _node(logged_app).log
    index = log.size() - 2
    with log.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entry SET body = :b WHERE idx = :i"), {"b": b"{}", "i": index}
        )
    page = logged_app.get("/console/audit").text
    assert "verification failed" in page and f"first mismatch at index {index}" in page
