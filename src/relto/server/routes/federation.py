"""Federation, the home side: this node vouches for its own people.

- ``GET /.well-known/relto-node``: the node's signed descriptor (``application/jwt``),
  public (``federation:descriptor:read``);
- ``POST /api/v1/federation/attestation``: an attestation of the signed-in person
  (``federation:attest``: a person of this node's nation, signed in with an OIDC
  bearer token and a DPoP proof, whose key the attestation binds);
- ``GET /api/v1/federation/partners``: the partner nodes this node pins and will
  vouch for the signed-in person to -- nation, base URL, fingerprint, KAS URL,
  log and witness keys, and this node's own witness key
  (``federation:attest``: people of this node's nation only), what
  :meth:`relto.client.HomeSession.discover` and a partner auditor's checks read;
- ``GET /api/v1/federation/partners/status``: for each pinned partner, when it was
  last heard from (each way) and whether it is silent -- not heard from for more
  than ``RELTO_FEDERATION_PARTNER_SILENT_ROUNDS`` push intervals
  (``federation:attest``: people of this node's nation;
  :mod:`relto.federation.reachability`);
- ``GET /api/v1/federation/status/{list_id}``: the Token Status List the
  attestations name (``application/statuslist+jwt``), public
  (``federation:status:read``).

Thin edge: parse, call :class:`relto.federation.home.HomeFederation`, render. A
node without a federation address (no ``RELTO_PUBLIC_URL`` and not on loopback)
answers 404 on all five.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse

from relto.authz import Permission, Scope
from relto.errors import NotFound
from relto.federation.descriptor import read_pinned_descriptor
from relto.federation.errors import ProofRequired
from relto.federation.home import HomeFederation
from relto.server.auth import proof_key
from relto.server.edge import Edge, needs

__all__ = ["PREFIX", "mount"]

PREFIX = "/api/v1/federation"


def mount(app: FastAPI, edge: Edge) -> None:
    def home() -> HomeFederation:
        found = edge.node.federation
        if found is None:
            raise NotFound("this node publishes no federation documents")
        return found

    @app.get(
        "/.well-known/relto-node",
        tags=["federation"],
        summary="This node's signed descriptor (relto-node+jwt)",
        response_class=Response,
        **needs(Permission.FEDERATION_DESCRIPTOR_READ),
    )
    def descriptor() -> Response:
        token = home().descriptor(edge.clock())
        return Response(
            token, media_type="application/jwt", headers={"cache-control": "public, max-age=300"}
        )

    @app.post(
        f"{PREFIX}/attestation",
        tags=["federation"],
        summary="An attestation of the signed-in person, bound to their DPoP key",
        **needs(Permission.FEDERATION_ATTEST),
    )
    def attestation(request: Request) -> JSONResponse:
        who = edge.who(request)
        try:
            issued = home().attest(who, dpop_jkt=proof_key(request, who), now=edge.clock())
        except ProofRequired as exc:
            raise HTTPException(
                401,
                str(exc),
                headers={
                    "WWW-Authenticate": 'DPoP realm="relto", error="invalid_dpop_proof", '
                    'algs="ES256 EdDSA"'
                },
            ) from None
        return JSONResponse(
            {"attestation": issued.token, "expires_at": issued.expires_at.isoformat()},
            headers={"cache-control": "no-store"},
        )

    @app.get(
        f"{PREFIX}/partners",
        tags=["federation"],
        summary="The partner nodes this node pins and vouches for its people to",
        **needs(Permission.FEDERATION_ATTEST),
    )
    def partners(request: Request) -> JSONResponse:
        who = edge.who(request)
        nation = home().nation
        edge.node.authorizer.require(
            who, Permission.FEDERATION_ATTEST, Scope.of([nation]), target="partners"
        )
        pins = sorted(edge.node.trust.trusted().values(), key=lambda p: p.nation)
        return JSONResponse(
            {
                "nation": nation,
                "partners": [
                    {
                        "nation": p.nation,
                        "base_url": p.descriptor.base_url,
                        "kas_url": p.descriptor.base_url.rstrip("/") + "/kas",
                        "fingerprint": p.fingerprint,
                        "log_key": p.descriptor.log_key,
                        "witness_key": p.descriptor.witness_key,
                    }
                    for p in pins
                ],
                # What a partner auditor checks a partner's log with (ADR 0142): the
                # log keys pinned above and this node's own witness key.
                "witness_key": read_pinned_descriptor(home().descriptor(edge.clock())).witness_key,
            },
            headers={"cache-control": "no-store"},
        )

    @app.get(
        f"{PREFIX}/partners/status",
        tags=["federation"],
        summary="When each pinned partner node was last heard from; which are silent",
        **needs(Permission.FEDERATION_ATTEST),
    )
    def partners_status(request: Request) -> JSONResponse:
        who = edge.who(request)
        reach = edge.node.reachability
        if reach is None:
            raise NotFound("this node takes part in no federation")
        found = reach.read_status(who)

        def at(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return JSONResponse(
            {
                "nation": reach.nation,
                "silent_after_seconds": int(reach.bound.total_seconds()),
                "partners": [
                    {
                        "nation": p.nation,
                        "state": p.state,
                        "last_heard": at(p.last_heard),
                        "how": p.how or None,
                        "heard": {k: at(v) for k, v in sorted(p.heard.items())},
                        "missed_rounds": p.misses,
                        "last_miss": p.last_miss or None,
                        "silent_since": at(p.silent_since),
                    }
                    for p in found
                ],
            },
            headers={"cache-control": "no-store"},
        )

    @app.get(
        f"{PREFIX}/status/{{list_id}}",
        tags=["federation"],
        summary="A Token Status List of this node's attestations (statuslist+jwt)",
        response_class=Response,
        **needs(Permission.FEDERATION_STATUS_READ),
    )
    def status_list(
        list_id: Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")],
    ) -> Response:
        token = home().status_list(list_id, edge.clock())
        return Response(
            token,
            media_type="application/statuslist+jwt",
            headers={"cache-control": "no-cache, max-age=30"},
        )
