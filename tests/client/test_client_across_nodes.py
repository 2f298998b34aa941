"""relto.client against two real nodes (tests/client/conftest.py): a USA engineer
signed in at home lists and opens what GBR releases to USA, with attestations the
USA node issues for their DPoP key; refusals are typed and carry reasons."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from relto.audit.entries import decode_entry
from relto.client import (
    AccessDenied,
    Attestation,
    ClientError,
    DpopKey,
    HomeSession,
    KasUnreachable,
    NodeUnreachable,
    NotAuthenticated,
    NotFound,
    Partner,
)
from relto.client.session import open_with
from relto.node import Node
from relto.ztdf.container import _read_manifest

from .conftest import Federation

pytestmark = pytest.mark.xdist_group("client-federation")

THERMAL = "Leading-edge ablation rates for flight 7, with the test matrix for flight 8."


def _entries(node: Node, kind: str) -> list[dict[str, Any]]:
    log = node.log
    entries = [decode_entry(e.body) for e in log.entries(0, log.size())]
    return [dict(e.payload) for e in entries if e.kind == kind]


def _session(fed: Federation, person: str = "usa-eng-ramirez", **kw: object) -> HomeSession:
    key = DpopKey.generate()
    return HomeSession(
        fed.usa.url,
        token=fed.token(person, key),
        dpop=key,
        nation="USA",
        partners=(Partner("GBR", fed.gbr.url),),
        **kw,  # type: ignore[arg-type]
    )


def _thermal(session: HomeSession) -> str:
    gbr = session.partner(session.nodes()[1].base_url)
    found = [o for o in gbr.objects() if o.title.startswith("Thermal protection")]
    assert len(found) == 1
    return found[0].id


def test_usa_engineer_lists_gbr_objects_released_to_usa_and_opens_one(
    federation: Federation,
) -> None:
    with _session(federation) as me:
        gbr = me.partner(federation.gbr.url)
        listed = list(gbr.objects())
        assert listed and all("USA" in o.rel_to for o in listed)
        assert {o.node for o in listed} == {"GBR"}
        thermal = _thermal(me)
        assert me.open(gbr, thermal).decode() == THERMAL
        # the whole partnership at once: home first, then GBR
        everywhere = list(me.objects())
        assert {o.node for o in everywhere} == {"USA", "GBR"}
    # GBR decided on the attested facts and recorded it; USA recorded the attestation
    entry = _entries(federation.gbr.node, "kas.rewrap")[-1]
    assert entry["allowed"] is True and entry["subject"] == "usa-eng-ramirez@USA"
    issued = _entries(federation.usa.node, "federation.attestation.issued")
    assert issued and issued[-1]["person_id"] == "usa-eng-ramirez"


def test_engineer_without_need_to_know_is_denied_with_the_holding_nodes_reasons(
    federation: Federation,
) -> None:
    with _session(federation) as ramirez:
        thermal = _thermal(ramirez)
    with _session(federation, "usa-so-bennett") as bennett:  # cleared, in no project
        gbr = bennett.partner(federation.gbr.url)
        with pytest.raises(AccessDenied) as denied:
            bennett.open(gbr, thermal)
    codes = {r.code for r in denied.value.reasons}
    assert "NO_NEED_TO_KNOW" in codes, denied.value.reasons
    assert all(r.sentence for r in denied.value.reasons)
    assert str(denied.value).startswith("GBR refused:")


def test_clearance_under_review_at_home_refused_abroad_before_any_decision(
    federation: Federation,
) -> None:
    with _session(federation) as ramirez:
        thermal = _thermal(ramirez)
    # Kim's clearance is under review at home
    with _session(federation, "usa-eng-kim") as kim, pytest.raises(AccessDenied) as denied:
        kim.open(kim.partner(federation.gbr.url), thermal)
    assert [r.code for r in denied.value.reasons] == ["attestation_revoked"]


def test_container_naming_a_stranger_kas_gets_no_credential(federation: Federation) -> None:
    """A hostile container must not collect the person's attestation: a KAS that is
    not one of the session's nodes is refused before anything is sent to it."""
    asked: list[str] = []

    def stranger(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(500)

    with _session(federation) as me:
        gbr = me.partner(federation.gbr.url)
        thermal = _thermal(me)
        container = gbr.container(thermal)
        with zipfile.ZipFile(io.BytesIO(container)) as z:
            manifest = json.loads(z.read("0.manifest.json"))
            payload = z.read("0.payload")
        manifest["encryptionInformation"]["keyAccess"][0]["url"] = "http://127.0.0.9:9/kas"
        hostile = io.BytesIO()
        with zipfile.ZipFile(hostile, "w") as z:
            z.writestr("0.payload", payload)
            z.writestr("0.manifest.json", json.dumps(manifest))
        m, _ = _read_manifest(io.BytesIO(hostile.getvalue()))
        assert m.encryption_information.key_access[0].url == "http://127.0.0.9:9/kas"

        class Holder:
            label = "GBR"

            def container(self, object_id: str) -> bytes:
                return hostile.getvalue()

            def decision(self, object_id: str) -> object:
                raise NotFound("no")

        with pytest.raises(ClientError, match="not one of this session's nodes"):
            open_with(Holder(), thermal, me.nodes())  # type: ignore[arg-type]
    assert asked == []


def test_attestation_renewed_a_minute_before_it_expires(federation: Federation) -> None:
    now = [datetime.now(UTC)]
    with _session(federation, clock=lambda: now[0]) as me:
        first = me.attestation()
        assert me.attestation() == first
        now[0] += timedelta(minutes=4, seconds=5)  # under a minute left of five
        assert me.attestation() != first


def test_stolen_attestation_without_the_key_is_refused(federation: Federation) -> None:
    with _session(federation) as me:
        token = me.attestation()
    thief = HomeSession(
        federation.usa.url,
        token="unused",
        dpop=DpopKey.generate(),
        attest=lambda: Attestation(token, datetime.now(UTC) + timedelta(minutes=5)),
    )
    with thief, pytest.raises(NotAuthenticated) as refused:
        list(thief.partner(federation.gbr.url, nation="GBR").objects())
    assert refused.value.node == "GBR" and refused.value.status == 401


def test_node_down_makes_only_its_own_objects_unavailable(federation: Federation) -> None:
    with _session(federation) as me:
        gbr = me.partner(federation.gbr.url)
        thermal = _thermal(me)
        container = gbr.container(thermal)
        m, _ = _read_manifest(io.BytesIO(container))
        policy = m.encryption_information.policy
        home_objects = list(me.home.objects())
        federation.gbr.server.stop()
        try:
            with pytest.raises(KasUnreachable, match="GBR key access service unreachable"):
                gbr.rewrap(m.encryption_information.key_access[0], policy)
            with pytest.raises(KasUnreachable, match="GBR key access service unreachable"):
                me.open(gbr, thermal)
            with pytest.raises(NodeUnreachable, match="GBR node unreachable"):
                list(gbr.objects())
            assert list(me.home.objects()) == home_objects  # USA still answers
        finally:
            federation.gbr.server.start()
