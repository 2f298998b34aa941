"""Documents on a node: the KAS enforces the decision by itself, a tampered
container never decrypts, and policies this node did not protect get no key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.documents import ActionDenied, DocumentService, ProductDecider
from relto.errors import InvalidInput, NotFound, ReltoError
from relto.events import MemorySink
from relto.kas.decider import RewrapFacts
from relto.store.documents import DocumentRow
from relto.ztdf import KeyAccessDenied

from .conftest import node_of, principal


def _svc(client: TestClient) -> DocumentService:
    return node_of(client).documents


def _blob_key(client: TestClient, doc_id: str) -> str:
    with node_of(client).db.session() as s:
        row = s.get(DocumentRow, doc_id)
        assert row is not None
        return row.blob_key


def test_kas_withholds_key_even_if_the_console_check_is_skipped(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    keys = svc._keys
    doc = svc._get("hyp-thermal-protection")
    with pytest.raises(KeyAccessDenied):
        svc._decrypt(doc, keys.unwrap_for("jpn-eng-sato", "JPN", "read"))
    allowed = keys.unwrap_for("usa-eng-ramirez", "USA", "read")
    assert b"ablation" in svc._decrypt(doc, allowed).lower()


def test_key_for_a_person_vouched_by_another_nation_is_withheld(demo_app: TestClient) -> None:
    """An in-process caller claiming a USA engineer under GBR's vouching gets nothing."""
    svc = _svc(demo_app)
    doc = svc._get("hyp-thermal-protection")
    with pytest.raises(KeyAccessDenied):
        svc._decrypt(doc, svc._keys.unwrap_for("usa-eng-ramirez", "GBR", "read"))


