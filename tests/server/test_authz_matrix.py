"""The authorisation matrix: every route and console form x every role x own and
foreign nation x a document the caller may know of and one they may not.

One table (:data:`TABLE`) says, for each route, the permission it must declare, how
to build a request, and the outcome each caller must get -- written from the
rules as docs/authz.md states them, not from the code that enforces them. The
test fails when a route is added without an entry, when a route declares another
permission than the table's, and for every cell whose outcome differs.

"Own" is GBR, the nation every target belongs to (a GBR document, person,
clearance; the node's own nation); "foreign" callers are USA (a member) and JPN
(a partner). The two documents: ``shared`` (GBR, SECRET, REL TO USA and JPN)
and ``hidden`` (GBR, SECRET, releasable to GBR alone).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.audit.config import node_signer
from relto.audit.note import NoteSigner
from relto.audit.witnessing import Cosignature
from relto.authz import Permission, Principal
from relto.config import Settings
from relto.node import Node
from relto.partnership import Project
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE
from relto.server.console._confirm import confirm_tokens
from relto.server.edge import routes_of
from relto.vetting import Person, Role, Status

P = Permission
ENGINEER, SO, VO, AUDITOR = "engineer", "security_officer", "vetting_officer", "auditor"
ECO = "export_control_officer"


@dataclass(frozen=True)
class Caller:
    key: str
    person_id: str | None
    role: str = ""
    own: bool = False  # of GBR, the nation every target belongs to

    @property
    def signed_in(self) -> bool:
        return self.person_id is not None


CALLERS = (
    Caller("anonymous", None),
    Caller("own-engineer", "gbr-eng-harper", ENGINEER, True),
    Caller("own-security-officer", "gbr-so-whitfield", SO, True),
    Caller("own-vetting-officer", "gbr-vo-okafor", VO, True),
    Caller("own-auditor", "gbr-aud-patel", AUDITOR, True),
    Caller("own-export-control-officer", "gbr-eco-matrix", ECO, True),
    Caller("foreign-engineer", "jpn-eng-sato", ENGINEER),
    Caller("foreign-security-officer", "usa-so-bennett", SO),
    Caller("foreign-vetting-officer", "usa-vo-matrix", VO),
    Caller("foreign-auditor", "usa-aud-matrix", AUDITOR),
)
#: Who may read a GBR SECRET hypersonics document (cleared, on the project, GBR).
READERS = {"own-engineer", "own-security-officer"}
#: Roles a caller holds besides ``Caller.role``: the demo makes Bennett, USA's
#: security officer, USA's export-control officer too.
ALSO = {"usa-so-bennett": ECO}
#: The target of vetting and decision-explorer routes: an own engineer.
TARGET = "gbr-eng-harper"
VARIANTS = ("shared", "hidden")
#: The justification every change in the matrix gives.
WHY = "authorisation matrix test"


@dataclass
class World:
    node: Node
    shared: str
    hidden: str
    counter: Iterator[int] = field(default_factory=itertools.count)
    free_pairs: list[tuple[str, str]] = field(default_factory=list)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def doc(self, variant: str) -> str:
        return self.shared if variant == "shared" else self.hidden

    def officer(self) -> Principal:
        found = self.node.directory.principal("gbr-so-whitfield", via="node")
        assert found is not None
        return found

    def admission(self) -> str:
        """A fresh admission (of a pair nobody holds yet) to end."""
        project, nation = self.free_pairs.pop()
        a = self.node.partnerships.admit(
            self.officer(), project_id=project, nation=nation, ceiling="RESTRICTED",
            at=datetime.now(UTC), justification=WHY,
        )  # fmt: skip
        return a.id

    def confirmed(self, action: str, params: dict[str, str]) -> dict[str, str]:
        """A console confirm form for ``params``, as its preview page renders it."""
        token = confirm_tokens(self.node.settings).issue(action, params)
        return {**params, "confirm": token, "justification": WHY}

    def clearance(self, *, granted: bool) -> str:
        """A fresh clearance of the own target (sponsored, or granted)."""
        vetting = self.node.vetting
        now = datetime.now(UTC)
        c = vetting.sponsor_clearance(
            person_id="gbr-matrix-target", nation="GBR", level="SC", sponsor="MOD", at=now,
            actor="matrix", reason="matrix",
        )  # fmt: skip
        if granted:
            for to in (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED):
                vetting.transition(c.id, to, at=now, actor="matrix", reason="matrix")
        return c.id


@dataclass(frozen=True)
class Outcome:
    status: int
    #: For a console form: whether the redirect carries the "bad" flash.
    bad: bool | None = None
    #: Text that must appear (True) or must not (False) in the body.
    marker: tuple[str, bool] | None = None


Build = Callable[[World, str], tuple[str, str, dict[str, Any]]]
Expect = Callable[[Caller, str], Outcome | int]


@dataclass(frozen=True)
class Row:
    permission: Permission
    build: Build
    expect: Expect
    #: The document variant matters for this route.
    per_object: bool = False
    #: A console page: signed-out callers are sent to sign in.
    console: bool = False


def get(path: str, **params: Any) -> Build:
    return lambda w, v: ("GET", path.format(doc=w.doc(v)), {"params": params})


def always(status: int) -> Expect:
    return lambda c, v: status


def signed_in(status: int) -> Expect:
    return lambda c, v: status if c.signed_in else 401


def role_or_404(ok: int, roles: set[str], *, own_only: bool, self_ok: bool = False) -> Expect:
    def expect(c: Caller, v: str) -> int:
        if not c.signed_in:
            return 401
        if self_ok and c.person_id == TARGET:
            return ok
        return ok if c.role in roles and (c.own or not own_only) else 404

    return expect


def knows(c: Caller, v: str) -> bool:
    """The caller may know the document exists (USA and JPN are in shared's REL TO)."""
    return v == "shared" or c.own


def object_read(c: Caller, v: str) -> int:
    if not c.signed_in:
        return 401
    return 200 if knows(c, v) and c.key in READERS else 404


def console_form(allowed: Callable[[Caller, str], bool]) -> Expect:
    def expect(c: Caller, v: str) -> Outcome:
        return Outcome(303, bad=not allowed(c, v))

    return expect


def page(marker: str, shown: Callable[[Caller, str], bool]) -> Expect:
    def expect(c: Caller, v: str) -> Outcome:
        return Outcome(200, marker=(marker, shown(c, v)))

    return expect


def is_so(c: Caller, v: str = "") -> bool:
    return c.role == SO


def preview(allowed: Callable[[Caller, str], bool]) -> Expect:
    """A console preview: the effect and a confirm form, or back with a refusal."""

    def expect(c: Caller, v: str) -> Outcome:
        if allowed(c, v):
            return Outcome(200, marker=('id="change-preview"', True))
        return Outcome(303, bad=True)

    return expect


def admission_form(w: World) -> dict[str, str]:
    project, nation = w.free_pairs.pop()
    return {"project_id": project, "nation": nation, "ceiling": "RESTRICTED",
            "valid_until": "", "note": ""}  # fmt: skip


def relabel_form(w: World, v: str) -> dict[str, str]:
    return {"doc_id": w.doc(v), "rel_to": "JPN,USA" if v == "shared" else ""}


def upload_form() -> dict[str, Any]:
    return {
        "data": {"title": "Matrix", "project_id": "hypersonic", "classification": "SECRET",
                 "rel_to": ["USA"]},
        "files": {"file": ("m.txt", b"matrix upload", "text/plain")},
    }  # fmt: skip


def holds(c: Caller, *roles: str) -> bool:
    """The caller holds one of ``roles`` (for their own nation)."""
    return c.role in roles or ALSO.get(c.person_id or "") in roles


def export_doc(w: World) -> str:
    """A fresh GBR document to classify (the matrix's own two stay unclassified)."""
    harper = w.node.directory.principal("gbr-eng-harper", via="node")
    assert harper is not None
    return w.node.documents.upload(
        harper, title="Matrix export", project_id="hypersonic", classification="SECRET",
        rel_to=[], filename="m.txt", media_type="text/plain", data=b"matrix export",
        at=datetime.now(UTC),
    ).id  # fmt: skip


def uk_licence(number: str) -> dict[str, Any]:
    """A UK_STRATEGIC licence: GBR's, so the own export-control officer's to record."""
    return {"number": number, "regime": "UK_STRATEGIC", "kind": "SIEL", "items": ["ML22"],
            "organisations": ["MOD"], "nationalities": ["GBR"], "end_use": "matrix",
            "valid_from": "2026-01-01", "valid_until": "2030-01-01"}  # fmt: skip


def own_officer_or_self(c: Caller, v: str) -> bool:
    return c.person_id == TARGET or (c.own and c.role in (SO, AUDITOR))


def console_classify(w: World) -> dict[str, str]:
    """The console's classification of a fresh GBR document (not controlled)."""
    record = json.dumps({"controlled": False, "kind": "technical_data"}, sort_keys=True,
                        separators=(",", ":"))  # fmt: skip
    return {"fact": "classification", "target": export_doc(w), "record": record}


def is_tracer(c: Caller, v: str = "") -> bool:
    """A security officer or auditor of the node's own nation (tracing:trace)."""
    return c.own and c.role in (SO, AUDITOR)


def own_eco(c: Caller, v: str = "") -> bool:
    return c.own and holds(c, ECO)


TABLE: dict[tuple[str, str], Row] = {
    # -- operations and the framework: public ------------------------------------------
    ("GET", "/healthz"): Row(P.NODE_OPERATE, get("/healthz"), always(200)),
    # Public to persons, but only a loopback peer or RELTO_METRICS_TOKEN may scrape:
    # this client is remote (tests/server/test_metrics.py has both).
    ("GET", "/metrics"): Row(P.NODE_OPERATE, get("/metrics"), always(401)),
    ("GET", "/openapi.json"): Row(P.NODE_OPERATE, get("/openapi.json"), always(200)),
    ("GET", "/docs"): Row(P.NODE_OPERATE, get("/docs"), always(200)),
    ("GET", "/docs/oauth2-redirect"): Row(
        P.NODE_OPERATE, get("/docs/oauth2-redirect"), always(200)
    ),
    ("GET", "/redoc"): Row(P.NODE_OPERATE, get("/redoc"), always(200)),
    ("GET", "/docs/assets/{name}"): Row(
        P.NODE_OPERATE, get("/docs/assets/swagger-ui-bundle.js"), always(200)
    ),
    ("*", "/static"): Row(P.NODE_OPERATE, get("/static/console.css"), always(200)),
    # -- the transparency log ----------------------------------------------------------
    ("GET", "/api/v1/audit/checkpoint"): Row(
        P.AUDIT_LOG_READ, get("/api/v1/audit/checkpoint"), always(200)
    ),
    # The fixture keeps a partner's cosignature of a checkpoint, so there is one to show.
    ("GET", "/api/v1/audit/checkpoint/cosigned"): Row(
        P.AUDIT_LOG_READ, get("/api/v1/audit/checkpoint/cosigned"), always(200)
    ),
    ("GET", "/api/v1/audit/proof/inclusion"): Row(
        P.AUDIT_LOG_READ, get("/api/v1/audit/proof/inclusion", index=0), always(200)
    ),
    ("GET", "/api/v1/audit/proof/consistency"): Row(
        P.AUDIT_LOG_READ, get("/api/v1/audit/proof/consistency", first=1), always(200)
    ),
    ("GET", "/api/v1/audit/tile/{path:path}"): Row(
        P.AUDIT_LOG_READ, get("/api/v1/audit/tile/0/000.p/1"), always(200)
    ),
    # Entry 0 (the partnership's creation) concerns every nation of the partnership.
    ("GET", "/api/v1/audit/entries"): Row(
        P.AUDIT_ENTRIES_READ,
        get("/api/v1/audit/entries", start=0, end=1),
        role_or_404(200, {SO, AUDITOR}, own_only=False),
    ),
    ("GET", "/api/v1/audit/tile/entries/{path:path}"): Row(
        P.AUDIT_ENTRIES_READ,
        get("/api/v1/audit/tile/entries/000.p/1"),
        role_or_404(200, {SO, AUDITOR}, own_only=False),
    ),
    # A partner auditor's view: only an attested auditor or security officer of the
    # nation asked for (tests/federation/test_partner_auditor.py); no local caller.
    ("GET", "/api/v1/audit/partner/entries"): Row(
        P.AUDIT_PARTNER_ENTRIES_READ,
        get("/api/v1/audit/partner/entries", nation="USA"),
        lambda c, v: 404 if c.signed_in else 401,
    ),
    # Partner logs' witness: authenticated by the signatures in the request itself.
    ("POST", "/api/v1/audit/witness/add-checkpoint"): Row(
        P.AUDIT_WITNESS_WRITE,
        lambda w, v: ("POST", "/api/v1/audit/witness/add-checkpoint", {"content": b"junk"}),
        always(400),
    ),
    # A partner's report that its own log was altered: judged by its signature.
    ("POST", "/api/v1/audit/integrity/report"): Row(
        P.AUDIT_INTEGRITY_REPORT,
        lambda w, v: ("POST", "/api/v1/audit/integrity/report", {"json": {"report": "a.b.c"}}),
        always(400),
    ),
    # Forks and rollbacks witnessing saw: for people of the node's own nation.
    ("GET", "/api/v1/audit/witness/alarms"): Row(
        P.FEDERATION_ATTEST,
        get("/api/v1/audit/witness/alarms"),
        lambda c, v: 401 if not c.signed_in else 200 if c.own else 404,
    ),
    # -- the key access service ----------------------------------------------------------
    ("POST", "/kas.AccessService/PublicKey"): Row(
        P.KAS_KEYS_READ,
        lambda w, v: ("POST", "/kas.AccessService/PublicKey", {"json": {}}),
        always(200),
    ),
    # Sessions are not credentials for the KAS: a token or nothing.
    ("POST", "/kas.AccessService/Rewrap"): Row(
        P.KAS_REWRAP,
        lambda w, v: (
            "POST",
            "/kas.AccessService/Rewrap",
            {"json": {"signedRequestToken": "x.y.z"}},
        ),
        always(401),
    ),
    ("GET", "/.well-known/opentdf-configuration"): Row(
        P.KAS_KEYS_READ, get("/.well-known/opentdf-configuration"), always(200)
    ),
    # -- federation, the home side: public documents; attestations for the own nation --
    ("GET", "/.well-known/relto-node"): Row(
        P.FEDERATION_DESCRIPTOR_READ, get("/.well-known/relto-node"), always(200)
    ),
    ("GET", "/api/v1/federation/status/{list_id}"): Row(
        P.FEDERATION_STATUS_READ, get("/api/v1/federation/status/1"), always(200)
    ),
    # A session is no DPoP proof: the own nation's people get 401 (a token with a
    # proof is needed, tests/federation/test_home_api.py), others 404.
    ("POST", "/api/v1/federation/attestation"): Row(
        P.FEDERATION_ATTEST,
        lambda w, v: ("POST", "/api/v1/federation/attestation", {"json": {}}),
        lambda c, v: 401 if not c.signed_in or c.own else 404,
    ),
    ("GET", "/api/v1/federation/partners"): Row(
        P.FEDERATION_ATTEST,
        get("/api/v1/federation/partners"),
        lambda c, v: 401 if not c.signed_in else 200 if c.own else 404,
    ),
    ("GET", "/api/v1/federation/partners/status"): Row(
        P.FEDERATION_ATTEST,
        get("/api/v1/federation/partners/status"),
        lambda c, v: 401 if not c.signed_in else 200 if c.own else 404,
    ),
    # -- demo sign-in (demo mode only) ---------------------------------------------------
    ("GET", "/login"): Row(P.SESSION_MANAGE, get("/login"), always(200)),
    ("POST", "/login"): Row(
        P.SESSION_MANAGE,
        lambda w, v: ("POST", "/login", {"data": {"person_id": "nobody", "next": "/console"}}),
        always(303),
    ),
    ("POST", "/logout"): Row(
        P.SESSION_MANAGE, lambda w, v: ("POST", "/logout", {"data": {}}), always(303)
    ),
    ("POST", "/logout/everywhere"): Row(
        P.SESSION_MANAGE, lambda w, v: ("POST", "/logout/everywhere", {"data": {}}), always(303)
    ),
    # -- sign-in at the node's own OIDC issuer (public; 404 on a node without a client id,
    # as this demo node is: tests/product/test_oidc_login.py runs the flow itself) ----------
    ("GET", "/login/oidc"): Row(P.SESSION_MANAGE, get("/login/oidc"), always(404)),
    ("GET", "/login/oidc/callback"): Row(
        P.SESSION_MANAGE, get("/login/oidc/callback", code="c", state="s"), always(404)
    ),
    ("GET", "/"): Row(P.CONSOLE_USE, get("/"), always(303)),
    # -- console pages -----------------------------------------------------------------------
    ("GET", "/console"): Row(P.PARTNERSHIP_READ, get("/console"), always(200), console=True),
    ("POST", "/console/admissions/preview"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: ("POST", "/console/admissions/preview", {"data": admission_form(w)}),
        preview(is_so),
        console=True,
    ),
    ("POST", "/console/admissions"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            "/console/admissions",
            {"data": w.confirmed("admission.admit", admission_form(w))},
        ),
        console_form(is_so),
        console=True,
    ),
    ("POST", "/console/admissions/{admission_id}/end/preview"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: ("POST", f"/console/admissions/{w.admission()}/end/preview", {"data": {}}),
        preview(is_so),
        console=True,
    ),
    ("POST", "/console/admissions/{admission_id}/end"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            f"/console/admissions/{(a := w.admission())}/end",
            {"data": w.confirmed("admission.end", {"admission_id": a})},
        ),
        console_form(is_so),
        console=True,
    ),
    ("GET", "/console/people"): Row(
        P.PEOPLE_READ, get("/console/people"), always(200), console=True
    ),
    ("GET", "/console/people/{person_id}"): Row(
        P.PEOPLE_READ,
        get(f"/console/people/{TARGET}"),
        lambda c, v: (
            200 if c.person_id == TARGET or (c.own and c.role in (SO, VO, AUDITOR)) else 404
        ),
        console=True,
    ),
    ("POST", "/console/people/{person_id}/clearances/{clearance_id}/transition"): Row(
        P.CLEARANCES_ADJUDICATE,
        lambda w, v: (
            "POST",
            f"/console/people/gbr-matrix-target/clearances/{w.clearance(granted=False)}/transition",
            {"data": {"to": "investigating", "reason": "matrix"}},
        ),
        console_form(lambda c, v: c.own and c.role == VO),
        console=True,
    ),
    ("POST", "/console/changes/{change_id}/decision"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            f"/console/changes/{'0' * 64}/decision",
            {"data": {"decision": "approve", "justification": WHY}},
        ),
        console_form(lambda c, v: False),  # no such change: back, refused, for everyone
        console=True,
    ),
    ("GET", "/console/documents"): Row(
        P.OBJECTS_LIST,
        get("/console/documents"),
        lambda c, v: Outcome(200, marker=("Matrix hidden", c.own)),
        console=True,
    ),
    ("GET", "/console/documents/new"): Row(
        P.OBJECTS_CREATE, get("/console/documents/new"), always(200), console=True
    ),
    ("POST", "/console/documents/new"): Row(
        P.OBJECTS_CREATE,
        lambda w, v: ("POST", "/console/documents/new", upload_form()),
        lambda c, v: 303 if c.key in READERS else 422,
        console=True,
    ),
    ("GET", "/console/documents/{doc_id}"): Row(
        P.OBJECTS_METADATA_READ,
        get("/console/documents/{doc}"),
        lambda c, v: 200 if knows(c, v) else 404,
        per_object=True,
        console=True,
    ),
    ("POST", "/console/documents/{doc_id}/open"): Row(
        P.OBJECTS_READ,
        lambda w, v: ("POST", f"/console/documents/{w.doc(v)}/open", {"data": {}}),
        lambda c, v: (
            Outcome(200, marker=('id="decision-allowed"', c.key in READERS)) if knows(c, v) else 404
        ),
        per_object=True,
        console=True,
    ),
    ("POST", "/console/documents/{doc_id}/download"): Row(
        P.OBJECTS_DOWNLOAD,
        lambda w, v: ("POST", f"/console/documents/{w.doc(v)}/download", {"data": {}}),
        # a reader gets their own fingerprinted copy (never the plaintext as
        # uploaded: issue 17); anyone else who may know of it, the page with the denial
        lambda c, v: (
            Outcome(200, marker=('id="decision-denied"', c.key not in READERS))
            if knows(c, v)
            else 404
        ),
        per_object=True,
        console=True,
    ),
    # -- partner documents: this demo node pins no partner, so every one is not found --
    ("GET", "/console/partners/{nation}/documents/{doc_id}"): Row(
        P.OBJECTS_METADATA_READ,
        get("/console/partners/USA/documents/{doc}"),
        always(404),
        console=True,
    ),
    ("POST", "/console/partners/{nation}/documents/{doc_id}/open"): Row(
        P.OBJECTS_READ,
        lambda w, v: ("POST", f"/console/partners/USA/documents/{w.doc(v)}/open", {"data": {}}),
        always(404),
        console=True,
    ),
    ("POST", "/console/partners/{nation}/documents/{doc_id}/download"): Row(
        P.OBJECTS_DOWNLOAD,
        lambda w, v: (
            "POST",
            f"/console/partners/USA/documents/{w.doc(v)}/download",
            {"data": {}},
        ),
        always(404),
        console=True,
    ),
    ("POST", "/console/documents/{doc_id}/relabel/preview"): Row(
        P.OBJECTS_RELABEL,
        lambda w, v: (
            "POST",
            f"/console/documents/{w.doc(v)}/relabel/preview",
            {"data": {"rel_to": ["USA", "JPN"] if v == "shared" else []}},
        ),
        preview(lambda c, v: c.key == "own-security-officer"),
        per_object=True,
        console=True,
    ),
    ("POST", "/console/documents/{doc_id}/relabel"): Row(
        P.OBJECTS_RELABEL,
        lambda w, v: (
            "POST",
            f"/console/documents/{w.doc(v)}/relabel",
            {
                "data": {
                    **w.confirmed("document.relabel", relabel_form(w, v)),
                    "rel_to": ["USA", "JPN"] if v == "shared" else [],
                }
            },
        ),
        console_form(lambda c, v: c.key == "own-security-officer"),
        per_object=True,
        console=True,
    ),
    ("GET", "/console/decisions"): Row(
        P.DECISIONS_EXPLAIN,
        lambda w, v: (
            "GET",
            "/console/decisions",
            {"params": {"person_id": TARGET, "doc_id": w.doc(v), "action": "read"}},
        ),
        page('id="decision"', lambda c, v: knows(c, v) and own_officer_or_self(c, v)),
        per_object=True,
        console=True,
    ),
    ("GET", "/console/what-if"): Row(
        P.DECISIONS_WHAT_IF,
        get("/console/what-if", nation="JPN", project="undersea", ceiling="SECRET"),
        page('id="whatif-result"', is_so),
        console=True,
    ),
    ("GET", "/console/audit"): Row(
        P.AUDIT_ENTRIES_READ,
        get("/console/audit"),
        page('id="audit-entries"', lambda c, v: c.role in (SO, AUDITOR)),
        console=True,
    ),
    # -- the export-control office's console (relto.server.console.export) ----------------
    ("GET", "/console/trace"): Row(
        P.TRACING_TRACE,
        get("/console/trace"),
        lambda c, v: Outcome(200, marker=('id="trace-form"', True)) if is_tracer(c) else 404,
        console=True,
    ),
    ("POST", "/console/trace"): Row(
        P.TRACING_TRACE,
        lambda w, v: (
            "POST",
            "/console/trace",
            {"data": {}, "files": {"file": ("leak.txt", b"not a leaked copy", "text/plain")}},
        ),
        # allowed: the file is no copy (422, said on the page); anyone else: not found
        lambda c, v: Outcome(422, marker=('id="trace-error"', True)) if is_tracer(c) else 404,
        console=True,
    ),
    ("GET", "/console/export"): Row(
        P.EXPORT_FACTS_READ,
        get("/console/export"),
        page('id="export-items"', lambda c, v: holds(c, ECO, SO, AUDITOR)),
        console=True,
    ),
    # A classification is the originator's (GBR): only GBR's export officer is shown
    # the record to confirm; Bennett (USA) does not even know the object.
    ("POST", "/console/export/{fact}/preview"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "POST",
            "/console/export/classification/preview",
            {"data": {"document_id": export_doc(w), "controlled": "no", "kind": "hardware"}},
        ),
        lambda c, v: (
            Outcome(200, marker=('id="export-preview"', True))
            if own_eco(c)
            else Outcome(303, bad=True)
        ),
        console=True,
    ),
    ("POST", "/console/export/{fact}"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "POST",
            "/console/export/classification",
            {"data": w.confirmed("export.classification", console_classify(w))},
        ),
        console_form(own_eco),
        console=True,
    ),
    # The check is the originating nation's (GBR) officers'; others see no answer.
    ("POST", "/console/export/check"): Row(
        P.EXPORT_CHECK,
        lambda w, v: (
            "POST",
            "/console/export/check",
            {"data": {"person_id": TARGET, "document_id": w.doc(v), "action": "read"}},
        ),
        page('id="export-check-reasons"', lambda c, v: c.own and holds(c, ECO, SO)),
        per_object=True,
        console=True,
    ),
    ("GET", "/console/export/records"): Row(
        P.EXPORT_RECORDS_READ,
        get("/console/export/records"),
        page('id="export-records"', lambda c, v: holds(c, ECO, AUDITOR)),
        console=True,
    ),
    ("GET", "/console/export/records/download"): Row(
        P.EXPORT_RECORDS_READ,
        get("/console/export/records/download", format="csv"),
        lambda c, v: 200 if holds(c, ECO, AUDITOR) else 404,
        console=True,
    ),
    # -- partnerships ----------------------------------------------------------------------
    ("GET", "/api/v1/partnerships"): Row(
        P.PARTNERSHIP_READ, get("/api/v1/partnerships"), signed_in(200)
    ),
    ("POST", "/api/v1/partnerships"): Row(
        P.ADMIN_PARTNERSHIPS_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/partnerships",
            {"json": {"id": w.unique("p"), "name": "x", "members": ["AUS", "GBR", "USA"]}},
        ),
        role_or_404(201, {SO}, own_only=False),
    ),
    ("GET", "/api/v1/partnerships/{partnership_id}"): Row(
        P.PARTNERSHIP_READ, get("/api/v1/partnerships/aukus-p2"), signed_in(200)
    ),
    ("GET", "/api/v1/partnerships/{partnership_id}/matrix"): Row(
        P.PARTNERSHIP_READ, get("/api/v1/partnerships/aukus-p2/matrix"), signed_in(200)
    ),
    ("GET", "/api/v1/projects"): Row(P.PARTNERSHIP_READ, get("/api/v1/projects"), signed_in(200)),
    ("POST", "/api/v1/projects"): Row(
        P.ADMIN_PROJECTS_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/projects",
            {"json": {"id": w.unique("pr"), "partnership_id": "aukus-p2", "name": "x"}},
        ),
        role_or_404(201, {SO}, own_only=False),
    ),
    ("GET", "/api/v1/projects/{project_id}"): Row(
        P.PARTNERSHIP_READ, get("/api/v1/projects/hypersonic"), signed_in(200)
    ),
    ("GET", "/api/v1/admissions"): Row(
        P.PARTNERSHIP_READ, get("/api/v1/admissions"), signed_in(200)
    ),
    ("POST", "/api/v1/admissions"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/admissions",
            {
                "json": dict(
                    zip(("project_id", "nation"), w.free_pairs.pop(), strict=True),
                    ceiling="RESTRICTED",
                    justification=WHY,
                )
            },
        ),
        role_or_404(201, {SO}, own_only=False),
    ),
    ("POST", "/api/v1/admissions/{admission_id}/end"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            f"/api/v1/admissions/{w.admission()}/end",
            {"json": {"justification": WHY}},
        ),
        role_or_404(200, {SO}, own_only=False),
    ),
    # -- quorum-signed partnership changes (relto.federation.ledger) -------------------------
    ("GET", "/api/v1/partnership/changes"): Row(
        P.PARTNERSHIP_READ,
        get("/api/v1/partnership/changes"),
        lambda c, v: 401 if not c.signed_in else 200 if c.own else 404,
    ),
    ("POST", "/api/v1/partnership/changes"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/partnership/changes",
            {
                "json": {
                    "kind": "project.create",
                    "payload": {"id": w.unique("matrix-project"), "name": "Matrix project"},
                    "justification": WHY,
                }
            },
        ),
        role_or_404(201, {SO}, own_only=True),
    ),
    ("POST", "/api/v1/partnership/changes/{change_id}/decision"): Row(
        P.ADMIN_ADMISSIONS_WRITE,
        lambda w, v: (
            "POST",
            f"/api/v1/partnership/changes/{'0' * 64}/decision",
            {"json": {"decision": "approve", "justification": WHY}},
        ),
        lambda c, v: 401 if not c.signed_in else 404,  # no such change, or not theirs
    ),
    ("POST", "/api/v1/partnership/changes/receive"): Row(
        P.PARTNERSHIP_CHANGES_RECEIVE,
        lambda w, v: (
            "POST",
            "/api/v1/partnership/changes/receive",
            {"json": {"change": "{}", "approvals": []}},
        ),
        always(400),  # public, and the content is what is judged: not a change
    ),
    # -- protected objects -------------------------------------------------------------------
    ("GET", "/api/v1/objects"): Row(
        P.OBJECTS_LIST,
        get("/api/v1/objects", limit=200),
        lambda c, v: Outcome(200, marker=("Matrix hidden", c.own)) if c.signed_in else 401,
    ),
    ("POST", "/api/v1/objects"): Row(
        P.OBJECTS_CREATE,
        lambda w, v: ("POST", "/api/v1/objects", upload_form()),
        lambda c, v: 401 if not c.signed_in else (201 if c.key in READERS else 422),
    ),
    ("GET", "/api/v1/objects/{object_id}"): Row(
        P.OBJECTS_METADATA_READ,
        get("/api/v1/objects/{doc}"),
        lambda c, v: 401 if not c.signed_in else (200 if knows(c, v) else 404),
        per_object=True,
    ),
    # The ciphertext: its key comes only from the KAS, which decides; the container
    # names the label, so it is shown to whoever may know the object exists.
    ("GET", "/api/v1/objects/{object_id}/container"): Row(
        P.OBJECTS_METADATA_READ,
        get("/api/v1/objects/{doc}/container"),
        lambda c, v: 401 if not c.signed_in else (200 if knows(c, v) else 404),
        per_object=True,
    ),
    ("GET", "/api/v1/objects/{object_id}/content"): Row(
        P.OBJECTS_DOWNLOAD, get("/api/v1/objects/{doc}/content"), object_read, per_object=True
    ),
    ("GET", "/api/v1/objects/{object_id}/decision"): Row(
        P.DECISIONS_EXPLAIN,
        get("/api/v1/objects/{doc}/decision", person_id=TARGET),
        lambda c, v: (
            401 if not c.signed_in else 200 if knows(c, v) and own_officer_or_self(c, v) else 404
        ),
        per_object=True,
    ),
    ("PUT", "/api/v1/objects/{object_id}/rel-to"): Row(
        P.OBJECTS_RELABEL,
        lambda w, v: (
            "PUT",
            f"/api/v1/objects/{w.doc(v)}/rel-to",
            {"json": {"rel_to": ["USA", "JPN"] if v == "shared" else [], "justification": WHY}},
        ),
        lambda c, v: 401 if not c.signed_in else (200 if c.key == "own-security-officer" else 404),
        per_object=True,
    ),
    # -- leak tracing (issue 17): the node's own security officers and auditors -----------
    ("POST", "/api/v1/trace"): Row(
        P.TRACING_TRACE,
        lambda w, v: (
            "POST",
            "/api/v1/trace",
            {"files": {"file": ("leak.txt", b"not a leaked copy", "text/plain")}},
        ),
        role_or_404(422, {SO, AUDITOR}, own_only=True),  # allowed: the file is no copy
    ),
    ("POST", "/api/v1/what-if"): Row(
        P.DECISIONS_WHAT_IF,
        lambda w, v: (
            "POST",
            "/api/v1/what-if",
            {"json": {"changes": ["admit:JPN:undersea:SECRET"]}},
        ),
        role_or_404(200, {SO}, own_only=False),
    ),
    # -- the export-control office (relto.export_office; docs/export_control.md) -------------
    # Every export officer and reader reads the facts of their own nation.
    ("GET", "/api/v1/export/facts"): Row(
        P.EXPORT_FACTS_READ,
        get("/api/v1/export/facts"),
        role_or_404(200, {ECO, SO, AUDITOR}, own_only=False),
    ),
    # A classification is the object's originator's (GBR): Bennett, USA's officer, may not.
    ("PUT", "/api/v1/export/items/{object_id}"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "PUT",
            f"/api/v1/export/items/{export_doc(w)}",
            {
                "json": {
                    "classification": {"controlled": False, "kind": "technical_data"},
                    "justification": WHY,
                }
            },
        ),
        role_or_404(200, {ECO}, own_only=True),
    ),
    # A new party is the recording officer's nation's: every export officer may.
    ("PUT", "/api/v1/export/parties/{party_id}"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "PUT",
            f"/api/v1/export/parties/{(pid := w.unique('matrix-party'))}",
            {
                "json": {
                    "party": {"id": pid, "location": "GBR", "nationalities": ["GBR"]},
                    "justification": WHY,
                }
            },
        ),
        lambda c, v: 401 if not c.signed_in else 200 if holds(c, ECO) else 404,
    ),
    # Licences, lists and rules are the regime's nation's: UK_STRATEGIC is GBR's.
    ("PUT", "/api/v1/export/licences/{number}"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "PUT",
            f"/api/v1/export/licences/{(n := w.unique('SIEL-MATRIX'))}",
            {"json": {"licence": uk_licence(n), "justification": WHY}},
        ),
        role_or_404(200, {ECO}, own_only=True),
    ),
    ("POST", "/api/v1/export/lists"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/export/lists",
            {
                "json": {
                    "list": {
                        "regime": "UK_STRATEGIC",
                        "name": "Matrix list",
                        "version": w.unique("v"),
                        "source": "matrix",
                        "entries": [],
                    },
                    "justification": WHY,
                }
            },
        ),
        role_or_404(201, {ECO}, own_only=True),
    ),
    ("PUT", "/api/v1/export/rules/{regime}"): Row(
        P.EXPORT_FACTS_WRITE,
        lambda w, v: (
            "PUT",
            "/api/v1/export/rules/UK_STRATEGIC",
            {"json": {"rules": {"value_threshold": "1000"}, "justification": WHY}},
        ),
        role_or_404(200, {ECO}, own_only=True),
    ),
    # The check is for officers of the object's originating nation (GBR).
    ("POST", "/api/v1/export/check"): Row(
        P.EXPORT_CHECK,
        lambda w, v: (
            "POST",
            "/api/v1/export/check",
            {"json": {"person_id": TARGET, "object_id": w.doc(v)}},
        ),
        role_or_404(200, {ECO, SO}, own_only=True),
        per_object=True,
    ),
    # Records: export officers and auditors, each shown those of their own nation.
    ("GET", "/api/v1/export/records"): Row(
        P.EXPORT_RECORDS_READ,
        get("/api/v1/export/records", format="csv"),
        lambda c, v: 401 if not c.signed_in else 200 if holds(c, ECO, AUDITOR) else 404,
    ),
    # -- people and clearances ---------------------------------------------------------------
    ("GET", "/api/v1/people"): Row(P.PEOPLE_READ, get("/api/v1/people"), signed_in(200)),
    ("POST", "/api/v1/people"): Row(
        P.PEOPLE_WRITE,
        lambda w, v: (
            "POST",
            "/api/v1/people",
            {
                "json": {
                    "id": w.unique("gbr-new"),
                    "name": "New",
                    "nationalities": ["GBR"],
                    "organisation": "MOD",
                    "home_nation": "GBR",
                }
            },
        ),
        role_or_404(201, {SO, VO}, own_only=True),
    ),
    ("PUT", "/api/v1/people/{person_id}"): Row(
        P.PEOPLE_WRITE,
        lambda w, v: (
            "PUT",
            "/api/v1/people/gbr-matrix-target",
            {
                "json": {
                    "id": "gbr-matrix-target",
                    "name": "Target",
                    "nationalities": ["GBR"],
                    "organisation": "MOD",
                    "home_nation": "GBR",
                }
            },
        ),
        role_or_404(200, {SO, VO}, own_only=True),
    ),
    ("GET", "/api/v1/people/{person_id}"): Row(
        P.PEOPLE_READ,
        get(f"/api/v1/people/{TARGET}"),
        role_or_404(200, {SO, VO, AUDITOR}, own_only=True, self_ok=True),
    ),
    ("GET", "/api/v1/people/{person_id}/clearances"): Row(
        P.CLEARANCES_READ,
        get(f"/api/v1/people/{TARGET}/clearances"),
        role_or_404(200, {SO, VO, AUDITOR}, own_only=True, self_ok=True),
    ),
    ("GET", "/api/v1/clearances"): Row(
        P.CLEARANCES_READ, get("/api/v1/clearances"), signed_in(200)
    ),
    ("POST", "/api/v1/clearances"): Row(
        P.CLEARANCES_SPONSOR,
        lambda w, v: (
            "POST",
            "/api/v1/clearances",
            {
                "json": {
                    "person_id": "gbr-matrix-target",
                    "nation": "GBR",
                    "level": "SC",
                    "sponsor": "MOD",
                    "reason": "matrix",
                }
            },
        ),
        role_or_404(201, {SO, VO}, own_only=True),
    ),
    ("GET", "/api/v1/clearances/{clearance_id}"): Row(
        P.CLEARANCES_READ,
        get(f"/api/v1/clearances/demo-{TARGET}-1"),
        role_or_404(200, {SO, VO, AUDITOR}, own_only=True, self_ok=True),
    ),
    ("GET", "/api/v1/clearances/{clearance_id}/history"): Row(
        P.CLEARANCES_READ,
        get(f"/api/v1/clearances/demo-{TARGET}-1/history"),
        role_or_404(200, {SO, VO, AUDITOR}, own_only=True, self_ok=True),
    ),
    ("POST", "/api/v1/clearances/{clearance_id}/transitions"): Row(
        P.CLEARANCES_ADJUDICATE,
        lambda w, v: (
            "POST",
            f"/api/v1/clearances/{w.clearance(granted=False)}/transitions",
            {"json": {"to": "investigating", "reason": "matrix"}},
        ),
        role_or_404(200, {VO}, own_only=True),
    ),
    ("POST", "/api/v1/clearances/{clearance_id}/reports"): Row(
        P.CLEARANCES_REPORT,
        lambda w, v: (
            "POST",
            f"/api/v1/clearances/{w.clearance(granted=True)}/reports",
            {
                "json": {
                    "kind": "foreign_travel",
                    "occurred_on": date.today().isoformat(),
                    "reason": "matrix",
                    "expected": True,
                }
            },
        ),
        role_or_404(200, {SO, VO}, own_only=True),
    ),
    ("POST", "/api/v1/clearances/{clearance_id}/incidents"): Row(
        P.CLEARANCES_SUPERVISE,
        lambda w, v: (
            "POST",
            f"/api/v1/clearances/{w.clearance(granted=True)}/incidents",
            {"json": {"kind": "breach", "reason": "matrix"}},
        ),
        role_or_404(200, {SO, VO}, own_only=True),
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World]]:
    data: Path = tmp_path_factory.mktemp("matrix")
    partner_log = NoteSigner.generate("relto/usa/audit").verifier().vkey
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELTO_AUDIT_WITNESS_LOGS", partner_log)  # so the witness route exists
        app = create_app(Settings(demo=True, data_dir=data))
    node: Node = app.state.node
    now = datetime.now(UTC)
    for pid, name, role in (
        ("usa-vo-matrix", "USA Vetting", Role.VETTING_OFFICER),
        ("usa-aud-matrix", "USA Auditor", Role.AUDITOR),
    ):
        node.vetting.register_person(
            Person(pid, name, frozenset({"USA"}), "DoD", "USA", frozenset({role})),
            at=now, actor="matrix",
        )  # fmt: skip
    node.vetting.register_person(
        Person("gbr-matrix-target", "Target", frozenset({"GBR"}), "MOD", "GBR"),
        at=now, actor="matrix",
    )  # fmt: skip
    node.vetting.register_person(
        Person("gbr-eco-matrix", "GBR Export", frozenset({"GBR"}), "MOD", "GBR",
               frozenset({Role.EXPORT_CONTROL_OFFICER})),
        at=now, actor="matrix",
    )  # fmt: skip
    harper = node.directory.principal("gbr-eng-harper", via="node")
    assert harper is not None
    docs = {}
    for title, rel_to in (("Matrix shared", ["USA", "JPN"]), ("Matrix hidden", [])):
        docs[title] = node.documents.upload(
            harper, title=title, project_id="hypersonic", classification="SECRET",
            rel_to=rel_to, filename="m.txt", media_type="text/plain",
            data=b"matrix content", at=now,
        ).id  # fmt: skip
    officer = node.directory.principal("gbr-so-whitfield", via="node")
    assert officer is not None
    for i in range(10):  # room for the admissions the matrix makes and ends
        node.partnerships.create_project(
            officer, Project(f"matrix-{i}", "aukus-p2", f"Matrix {i}"), now
        )
    overview = node.partnerships.overview(harper, None, now)
    assert overview is not None
    taken = {(a.project_id, a.nation) for a in overview.admissions}
    pairs = [
        (p.id, n) for p in overview.projects for n in overview.partnership.nations
        if (p.id, n) not in taken
    ]  # fmt: skip
    _keep_a_cosignature(node, now)
    w = World(node, docs["Matrix shared"], docs["Matrix hidden"], free_pairs=pairs)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client, w
    node.db.dispose()


