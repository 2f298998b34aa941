"""A partner auditor checks what concerns their nation (issue 15, ADR 0142).

Two real nodes under uvicorn on loopback, each holding its nation's share of the
demo partnership and pinning the other; GBR pushes its checkpoints to USA's
witness. A USA auditor, attested by the USA node, reads at the GBR node the
entries about USA people and USA-originated objects, each with an inclusion
proof against a checkpoint USA's own witness cosigned, and checks them with keys
only the USA node gave: the log key it pinned for GBR and its own witness key.
Whatever the GBR node (its database, its operator) changes is rejected.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import SecretStr
from typer.testing import CliRunner

from relto.audit import merkle
from relto.audit.config import node_signer
from relto.audit.entries import decode_entry, encode_entry
from relto.audit.errors import NotCosigned, PartnerPageRejected
from relto.audit.note import (
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    parse_note,
    parse_verifier,
)
from relto.audit.partner_access import PartnerAuditView
from relto.audit.partner_view import (
    ProvedEntry,
    UnverifiedPartnerPage,
    concerns,
    evident_nations,
    page_from_json,
    page_to_json,
    verify_page,
)
from relto.audit.witnessing import MemoryCosignatureStore
from relto.authz import Permission, Principal, Scope, decide
from relto.cli.main import app as cli
from relto.client import DpopKey, HomeSession, NodeClient, NotFound, ProofRejected, SavedSession
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.errors import AccessDenied
from relto.federation.attestation import AttestedPerson
from relto.federation.descriptor import read_pinned_descriptor
from relto.kas.auth import AuthConfig, Authenticator, StaticJwks, TrustedIssuer
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.server import create_app
from relto.server.witnessing import push_once
from relto.vetting import Person, Role, Status

from .live_server import Server, free_port

AUDITOR, ENGINEER = "usa-aud-okoro", "usa-eng-ramirez"
USA_ISSUER, AUDIENCE = "https://idp.usa.example", "relto"
USA_IDP = RSAKey.generate_key(2048, parameters={"kid": "usa-1", "alg": "RS256"})
PATH = "/api/v1/audit/partner/entries"


@dataclass
class Nation:
    node: Node
    app: Any
    url: str

    def principal(self, person_id: str) -> Principal:
        who = self.node.directory.principal(person_id, via="node")
        assert who is not None
        return who


@dataclass
class World:
    gbr: Nation
    usa: Nation
    #: What the GBR node answered the USA auditor before any checkpoint was cosigned.
    before_cosigned: httpx.Response
    #: Log indices of entries recorded at GBR for the test, by what they name.
    usa_person: int
    usa_object: int
    gbr_only: int
    aus_only: int

    @property
    def log_key(self) -> NoteVerifier:
        """GBR's log key, as the USA node pinned it."""
        v = parse_verifier(self.usa.node.trust.trusted()["GBR"].descriptor.log_key)
        assert isinstance(v, NoteVerifier)
        return v

    @property
    def witness_key(self) -> CosignatureVerifier:
        """The USA node's own witness key."""
        assert self.usa.node.federation is not None
        token = self.usa.node.federation.descriptor(datetime.now(UTC))
        v = parse_verifier(read_pinned_descriptor(token).witness_key)
        assert isinstance(v, CosignatureVerifier)
        return v


def _nation(nation: str, folder: Path) -> Nation:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(
            nation=nation,
            data_dir=folder,
            port=port,
            public_url=url,
            secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
        )  # type: ignore[call-arg]
    )
    node: Node = app.state.node
    load_demo(node.db, node.sink, nation_share(read_demo(), nation), at=datetime.now(UTC))
    return Nation(node, app, url)


def _pin(on: Nation, officer: str, other: Nation) -> None:
    assert other.node.federation is not None
    on.node.trust.pin(
        httpx.get(f"{other.url}/.well-known/relto-node", timeout=10).text,
        fingerprint=other.node.federation.descriptors.fingerprint,
        actor=on.principal(officer),
        now=datetime.now(UTC),
    )