def test_tampered_container_never_decrypts(demo_app: TestClient) -> None:
    node = node_of(demo_app)
    key = _blob_key(demo_app, "hyp-thermal-protection")
    with node.blobs.open(key) as f:
        data = bytearray(f.read())
    data[len(data) // 3] ^= 0x01
    node.blobs.put(key, bytes(data))
    with pytest.raises(ReltoError):
        _svc(demo_app).open(
            principal(demo_app, "usa-eng-ramirez"), "hyp-thermal-protection", datetime.now(UTC)
        )


def test_policy_not_protected_here_gets_no_key(demo_app: TestClient) -> None:
    decision = ProductDecider(node_of(demo_app).facts).decide(
        RewrapFacts(
            subject={"sub": "usa-eng-ramirez"},
            policy_uuid="00000000-0000-4000-8000-000000000000",
            attributes=(),
            dissem=(),
            at=datetime.now(UTC),
            nation="USA",
        )
    )
    assert not decision.allowed
    assert decision.reasons[0].code == "unknown_object"


def test_unknown_person_is_denied_with_a_reason(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    decision = svc.facts.decide(
        "mallory", "read", svc._get("innovation-challenge"), datetime.now(UTC)
    )
    assert not decision.allowed and decision.reasons[0].code == "CLEARANCE_MISSING"


def test_relabel_keeps_old_version_and_changes_policy(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    before = svc._get("hyp-thermal-protection")
    after = svc.relabel(
        principal(demo_app, "gbr-so-whitfield"),
        before.id,
        ["USA", "AUS", "JPN"],
        datetime.now(UTC),
    )
    assert after.version == before.version + 1
    assert after.policy_uuid != before.policy_uuid
    assert "JPN" in after.rel_to
    assert node_of(demo_app).blobs.exists(f"document-{before.id}-v{before.version}.tdf")


def test_officer_of_another_nation_cannot_relabel(demo_app: TestClient, sink: MemorySink) -> None:
    """A USA security officer cleared for a GBR document may not widen its Releasable
    To: the engine's relabel rules say no, and the denial is recorded."""
    svc = _svc(demo_app)
    with pytest.raises(ActionDenied) as denied:
        svc.relabel(
            principal(demo_app, "usa-so-bennett"),
            "hyp-thermal-protection",
            ["USA", "AUS", "JPN"],
            datetime.now(UTC),
        )
    assert "ORIGINATOR_CONTROLLED" in denied.value.decision.codes or (
        "NO_NEED_TO_KNOW" in denied.value.decision.codes
    )
    assert "JPN" not in svc._get("hyp-thermal-protection").banner
    last = [e for e in sink.events if e.kind == "decision"][-1]
    assert last.payload["action"] == "relabel" and last.payload["allowed"] is False


def test_relabel_needs_clearance_for_the_object(demo_app: TestClient) -> None:
    """An officer of the originating nation whose own clearance does not cover the
    object cannot relabel it (the old role check alone let them)."""
    svc = _svc(demo_app)
    node = node_of(demo_app)
    officer = principal(demo_app, "gbr-so-whitfield")
    for c in node.vetting.list_clearances(limit=200, person_id=officer.person_id).items:
        node.vetting.transition(
            c.id,
            "suspended",  # type: ignore[arg-type]
            at=datetime.now(UTC),
            actor="gbr-vo-test",
            reason="test: suspended",
        )
    with pytest.raises(ActionDenied) as denied:
        svc.relabel(officer, "hyp-thermal-protection", ["USA", "AUS", "JPN"], datetime.now(UTC))
    assert "CLEARANCE_NOT_CURRENT" in denied.value.decision.codes


def test_relabel_takes_the_key_through_the_kas(demo_app: TestClient, sink: MemorySink) -> None:
    _svc(demo_app).relabel(
        principal(demo_app, "gbr-so-whitfield"),
        "hyp-thermal-protection",
        ["USA", "AUS", "JPN"],
        datetime.now(UTC),
    )
    rewraps = [e for e in sink.events if e.kind == "kas.rewrap"]
    assert rewraps and rewraps[-1].payload["action"] == "relabel"
    assert rewraps[-1].payload["subject"] == "gbr-so-whitfield"
    assert rewraps[-1].payload["allowed"] is True
    # the entry names the object and its originating nation: a partner auditor of that
    # nation can tell from the entry alone that it concerns them
    doc = _svc(demo_app)._get("hyp-thermal-protection")
    assert rewraps[-1].payload["object"] == doc.id
    assert rewraps[-1].payload["originator"] == doc.originator


def test_relabel_cannot_release_outside_the_partnership(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    with pytest.raises(InvalidInput, match="not a nation of the partnership: FRA"):
        svc.relabel(
            principal(demo_app, "gbr-so-whitfield"),
            "hyp-thermal-protection",
            ["USA", "FRA"],
            datetime.now(UTC),
        )
    assert "FRA" not in svc._get("hyp-thermal-protection").banner


def test_document_not_releasable_to_the_person_is_not_found(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    sato = principal(demo_app, "jpn-eng-sato")
    with pytest.raises(NotFound):
        svc.visible(sato, "hyp-thermal-protection")
    assert "hyp-thermal-protection" not in {d.id for d in svc.page(sato)}


def test_oversized_upload_refused_before_parsing(demo_app: TestClient) -> None:
    huge = 30 * 1024 * 1024
    r = demo_app.post(
        "/api/v1/objects",
        content=b"x" * 10,
        headers={"content-length": str(huge), "content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_containers_carry_the_deployments_attribute_namespace(tmp_path: Path) -> None:
    """Policies must name attributes under an authority the deployment controls, not
    the placeholder: a peer KAS or PDP matches FQNs as strings."""
    from relto.config import Settings
    from relto.server import create_app
    from relto.ztdf import inspect

    app = create_app(
        Settings(
            demo=True,
            data_dir=tmp_path / "data",
            attribute_namespace="HTTPS://Attributes.GBR.example/relto/",
        ),
        sink=MemorySink(),
    )
    with TestClient(app) as client:
        key = _blob_key(client, "hyp-thermal-protection")
        copy = tmp_path / "doc.tdf"
        with node_of(client).blobs.open(key) as f:
            copy.write_bytes(f.read())
    summary = json.dumps(inspect(copy))
    assert "https://attributes.gbr.example/relto/attr/classification/value/" in summary
    assert "relto.example/attr" not in summary
    app.state.node.db.dispose()


@pytest.mark.parametrize(
    "bad", ["ftp://x.example", "https://user@x.example", "https://x.example/?q=1", "x.example"]
)
def test_attribute_namespace_must_be_a_plain_http_url(bad: str, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from relto.config import Settings

    with pytest.raises(ValidationError, match="http"):
        Settings(data_dir=tmp_path, attribute_namespace=bad)


def test_placeholder_namespace_is_the_same_everywhere() -> None:
    from relto.config import PLACEHOLDER_NAMESPACE
    from relto.ztdf.attributes import DEFAULT_NAMESPACE

    assert PLACEHOLDER_NAMESPACE == DEFAULT_NAMESPACE


def test_one_upload_limit_in_config_show_the_console_and_the_api(
    tmp_path: Path, demo_template: Path
) -> None:
    """A newcomer reads the limit in `relto config show` and on the upload form; the
    API and the form must enforce exactly that value (no hidden cap elsewhere)."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    from relto.config import Settings
    from relto.server import create_app

    from .conftest import sign_in

    limit = 3 * 1024 * 1024
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env |= {"RELTO_DATA_DIR": str(data), "RELTO_MAX_UPLOAD_BYTES": str(limit)}
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "relto"), "config", "show"],
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(rf"max_upload_bytes\W+{limit}\b", shown), shown
    app = create_app(Settings(demo=True, data_dir=data, max_upload_bytes=limit), sink=MemorySink())
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        assert app.state.node.documents.max_upload_bytes == limit
        sign_in(client, "gbr-eng-harper")
        assert "at most 3 MiB" in client.get("/console/documents/new").text
        over = client.post(
            "/api/v1/objects",
            content=b"x" * 10,
            headers={
                "content-length": str(limit + 128 * 1024),
                "content-type": "multipart/form-data; boundary=x",
            },
        )
        assert over.status_code == 413
    app.state.node.db.dispose()


def test_upload_limit_above_what_is_held_in_memory_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from relto.config import MAX_DOCUMENT_BYTES, Settings

    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, max_upload_bytes=MAX_DOCUMENT_BYTES + 1)


def test_aus_unofficial_is_a_level_the_demo_bridge_knows() -> None:
    """AUS UNOFFICIAL (PSPF) sits below OFFICIAL; an object at that level is not
    denied as an unknown attribute on a demo node."""
    from relto.documents import ProductLevelMapper, common_level

    bridge = ProductLevelMapper()
    low, official = bridge.rank("AUS", "UNOFFICIAL"), bridge.rank("AUS", "OFFICIAL")
    assert low is not None and official is not None and low < official
    assert common_level("AUS", "UNOFFICIAL") == "UNCLASSIFIED"
