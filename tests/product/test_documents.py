"""Documents on a node: the KAS enforces the decision by itself, a tampered
container never decrypts, and policies this node did not protect get no key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.errors import ReltoError
from relto.server.documents import DocumentService, document_service
from relto.store.partnership import DocumentRow


def _svc(client: TestClient) -> DocumentService:
    return document_service(client.app.state.ctx)  # type: ignore[attr-defined]


def test_kas_withholds_key_even_if_the_console_check_is_skipped(demo_app: TestClient) -> None:
    from relto.ztdf import KeyAccessDenied

    svc = _svc(demo_app)
    doc = svc.get("hyp-thermal-protection")
    unwrap = svc._kas_unwrap("jpn-eng-sato", "JPN", "Haruto Sato", datetime.now(UTC))
    with pytest.raises(KeyAccessDenied):
        svc._decrypt(doc, unwrap)
    allowed = svc._kas_unwrap("usa-eng-ramirez", "USA", "Carlos Ramirez", datetime.now(UTC))
    assert b"ablation" in svc._decrypt(doc, allowed).lower()


def test_tampered_container_never_decrypts(demo_app: TestClient) -> None:
    ctx = demo_app.app.state.ctx  # type: ignore[attr-defined]
    svc = _svc(demo_app)
    with ctx.db.session() as s:
        key = s.get(DocumentRow, "hyp-thermal-protection").blob_key
    with ctx.blobs.open(key) as f:
        data = bytearray(f.read())
    data[len(data) // 3] ^= 0x01
    ctx.blobs.put(key, bytes(data))
    with pytest.raises(ReltoError):
        svc.open(
            person_id="usa-eng-ramirez",
            nation="USA",
            name="Carlos Ramirez",
            doc_id="hyp-thermal-protection",
            at=datetime.now(UTC),
        )


def test_policy_not_protected_here_gets_no_key(demo_app: TestClient) -> None:
    from relto.kas.decider import RewrapFacts
    from relto.server.documents import ProductDecider

    decision = ProductDecider(_svc(demo_app)).decide(
        RewrapFacts(
            subject={"sub": "usa-eng-ramirez"},
            policy_uuid="00000000-0000-4000-8000-000000000000",
            attributes=(),
            dissem=(),
            at=datetime.now(UTC),
        )
    )
    assert not decision.allowed
    assert decision.reasons[0].code == "unknown_object"


def test_unknown_person_is_denied_with_a_reason(demo_app: TestClient) -> None:
    svc = _svc(demo_app)
    decision = svc.decide("mallory", "read", svc.get("innovation-challenge"), datetime.now(UTC))
    assert not decision.allowed and decision.reasons[0].code == "CLEARANCE_MISSING"


def test_relabel_keeps_old_version_and_changes_policy(demo_app: TestClient) -> None:
    ctx = demo_app.app.state.ctx  # type: ignore[attr-defined]
    svc = _svc(demo_app)
    before = svc.get("hyp-thermal-protection")
    after = svc.relabel(
        person_id="gbr-so-whitfield",
        roles=frozenset({("security_officer", "GBR")}),
        doc_id=before.id,
        rel_to=["USA", "AUS", "JPN"],
        at=datetime.now(UTC),
    )
    assert after.version == before.version + 1
    assert after.policy_uuid != before.policy_uuid
    assert "JPN" in after.rel_to
    assert ctx.blobs.exists(f"document-{before.id}-v{before.version}.tdf")
    with pytest.raises(ReltoError):
        svc.relabel(
            person_id="usa-so-bennett",
            roles=frozenset({("security_officer", "USA")}),  # not the originator's officer
            doc_id=before.id,
            rel_to=["USA", "AUS"],
            at=datetime.now(UTC),
        )


def test_relabel_cannot_release_outside_the_partnership(demo_app: TestClient) -> None:
    from relto.errors import InvalidInput

    svc = _svc(demo_app)
    with pytest.raises(InvalidInput, match="not a nation of the partnership: FRA"):
        svc.relabel(
            person_id="gbr-so-whitfield",
            roles=frozenset({("security_officer", "GBR")}),
            doc_id="hyp-thermal-protection",
            rel_to=["USA", "FRA"],
            at=datetime.now(UTC),
        )
    assert "FRA" not in svc.get("hyp-thermal-protection").banner


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
    from relto.events import MemorySink
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
    with TestClient(app):
        ctx = app.state.ctx
        with ctx.db.session() as s:
            key = s.get(DocumentRow, "hyp-thermal-protection").blob_key
        copy = tmp_path / "doc.tdf"
        with ctx.blobs.open(key) as f:
            copy.write_bytes(f.read())
    summary = json.dumps(inspect(copy))
    assert "https://attributes.gbr.example/relto/attr/classification/value/" in summary
    assert "relto.example/attr" not in summary
    app.state.ctx.db.dispose()


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