def attested(usa: Nation, person_id: str) -> tuple[str, DpopKey]:
    """``person_id``'s attestation from the USA node, bound to a fresh DPoP key."""
    key = DpopKey.generate()
    assert usa.node.federation is not None
    issued = usa.node.federation.attest(
        usa.principal(person_id), dpop_jkt=key.thumbprint, now=datetime.now(UTC)
    )
    return issued.token, key


def at_gbr(w: World, person_id: str, **kw: Any) -> NodeClient:
    token, key = attested(w.usa, person_id)
    return NodeClient(w.gbr.url, credential=token, dpop=key, nation="GBR", **kw)


def raw_page(
    w: World, nation: str = "USA", person_id: str = AUDITOR, **params: Any
) -> httpx.Response:
    """The GBR node's answer as it is (any status), to ``person_id``'s attestation."""
    token, key = attested(w.usa, person_id)
    url = w.gbr.url + PATH
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, access_token=token)}
    return httpx.get(url, params={"nation": nation, **params}, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("partner-auditor")
    gbr, usa = _nation("GBR", folder / "gbr"), _nation("USA", folder / "usa")
    usa.node.vetting.register_person(
        Person(
            AUDITOR, "USA Auditor", frozenset({"USA"}), "DoD IG", "USA", frozenset({Role.AUDITOR})
        ),
        at=datetime.now(UTC),
        actor="test-setup",
    )
    # vetted like anyone its node vouches for (no current clearance: attestations refused)
    c = usa.node.vetting.sponsor_clearance(
        person_id=AUDITOR,
        nation="USA",
        level="SECRET",
        sponsor="DoD",
        at=datetime.now(UTC),
        actor="test-setup",
        reason="test",
    )
    for to in (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED):
        usa.node.vetting.transition(
            c.id, to, at=datetime.now(UTC), actor="test-setup", reason="test"
        )
    # The USA node's own people sign in at the USA identity provider (the SDK, the CLI).
    usa.app.state.edge.auth.authenticator = Authenticator(
        AuthConfig(),
        issuers=[
            TrustedIssuer(
                USA_ISSUER, StaticJwks({"keys": [USA_IDP.as_dict(private=False)]}), AUDIENCE, "USA"
            )
        ],
    )
    with (
        Server(gbr.app, int(gbr.url.rsplit(":", 1)[1])),
        Server(usa.app, int(usa.url.rsplit(":", 1)[1])),
    ):
        _pin(gbr, "gbr-so-whitfield", usa)
        _pin(usa, "usa-so-bennett", gbr)
        log = gbr.node.log
        usa_person = log.append(
            "kas.rewrap", {"subject": f"{ENGINEER}@USA", "allowed": True, "object": "doc-gbr-1"}
        )
        usa_object = log.append(
            "document.protected", {"document": "doc-usa-1", "originator": "USA", "by": "gbr-x"}
        )
        gbr_only = log.append(
            "document.protected",
            {"document": "doc-gbr-2", "originator": "GBR", "by": "gbr-eng-harper"},
        )
        aus_only = log.append("authz.decision", {"by": "aus-aud-1@AUS", "nation": "AUS"})
        w = World(gbr, usa, httpx.Response(0), usa_person, usa_object, gbr_only, aus_only)
        w.before_cosigned = raw_page(w)
        (pushed,) = push_once(gbr.node)
        assert pushed.outcome == "cosigned", pushed
        yield w
    for n in (gbr, usa):
        n.node.db.dispose()


def all_pages(w: World, nation: str = "USA") -> list[dict[str, Any]]:
    pages, at = [], 0
    while at is not None:
        r = raw_page(w, nation, **{"from": at, "limit": 100})
        assert r.status_code == 200, r.text
        pages.append(r.json())
        at = r.json()["next"]
    return pages


# -- the auditor's view ------------------------------------------------------------------


def test_usa_auditor_gets_usa_entries_proved_in_a_checkpoint_usa_cosigned(w: World) -> None:
    with at_gbr(w, AUDITOR) as gbr:
        page = gbr.partner_audit("USA", log_key=w.log_key, witness_key=w.witness_key, limit=100)
    store = w.gbr.node.witnessing.store  # type: ignore[union-attr]
    assert page.checkpoint.size == store.last_size("USA")
    assert page.checkpoint.origin == w.log_key.name
    assert abs(page.cosigned_at - time.time()) < 600
    shown = {e.index: e for e in page.entries}
    assert {w.usa_person, w.usa_object} <= set(shown)
    assert shown[w.usa_person].entry.payload["subject"] == f"{ENGINEER}@USA"
    assert shown[w.usa_object].entry.payload["originator"] == "USA"
    assert all("USA" in e.nations for e in page.entries)
    # the bytes are the log's own: the leaf hash is the stored one
    stored = {e.index: e for e in w.gbr.node.log.entries(0, page.checkpoint.size)}
    assert all(
        stored[i].leaf_hash == e.leaf_hash == merkle.leaf_hash(e.body) for i, e in shown.items()
    )


def test_gbr_only_and_aus_entries_are_never_returned(w: World) -> None:
    served = [e for p in all_pages(w) for e in p["entries"]]
    indices = {e["index"] for e in served}
    assert w.gbr_only not in indices and w.aus_only not in indices
    for e in served:
        assert concerns(decode_entry(base64.b64decode(e["body"])).payload, "USA")


def test_answer_before_any_usa_cosignature_is_a_clear_409(w: World) -> None:
    r = w.before_cosigned
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "not_cosigned"
    assert "cosigned by the witness of USA" in r.json()["error"]["message"]


def test_pages_are_bounded_and_say_where_to_go_on(w: World) -> None:
    r = raw_page(w, limit=1)
    body = r.json()
    assert len(body["entries"]) == 1 and body["next"] == body["entries"][0]["index"] + 1
    assert raw_page(w, limit=101).status_code == 422
    for bad in ({"nation": "usa"}, {"nation": "US"}, {"from": -1}):
        got = raw_page(w, **bad)
        assert got.status_code == 422 and "error" in got.json(), got.text


def test_usa_engineer_without_auditor_role_refused_and_recorded(w: World) -> None:
    with at_gbr(w, ENGINEER) as gbr, pytest.raises(NotFound):
        gbr.partner_audit("USA", log_key=w.log_key, witness_key=w.witness_key)
    refused = [
        decode_entry(e.body).payload for e in w.gbr.node.log.entries(0, w.gbr.node.log.size())
    ]
    assert any(
        p.get("by") == f"{ENGINEER}@USA"
        and p.get("allowed") is False
        and p.get("permission") == "audit:partner-entries:read"
        for p in refused
    )


def test_usa_auditor_cannot_ask_for_aus_or_gbr_entries(w: World) -> None:
    for nation in ("AUS", "GBR"):
        r = raw_page(w, nation)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text


def test_gbr_local_auditor_cannot_use_the_partner_view() -> None:
    """The directory's roles grant nothing here: only what a home node attests."""
    local = Principal(
        "gbr-aud-patel", "Patel", "GBR", frozenset({"GBR"}), frozenset({("auditor", "GBR")})
    )
    assert not decide(local, Permission.AUDIT_PARTNER_ENTRIES_READ, Scope.of(["GBR"])).allowed


def test_attested_role_counts_only_for_the_home_nation() -> None:
    def person(roles: set[str], via: str = "attestation", home: str = "USA") -> Principal:
        facts = AttestedPerson("x", home, frozenset({home}), frozenset(roles))
        return Principal(f"x@{home}", "x", "USA", frozenset({"USA"}), frozenset(), via, facts)

    p = Permission.AUDIT_PARTNER_ENTRIES_READ
    assert decide(person({"auditor"}), p, Scope.of(["USA"])).allowed
    assert decide(person({"security_officer"}), p, Scope.of(["USA"])).allowed
    assert decide(person({"auditor"}), p, Scope.of(["AUS"])).code == "NOT_OWN_NATION"
    assert not decide(person({"auditor"}), p, Scope.of(["USA", "AUS"])).allowed
    assert decide(person({"engineer"}), p, Scope.of(["USA"])).code == "ROLE_NOT_ATTESTED"
    # facts of another nation than the principal's home, or not signed in by attestation
    assert not decide(person({"auditor"}, home="AUS"), p, Scope.of(["USA"])).allowed
    assert not decide(person({"auditor"}, via="bearer"), p, Scope.of(["USA"])).allowed
    assert not decide(None, p, Scope.of(["USA"])).allowed


def test_view_refuses_before_saying_whether_anything_is_cosigned(w: World) -> None:
    view = PartnerAuditView(
        w.gbr.node.log, MemoryCosignatureStore(), lambda: {"USA": "k"}, w.gbr.node.authorizer
    )
    engineer = Principal(
        f"{ENGINEER}@USA",
        "e",
        "USA",
        frozenset({"USA"}),
        frozenset(),
        "attestation",
        AttestedPerson(ENGINEER, "USA", frozenset({"USA"})),
    )
    with pytest.raises(AccessDenied):
        view.page(engineer, "USA", start=0)
    auditor = replace(
        engineer, attested=AttestedPerson("a", "USA", frozenset({"USA"}), frozenset({"auditor"}))
    )
    with pytest.raises(NotCosigned):
        view.page(auditor, "USA", start=0)


# -- what the client rejects ---------------------------------------------------------------


def served(w: World) -> dict[str, Any]:
    r = raw_page(w, limit=100)
    assert r.status_code == 200, r.text
    return dict(r.json())


def check(w: World, data: dict[str, Any], nation: str = "USA") -> None:
    verify_page(page_from_json(data), log_key=w.log_key, witness_key=w.witness_key, nation=nation)


def rejected(w: World, data: dict[str, Any]) -> PartnerPageRejected:
    with pytest.raises(PartnerPageRejected) as exc:
        check(w, data)
    return exc.value


def _entry(data: dict[str, Any], index: int) -> dict[str, Any]:
    return next(e for e in data["entries"] if e["index"] == index)


def test_untouched_page_verifies(w: World) -> None:
    check(w, served(w))


def test_tampered_entry_body_rejected(w: World) -> None:
    data = served(w)
    e = _entry(data, w.usa_person)
    entry = decode_entry(base64.b64decode(e["body"]))
    forged = encode_entry(
        entry.index,
        entry.kind,
        {**entry.payload, "allowed": False},
        datetime.fromisoformat(entry.time.replace("Z", "+00:00")),
    )
    e["body"] = base64.b64encode(forged).decode()
    got = rejected(w, data)
    assert (got.reason, got.index) == ("inclusion", w.usa_person)


def test_tampered_proof_rejected(w: World) -> None:
    data = served(w)
    e = _entry(data, w.usa_object)
    e["proof"][0] = base64.b64encode(bytes(32)).decode()
    assert rejected(w, data).reason == "inclusion"
    e["proof"] = e["proof"][1:]  # a shortened path
    assert rejected(w, data).reason == "inclusion"


def test_entry_moved_to_another_index_rejected(w: World) -> None:
    data = served(w)
    first, second = data["entries"][0], data["entries"][1]
    first["body"] = second["body"]
    assert rejected(w, data).reason == "inclusion"


def _strip_witnesses(note: str, keep: str) -> str:
    n = parse_note(note)
    return replace(n, signatures=tuple(s for s in n.signatures if s.name == keep)).encode()


def test_checkpoint_without_usa_cosignature_rejected(w: World) -> None:
    data = served(w)
    data["checkpoint"] = _strip_witnesses(data["checkpoint"], w.log_key.name)
    assert rejected(w, data).reason == "no_cosignature"


def test_checkpoint_cosigned_by_an_impostor_usa_witness_rejected(w: World) -> None:
    data = served(w)
    impostor = NoteSigner.generate(w.witness_key.name)  # same name, another key
    note = _strip_witnesses(data["checkpoint"], w.log_key.name)
    body = parse_note(note).text
    sig = impostor.cosign(body, int(time.time()))
    data["checkpoint"] = note + sig.line()
    assert rejected(w, data).reason == "no_cosignature"


def test_history_rewritten_and_resigned_by_gbr_fails_the_usa_cosignature(w: World) -> None:
    """GBR's operator holds the log key: they can sign any tree, but USA's
    cosignature was made over the tree USA's witness saw."""
    data = served(w)
    n = parse_note(data["checkpoint"])
    origin, size, _root, *rest = n.text.split("\n")
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    text = "\n".join([origin, size, other, *rest])
    resigned = node_signer(w.gbr.node.settings).sign(text)  # the operator holds the key
    usa = [s for s in n.signatures if s.name == w.witness_key.name]
    data["checkpoint"] = replace(n, text=text, signatures=(resigned, *usa)).encode()
    assert rejected(w, data).reason == "no_cosignature"


def test_checkpoint_of_another_log_key_rejected(w: World) -> None:
    data = served(w)
    n = parse_note(data["checkpoint"])
    rogue = NoteSigner.generate(w.log_key.name)
    data["checkpoint"] = replace(n, signatures=(rogue.sign(n.text),)).encode()
    assert rejected(w, data).reason == "checkpoint_signature"


def test_validly_proved_entry_not_concerning_usa_rejected(w: World) -> None:
    """A node that slips in a GBR-only entry -- truly in the log -- is caught."""
    data = served(w)
    size = data["tree_size"]
    log = w.gbr.node.log
    (row,) = log.entries(w.gbr_only, w.gbr_only + 1)
    data["entries"].append(
        {
            "index": row.index,
            "body": base64.b64encode(row.body).decode(),
            "proof": [base64.b64encode(h).decode() for h in log.inclusion_path(row.index, size)],
        }
    )
    data["entries"].sort(key=lambda e: e["index"])
    got = rejected(w, data)
    assert (got.reason, got.index) == ("not_concerned", w.gbr_only)


def test_page_for_another_nation_or_out_of_order_rejected(w: World) -> None:
    data = served(w)
    data["nation"] = "AUS"
    assert rejected(w, data).reason == "wrong_nation"
    data = served(w)
    data["entries"].reverse()
    assert rejected(w, data).reason == "out_of_range"


# -- the SDK and the CLI, signed in at home ------------------------------------------------


def _token(sub: str, key: DpopKey) -> str:
    now = int(time.time())
    claims = {
        "iss": USA_ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "cnf": {"jkt": key.thumbprint},
    }
    return jwt.encode({"alg": "RS256", "kid": USA_IDP.kid}, claims, USA_IDP)


def test_home_session_checks_with_keys_from_home_only(w: World) -> None:
    key = DpopKey.generate()
    with HomeSession(w.usa.url, token=_token(AUDITOR, key), dpop=key, nation="USA") as me:
        page = me.audit_partner("GBR", limit=100)
        assert {w.usa_person, w.usa_object} <= {e.index for e in page.entries}
        with pytest.raises(NotFound):
            me.audit_partner("JPN")  # not pinned at home: nothing to check it by


def _lying(monkeypatch: pytest.MonkeyPatch, tamper: Callable[[dict[str, Any]], None]) -> None:
    """The GBR node's answers changed after it made them (its operator, say)."""
    import relto.server.routes.audit as routes

    real = routes.page_to_json

    def lie(page: UnverifiedPartnerPage) -> dict[str, Any]:
        data = real(page)
        tamper(data)
        return data

    monkeypatch.setattr(routes, "page_to_json", lie)


def test_sdk_raises_proof_rejected_on_a_lying_node(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def drop_cosignatures(data: dict[str, Any]) -> None:
        data["checkpoint"] = _strip_witnesses(data["checkpoint"], w.log_key.name)

    _lying(monkeypatch, drop_cosignatures)
    key = DpopKey.generate()
    with (
        HomeSession(w.usa.url, token=_token(AUDITOR, key), dpop=key, nation="USA") as me,
        pytest.raises(ProofRejected) as exc,
    ):
        me.audit_partner("GBR")
    assert exc.value.reason == "no_cosignature" and exc.value.node == "GBR"


def _saved(w: World, folder: Path) -> Path:
    key = DpopKey.generate()
    path = folder / "session.json"
    SavedSession(
        w.usa.url,
        "USA",
        USA_ISSUER,
        _token(AUDITOR, key),
        datetime.now(UTC) + timedelta(minutes=10),
        key,
    ).save(path)
    return path


def test_cli_prints_verified_entries(w: World, tmp_path: Path) -> None:
    path = _saved(w, tmp_path)
    done = CliRunner().invoke(cli, ["remote", "audit", "gbr", "--session", str(path)])
    assert done.exit_code == 0, done.output
    assert "cosigned by the USA witness" in done.output
    lines = [line for line in done.output.splitlines() if line.startswith("✓ ")]
    assert f"✓ {w.usa_person}\t" in done.output and f"✓ {w.usa_object}\t" in done.output
    assert all(not line.startswith(f"✓ {w.gbr_only}\t") for line in lines)
    assert "entries concerning USA verified" in done.output


def test_cli_fails_loudly_on_a_tampered_entry(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def flip(data: dict[str, Any]) -> None:
        body = bytearray(base64.b64decode(data["entries"][0]["body"]))
        body[-3] ^= 1
        data["entries"][0]["body"] = base64.b64encode(bytes(body)).decode()

    _lying(monkeypatch, flip)
    path = _saved(w, tmp_path)
    done = CliRunner().invoke(cli, ["remote", "audit", "GBR", "--session", str(path)])
    assert done.exit_code == 5, done.output
    assert "REJECTED" in done.output and "not in the cosigned tree" in done.output
    assert "✓ " not in done.output


# -- the rule and the wire format ------------------------------------------------------


def test_evident_nations_reads_only_the_entry() -> None:
    assert evident_nations({"subject": "usa-eng-x@USA"}) == {"USA"}
    assert evident_nations({"nation": "USA", "originator": "GBR"}) == {"USA", "GBR"}
    assert evident_nations({"members": ["AUS", "GBR", "USA"]}) == {"AUS", "GBR", "USA"}
    assert evident_nations({"by": "usa-eng-x", "document": "doc-usa"}) == frozenset()
    # no impostor forms: lower case, a longer code, "@" in the middle, a nested field
    assert (
        evident_nations(
            {
                "by": "x@usa",
                "actor": "x@USAF",
                "subject": "a@USA@GBR",
                "nation": "usa",
                "attestation": {"nation": "USA"},
            }
        )
        == frozenset()
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_hash = st.binary(min_size=32, max_size=32)
_pages = st.builds(
    UnverifiedPartnerPage,
    nation=st.sampled_from(["USA", "GBR", "AUS"]),
    checkpoint=st.text(max_size=200),
    tree_size=st.integers(0, 1 << 40),
    entries=st.lists(
        st.builds(
            ProvedEntry,
            index=st.integers(0, 1 << 40),
            body=st.binary(max_size=200),
            proof=st.lists(_hash, max_size=8).map(tuple),
        ),
        max_size=5,
    ).map(tuple),
    next_from=st.none() | st.integers(0, 1 << 40),
)


@settings(max_examples=200, deadline=None)
@given(_pages)
def test_wire_format_round_trips(page: UnverifiedPartnerPage) -> None:
    assert page_from_json(json.loads(json.dumps(page_to_json(page)))) == page


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _json,
        st.builds(
            lambda p, k, v: {**page_to_json(p), k: v},
            _pages,
            st.sampled_from(["nation", "tree_size", "entries", "next", "checkpoint", "extra"]),
            _json,
        ),
    )
)
def test_parser_refuses_junk_with_one_error(data: Any) -> None:
    try:
        page_from_json(data)
    except PartnerPageRejected as exc:
        assert exc.reason == "malformed"
