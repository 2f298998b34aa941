"""REST API of the export-control office (``/api/v1/export``, issue 16).

Thin edges: parse, call one :class:`relto.export_office.ExportOffice` method,
render. The office authorises every call through the one authorisation point
(``export:facts:write`` for the nation whose fact it is, ``export:facts:read``,
``export:check``, ``export:records:read``), validates facts with the strict
loaders of :mod:`relto.export_control` and records each change with its
justification. Refusals look like "not found"; bad facts are 422 and change
nothing.

A fact's body is the mapping the office takes (the scenario's ``export`` block,
party, licence, list or rules mapping): free-form here, checked by the office's
loaders, but bounded in depth and size before it gets there.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from pydantic import AfterValidator, BaseModel, Field

from relto.authz import Permission, Principal
from relto.errors import InvalidInput, NotFound
from relto.export_control import Regime
from relto.export_control.records import to_csv, to_json
from relto.export_office import ExportOffice
from relto.server.edge import Edge, needs
from relto.server.routes.partnership import Justification, Strict

__all__ = ["MAX_DEPTH", "MAX_NODES", "mount"]

#: How deep a fact's mapping may nest (a list's entries are three levels down).
MAX_DEPTH = 6
#: How many values, all levels together, a fact's mapping may hold.
MAX_NODES = 50_000

Ident = Annotated[str, Field(min_length=1, max_length=64)]
PathId = Annotated[str, Field(min_length=1, max_length=200)]
ExportAction = Literal["read", "download", "share", "ship", "manufacture"]


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse a mapping nested deeper than :data:`MAX_DEPTH` or holding more than
    :data:`MAX_NODES` values (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ValueError(f"more than {MAX_NODES} values")
        children: list[object] = []
        if isinstance(node, Mapping):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        if children and depth >= MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((c, depth + 1) for c in children)
    return value


#: One fact, as the office's loaders read it.
Fact = Annotated[
    dict[str, Any],
    AfterValidator(_bounded),
    Field(description="The mapping the office's strict loaders read (docs/export_control.md)."),
]


class ClassifyIn(Strict):
    classification: Fact
    justification: Justification


class PartyIn(Strict):
    party: Fact
    justification: Justification


class LicenceIn(Strict):
    licence: Fact
    justification: Justification


class ListIn(Strict):
    list: Fact
    justification: Justification


class RulesIn(Strict):
    rules: Fact
    justification: Justification


class CheckIn(Strict):
    person_id: Ident
    object_id: Ident
    action: ExportAction = "read"
    to: Ident | None = Field(
        None, description="For a share: the person it goes to from ``person_id``."
    )


class ClassifiedOut(BaseModel):
    object_id: str
    version: int


class PartyOut(BaseModel):
    id: str


class LicenceOut(BaseModel):
    number: str


class ListOut(BaseModel):
    regime: str
    name: str
    version: str


class RulesOut(BaseModel):
    regime: str


class ReasonOut(BaseModel):
    code: str
    sentence: str


class CheckOut(BaseModel):
    person_id: str
    object_id: str
    action: str
    to: str | None
    allowed: bool
    legal_basis: str | None
    licence_number: str | None
    reasons: list[ReasonOut]


class FactsOut(BaseModel):
    items: dict[str, dict[str, Any]]
    parties: list[dict[str, Any]]
    licences: list[dict[str, Any]]
    lists: list[dict[str, Any]]
    rules: dict[str, dict[str, Any]]
    pending: dict[str, dict[str, Any]] = Field(
        description="Objects withheld until an officer classifies them: the uploader's "
        "proposed classification, who proposed it and when"
    )


def parse_bound(value: str | None, name: str) -> datetime | None:
    """An ISO date (00:00 UTC that day) or an ISO datetime with a timezone."""
    if value is None or value == "":
        return None
    try:
        if "T" in value or " " in value:
            t = datetime.fromisoformat(value)
        else:
            d = date.fromisoformat(value)
            t = datetime(d.year, d.month, d.day, tzinfo=UTC)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO date (2026-01-31) or datetime with a timezone"
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidInput(f"{name} needs a timezone, e.g. 2026-01-31T09:00:00Z")
    return t


def _same(path_value: str, body: Mapping[str, Any], key: str) -> None:
    if body.get(key) != path_value:
        raise InvalidInput(f"the {key} in the body must match the URL")


def mount(app: FastAPI, edge: Edge) -> None:
    Who = Annotated[Principal, Depends(edge.who)]
    router = APIRouter(prefix="/api/v1/export", tags=["export control"])

    def office() -> ExportOffice:
        if edge.node.exports is None:
            raise NotFound("this node keeps no export facts")
        return edge.node.exports

    @router.get(
        "/facts",
        summary="Every export fact recorded on this node, licences with their consumption",
        **needs(Permission.EXPORT_FACTS_READ),
    )
    def get_facts(who: Who) -> FactsOut:
        s = office().summary(who)
        # objects the reader may not know of are neither named nor counted
        known = {d.id for d in edge.node.documents.all_visible(who)}
        return FactsOut(
            items={k: dict(v) for k, v in s.items.items() if k in known},
            parties=[dict(p) for p in s.parties],
            licences=[dict(x) for x in s.licences],
            lists=[dict(x) for x in s.lists],
            rules={k: dict(v) for k, v in s.rules.items()},
            pending={k: dict(v) for k, v in s.pending.items() if k in known},
        )

    @router.put(
        "/items/{object_id}",
        summary="Record an object's export classification (its originating nation's officers)",
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    def put_item(object_id: PathId, body: ClassifyIn, who: Who) -> ClassifiedOut:
        version = office().classify(
            who, object_id, body.classification, justification=body.justification,
            at=edge.clock(),
        )  # fmt: skip
        return ClassifiedOut(object_id=object_id, version=version)

    @router.put(
        "/parties/{party_id}",
        summary="Record a person or organisation as an export party (an authorized user)",
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    def put_party(party_id: PathId, body: PartyIn, who: Who) -> PartyOut:
        _same(party_id, body.party, "id")
        pid = office().put_party(who, body.party, justification=body.justification, at=edge.clock())
        return PartyOut(id=pid)

    @router.put(
        "/licences/{number}",
        summary="Record or amend a licence or agreement (the regime's nation's officers)",
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    def put_licence(number: PathId, body: LicenceIn, who: Who) -> LicenceOut:
        _same(number, body.licence, "number")
        n = office().put_licence(
            who, body.licence, justification=body.justification, at=edge.clock()
        )
        return LicenceOut(number=n)

    @router.post(
        "/lists",
        status_code=201,
        summary="Load a new version of an excluded technology list",
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    def post_list(body: ListIn, who: Who) -> ListOut:
        regime, name, version = office().load_list(
            who, body.list, justification=body.justification, at=edge.clock()
        )
        return ListOut(regime=regime, name=name, version=version)

    @router.put(
        "/rules/{regime}",
        summary="Set a regime's rules (dual-national rules, value threshold)",
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    def put_rules(regime: Regime, body: RulesIn, who: Who) -> RulesOut:
        office().put_rules(
            who, regime.value, body.rules, justification=body.justification, at=edge.clock()
        )
        return RulesOut(regime=regime.value)

    @router.post(
        "/check",
        summary="The export check alone: may this object go to this person, on what basis",
        **needs(Permission.EXPORT_CHECK),
    )
    def post_check(body: CheckIn, who: Who) -> CheckOut:
        d = office().check(
            who, body.person_id, body.object_id, action=body.action, to=body.to, at=edge.clock()
        )
        return CheckOut(
            person_id=body.person_id,
            object_id=body.object_id,
            action=body.action,
            to=body.to,
            allowed=d.allowed,
            legal_basis=d.legal_basis,
            licence_number=d.licence_number,
            reasons=[ReasonOut(code=r.code, sentence=r.sentence) for r in d.reasons],
        )

    @router.get(
        "/records",
        summary="Transfer records for a regulator, as CSV or JSON",
        description=(
            "Every recorded transfer with `from <= at < to` that concerns a nation the "
            "caller reads records for (the regime's nation or the object's originator), "
            "oldest first. `from` and `to` are ISO dates (00:00 UTC) or datetimes with a "
            "timezone; either may be left out."
        ),
        response_class=Response,
        responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
        **needs(Permission.EXPORT_RECORDS_READ),
    )
    def get_records(
        who: Who,
        since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
        until: Annotated[str | None, Query(alias="to", max_length=64)] = None,
        format: Literal["csv", "json"] = "json",
    ) -> Response:
        start, end = parse_bound(since, "from"), parse_bound(until, "to")
        if start is not None and end is not None and end <= start:
            raise InvalidInput("to must be after from")
        records = office().records(who, since=start, until=end)
        name = "export-records"
        for word, t in (("from", start), ("to", end)):
            name += f"-{word}-{t.astimezone(UTC):%Y%m%dT%H%M%SZ}" if t else ""
        headers = {
            "Content-Disposition": f'attachment; filename="{name}.{format}"',
            "Cache-Control": "no-store",
        }
        if format == "csv":
            return Response(to_csv(records), media_type="text/csv; charset=utf-8", headers=headers)
        return Response(to_json(records), media_type="application/json", headers=headers)

    app.include_router(router)