def _keep_a_cosignature(node: Node, now: datetime) -> None:
    """A (USA) partner witness's cosignature of the node's current checkpoint."""
    assert node.witnessing is not None
    note = node.log.sign_checkpoint(node_signer(node.settings))
    body = note.partition("\n\n")[0] + "\n"
    witness = NoteSigner.generate("relto/usa/witness")
    sig = witness.cosign(body, int(now.timestamp()))
    size = int(body.split("\n")[1])
    node.witnessing.store.add(
        Cosignature(size, "USA", witness.cosignature_verifier().vkey, sig.line(),
                    int(now.timestamp()), now)
    )  # fmt: skip


def _session(client: TestClient, caller: Caller) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of ``caller`` (nothing for the anonymous)."""
    if caller.person_id is None:
        return {}, ""
    client.cookies.clear()
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/login").text)
    assert found
    data = {"person_id": caller.person_id, "next": "/console", "csrf": found.group(1)}
    r = client.post("/login", data=data)
    assert r.status_code == 303
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    client.cookies.clear()
    return {SESSION_COOKIE: cookie}, client.app.state.edge.auth.signer.csrf(cookie)  # type: ignore[attr-defined]


def test_every_route_has_an_entry_and_declares_its_permission(
    world: tuple[TestClient, World],
) -> None:
    client, _ = world
    seen = {(r.method, r.path): r.permission for r in routes_of(client.app)}  # type: ignore[arg-type]
    missing = sorted(set(seen) - set(TABLE))
    assert not missing, f"routes without an entry in the authorisation matrix: {missing}"
    stale = sorted(set(TABLE) - set(seen))
    assert not stale, f"matrix entries for routes that do not exist: {stale}"
    undeclared = sorted(k for k, p in seen.items() if p is None)
    assert not undeclared, f"routes that declare no permission: {undeclared}"
    wrong = {k: (seen[k], TABLE[k].permission) for k in seen if seen[k] != TABLE[k].permission}
    assert not wrong, f"declared vs expected permission: {wrong}"


#: Permissions no route declares: moving a clearance to suspended or under review
#: is ``clearances:restrict`` on the transitions route (tests/vetting/test_api.py);
#: key management and trust in partner nodes are the command line's
#: (tests/kas/test_kas_cli.py, tests/federation/test_cli.py).
BY_REQUEST = {P.CLEARANCES_RESTRICT, P.FEDERATION_TRUST_WRITE, P.KAS_KEYS_WRITE}


def test_every_permission_is_declared_by_a_route() -> None:
    used = {row.permission for row in TABLE.values()}
    assert set(Permission) - used == BY_REQUEST


CELLS = [
    (route, caller, variant)
    for route, row in TABLE.items()
    for caller in CALLERS
    for variant in (VARIANTS if row.per_object else ("shared",))
]


@pytest.mark.parametrize(
    ("route", "caller", "variant"),
    CELLS,
    ids=[f"{m} {p} | {c.key} | {v}" for (m, p), c, v in CELLS],
)
def test_matrix(
    world: tuple[TestClient, World], route: tuple[str, str], caller: Caller, variant: str
) -> None:
    client, w = world
    row = TABLE[route]
    cookies, csrf = _session(client, caller)
    method, path, kwargs = row.build(w, variant)
    kwargs = dict(kwargs)
    if csrf and method != "GET":
        if "data" in kwargs and path.startswith(("/console", "/logout")):
            kwargs["data"] = {**kwargs["data"], "csrf": csrf}
        else:
            kwargs["headers"] = {"x-csrf-token": csrf}
    for name, value in cookies.items():
        client.cookies.set(name, value)
    want = row.expect(caller, variant)
    outcome = want if isinstance(want, Outcome) else Outcome(want)
    shown = ""
    try:
        r = client.request(method, path, **kwargs)
        location = r.headers.get("location", "")
        if outcome.bad is not None and caller.signed_in and location.startswith("/console"):
            # the flash travels in a cookie bound to the session: the page shows it
            shown = client.get(location).text
    finally:
        client.cookies.clear()
    if row.console and not caller.signed_in:
        assert r.status_code == 303 and "/login" in r.headers["location"], r.status_code
        return
    assert r.status_code == outcome.status, (r.status_code, r.text[:300])
    if outcome.bad is not None:
        assert ('class="flash bad"' in shown) == outcome.bad, shown[:300]
        assert 'class="flash ok"' in shown or outcome.bad, shown[:300]
    if outcome.marker is not None:
        text, present = outcome.marker
        assert (text in r.text) == present, (text, present)
    if r.status_code == 404:
        for title in ("Matrix hidden", "Matrix shared"):
            assert title not in r.text  # a refusal names nothing


def test_every_permission_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "authz.md").read_text()
    assert [p.value for p in Permission if f"`{p.value}`" not in text] == []
