"""Export control: the console of the export-control office (issue 16).

- ``GET /console/export``: what the office holds on this node -- classified
  objects the reader may know of (those awaiting an officer marked, with the
  uploader's proposal),
  parties, licences with their consumption, excluded lists with every version (the
  active one marked) and rules -- for whoever holds ``export:facts:read``
  (export-control officers, security officers, auditors). An export-control
  officer also gets the forms that change them; an officer who may
  (``export:check``) the check of one transfer.
- A change is previewed first: the record exactly as it will be stored, beside
  what it replaces. It is then confirmed with a justification (the confirm form's
  parameters are signed, :mod:`._confirm`) and made by
  :class:`relto.export_office.ExportOffice`, which authorises, validates and
  records it: when the office refuses, its message is shown and nothing is written.
- ``GET /console/export/records``: the transfer records a regulator asks for,
  filtered by time, and their download as CSV or JSON (``export:records:read``).

Lists and rules can be pasted as YAML or JSON (or a list uploaded as a file):
read with ``yaml.safe_load`` after refusing anchors and aliases, bounded in size,
depth and number of values before the office's loaders see them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from relto.authz import Permission, Principal, Scope
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.export_control import Regime
from relto.export_control.records import to_csv, to_json
from relto.export_office import REGIME_NATION, ExportOffice, FactsSummary
from relto.partnership import JUSTIFICATION_MAX, JUSTIFICATION_MIN, check_justification
from relto.server.console._confirm import confirm_tokens
from relto.server.console._pages import NOT_ALLOWED, Pages
from relto.server.console._preview import NOT_PREVIEWED
from relto.server.edge import needs

__all__ = ["FACTS", "classification_block", "mount", "read_text"]

#: The facts an officer records here, and what each preview calls the change.
FACTS = {
    "classification": "classify",
    "party": "record party",
    "licence": "record licence",
    "list": "load excluded list",
    "rules": "set rules",
}
ACTIONS = ("read", "download", "share")
ITEM_KINDS = ("technical_data", "hardware", "service")
#: The largest YAML/JSON text (a pasted or uploaded list, rules) read here.
MAX_TEXT = 256 * 1024
_MAX_DEPTH = 6
_MAX_NODES = 50_000
_PAGE = "/console/export"


class _NoAliases(yaml.SafeLoader):
    """``yaml.safe_load`` without anchors and aliases (no expansion bombs)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise InvalidInput("anchors and aliases are not accepted here")
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "anchor", None):
            raise InvalidInput("anchors and aliases are not accepted here")
        return super().compose_node(parent, index)


def read_text(text: str, what: str) -> Any:
    """YAML or JSON text as plain data, bounded (:class:`InvalidInput` otherwise)."""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the {what} is longer than {MAX_TEXT // 1024} KiB")
    if not text.strip():
        raise InvalidInput(f"give the {what} as YAML or JSON")
    try:
        value = yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"the {what} is not valid YAML or JSON{where}") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            raise InvalidInput(f"the {what} holds more than {_MAX_NODES} values")
        children = (
            list(node.values()) if isinstance(node, Mapping) else node
            if isinstance(node, list) else []
        )  # fmt: skip
        if children and depth >= _MAX_DEPTH:
            raise InvalidInput(f"the {what} is nested deeper than {_MAX_DEPTH} levels")
        stack.extend((c, depth + 1) for c in children)
    return value


@dataclass(frozen=True)
class _Change:
    """A change read from a form: which fact, its target (the object of a
    classification, the regime of rules) and the record the office is given."""

    fact: str
    target: str
    record: dict[str, Any]

    @property
    def params(self) -> dict[str, str]:
        text = json.dumps(self.record, sort_keys=True, separators=(",", ":"), default=str)
        return {"fact": self.fact, "target": self.target, "record": text}


def _one(form: Mapping[str, Any], name: str, limit: int = 200) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{name.replace('_', ' ')}: at most {limit} characters")
    return value or None


def _flag(form: Mapping[str, Any], name: str) -> bool:
    return form.get(name) in ("on", "true", "yes", "1")


def _several(form: Mapping[str, Any], name: str, *, upper: bool = False) -> list[str]:
    """A comma-separated field as a list (items may contain spaces: USML XI)."""
    text = _one(form, name, 2000) or ""
    items = [x.strip() for x in text.split(",") if x.strip()]
    return [x.upper() for x in items] if upper else items


def _regime_of(value: str | None) -> Regime:
    try:
        return Regime(value or "")
    except ValueError:
        raise InvalidInput("choose the regime") from None


def classification_block(form: Mapping[str, Any], prefix: str = "") -> dict[str, Any] | None:
    """An object's ``export`` block from the classification fields (``None``: the
    form says nothing about it). Shared with the upload form (``prefix``)."""
    controlled = _one(form, prefix + "controlled", 20)
    if controlled is None:
        return None
    if controlled not in ("yes", "no"):
        raise InvalidInput("say whether the item is export controlled")
    block: dict[str, Any] = {
        "controlled": controlled == "yes",
        "kind": _one(form, prefix + "kind", 40) or "",
    }
    for key in ("regime", "usml_category", "usml_paragraph", "eccn", "dsgl_item", "sender"):
        value = _one(form, prefix + key)
        if value is not None:
            block[key] = value
    if _flag(form, prefix + "sme"):
        block["sme"] = True
    value = _one(form, prefix + "value", 40)
    if value is not None:
        block["value"] = value
    return block


def _party(form: FormData) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": _one(form, "id") or "",
        "kind": _one(form, "kind", 20) or "person",
        "location": (_one(form, "location", 3) or "").upper(),
    }
    nationalities = _several(form, "nationalities", upper=True)
    if nationalities:
        record["nationalities"] = nationalities
    for key in ("name", "organisation"):
        value = _one(form, key)
        if value is not None:
            record[key] = value
    gov = _one(form, "government_body_of", 3)
    if gov is not None:
        record["government_body_of"] = gov.upper()
    for key in ("ddtc_registered", "debarred"):
        if _flag(form, key):
            record[key] = True
    status = {
        "regime": _one(form, "auth_regime", 20),
        "identifier": _one(form, "auth_identifier"),
        "valid_from": _one(form, "auth_valid_from", 40),
        "valid_until": _one(form, "auth_valid_until", 40),
    }
    if any(status.values()):
        if not all(status.values()):
            raise InvalidInput(
                "an authorized-user status needs its regime, identifier and both dates"
            )
        record["authorized"] = [status]
    return record


def _licence(form: FormData) -> dict[str, Any]:
    record: dict[str, Any] = {
        "number": _one(form, "number") or "",
        "regime": _one(form, "regime", 20) or "",
        "kind": _one(form, "kind", 40) or "",
        "items": _several(form, "items"),
        "organisations": _several(form, "organisations"),
        "nationalities": _several(form, "nationalities", upper=True),
        "end_use": _one(form, "end_use", 500) or "",
        "valid_from": _one(form, "valid_from", 40) or "",
        "valid_until": _one(form, "valid_until", 40) or "",
    }
    ceiling = _one(form, "value_ceiling", 40)
    if ceiling is not None:
        record["value_ceiling"] = ceiling
    provisos = _one(form, "provisos", 2000)
    if provisos is not None:
        record["provisos"] = provisos
    return record


async def _list_text(form: FormData) -> str:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_TEXT + 1)
        if len(raw) > MAX_TEXT:
            raise InvalidInput(f"the list is longer than {MAX_TEXT // 1024} KiB")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the list file is not UTF-8 text") from None
    text = form.get("text")
    return text if isinstance(text, str) else ""


async def read_change(fact: str, form: FormData) -> _Change:
    """The change a preview form asks for (:class:`InvalidInput` naming what is
    missing or unreadable; the office checks the rest)."""
    if fact == "classification":
        block = classification_block(form)
        if block is None:
            raise InvalidInput("say whether the item is export controlled")
        return _Change(fact, _one(form, "document_id", 64) or "", block)
    if fact == "party":
        return _Change(fact, "", _party(form))
    if fact == "licence":
        return _Change(fact, "", _licence(form))
    if fact == "list":
        data = read_text(await _list_text(form), "list")
        if not isinstance(data, dict):
            raise InvalidInput("the list is a mapping: regime, name, version, source, entries")
        return _Change(fact, "", data)
    if fact == "rules":
        regime = _regime_of(_one(form, "regime", 20))
        record: dict[str, Any] = {}
        text = form.get("dual_national_rules")
        if isinstance(text, str) and text.strip():
            rules = read_text(text, "§126.18 rules")
            if not isinstance(rules, list):
                raise InvalidInput("the §126.18 rules are a list")
            record["dual_national_rules"] = rules
        threshold = _one(form, "value_threshold", 40)
        if threshold is not None:
            record["value_threshold"] = threshold
        return _Change(fact, regime.value, record)
    raise NotFound("no such form")


def _owner_nation(change: _Change, who: Principal, doc_nation: str | None) -> str:
    """The nation whose officers record the fact (for showing a preview; the
    office decides again when it is confirmed)."""
    if change.fact == "classification":
        return doc_nation or ""
    if change.fact == "party":
        return who.home_nation
    raw = change.target if change.fact == "rules" else change.record.get("regime")
    try:
        return REGIME_NATION[Regime(str(raw))]
    except ValueError:
        raise InvalidInput("choose the regime") from None


def _replaces(change: _Change, facts: FactsSummary) -> Any:
    """What the change replaces, as stored now (``None``: nothing)."""
    if change.fact == "classification":
        return facts.items.get(change.target)
    if change.fact == "party":
        return next((p for p in facts.parties if p.get("id") == change.record.get("id")), None)
    if change.fact == "licence":
        number = change.record.get("number")
        return next((x for x in facts.licences if x.get("number") == number), None)
    if change.fact == "list":
        key = (change.record.get("regime"), change.record.get("name"))
        active = [x for x in facts.lists if (x.get("regime"), x.get("name")) == key]
        return next((x for x in active if x.get("active")), None)
    return facts.rules.get(change.target)


def _show(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100).strip()


def _make(office: ExportOffice, who: Principal, change: _Change, why: str, at: datetime) -> str:
    """Make the change through the office; the message shown afterwards."""
    record = change.record
    if change.fact == "classification":
        version = office.classify(who, change.target, record, justification=why, at=at)
        return f"Classified {change.target} (version {version})."
    if change.fact == "party":
        return f"Recorded party {office.put_party(who, record, justification=why, at=at)}."
    if change.fact == "licence":
        return f"Recorded licence {office.put_licence(who, record, justification=why, at=at)}."
    if change.fact == "list":
        regime, name, loaded = office.load_list(who, record, justification=why, at=at)
        return f"Loaded {regime} list {name}, version {loaded}: it is now the active one."
    office.put_rules(who, change.target, record, justification=why, at=at)
    return f"Set the {change.target} rules."


def _when(value: str, what: str) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what}: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def mount(app: FastAPI, pages: Pages) -> None:
    office = pages.node.exports
    documents = pages.node.documents
    authz = pages.node.authorizer
    tokens = confirm_tokens(pages.node.settings)

    def may(who: Principal, permission: Permission) -> bool:
        return authz.allows(who, permission, Scope.of([who.home_nation]))

    def overview(
        request: Request,
        who: Principal,
        *,
        check: dict[str, Any] | None = None,
        prefill: str = "",
        status_code: int = 200,
    ) -> HTMLResponse:
        facts: FactsSummary | None = None
        if office is not None and may(who, Permission.EXPORT_FACTS_READ):
            try:
                facts = office.summary(who)
            except AccessDenied:
                facts = None
        # titles (and the page's marking) only of the objects the reader may know of
        known = {d.id: d for d in documents.all_visible(who)} if facts else {}
        # objects the reader may not know of are neither shown nor counted
        items = {i: c for i, c in (facts.items if facts else {}).items() if i in known}
        pending = {i: p for i, p in (facts.pending if facts else {}).items() if i in known}
        shown = [known[i] for i in items]
        # the classify form, filled in with an uploader's proposal to confirm
        proposal = pending.get(prefill)
        classify = {"document_id": prefill, **proposal["proposed"]} if proposal else {}
        return pages.render(
            request,
            "export.html",
            who,
            "export",
            status_code=status_code,
            title="Export control",
            facts=facts,
            items=items,
            pending=pending,
            titles={i: d.title for i, d in known.items()},
            marked=shown,
            may_write=office is not None and may(who, Permission.EXPORT_FACTS_WRITE),
            may_check=office is not None and may(who, Permission.EXPORT_CHECK),
            may_records=office is not None and may(who, Permission.EXPORT_RECORDS_READ),
            regimes=[r.value for r in Regime],
            regime_nation={r.value: n for r, n in REGIME_NATION.items()},
            kinds=ITEM_KINDS,
            actions=ACTIONS,
            check=check,
            classify=classify,
            show=_show,
        )

    @app.get(
        _PAGE,
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.EXPORT_FACTS_READ),
    )
    def export_page(request: Request, confirm: str = "") -> HTMLResponse:
        return overview(request, pages.who(request), prefill=confirm.strip()[:64])

    # before the {fact} routes, which would take /check for a fact
    @app.post(_PAGE + "/check", include_in_schema=False, **needs(Permission.EXPORT_CHECK))
    async def check_transfer(request: Request) -> HTMLResponse:
        pages.who(request)
        form = await request.form(max_files=0, max_fields=20)
        who = pages.posted_by(request, str(form.get("csrf") or "")[:200])
        asked = {
            key: str(form.get(key) or "").strip()[:64]
            for key in ("person_id", "document_id", "action", "to")
        }
        result: dict[str, Any] = {"asked": asked}
        try:
            if office is None:
                raise InvalidInput("this node keeps no export facts")
            if asked["action"] not in ACTIONS:
                raise InvalidInput("choose read, download or share")
            result["decision"] = office.check(
                who,
                asked["person_id"],
                asked["document_id"],
                action=asked["action"],
                to=asked["to"] or None,
                at=datetime.now(UTC),
            )
        except (AccessDenied, NotFound):
            result["error"] = NOT_ALLOWED
        except InvalidInput as exc:
            result["error"] = str(exc)[:300]
        return overview(request, who, check=result)

    def preview(
        request: Request,
        who: Principal,
        change: _Change,
        at: datetime,
        *,
        justification: str = "",
        error: str | None = None,
    ) -> Response:
        """The record as it will be stored, what it replaces, and the confirm form."""
        if office is None:
            return pages.back(_PAGE, "This node keeps no export facts.", bad=True)
        doc_nation = None
        title = change.target
        if change.fact == "classification":
            try:
                doc = documents.visible(who, change.target)
            except NotFound:
                return pages.back(_PAGE, NOT_ALLOWED, bad=True)
            doc_nation, title = doc.originator, f"{doc.title} ({doc.id})"
        try:
            nation = _owner_nation(change, who, doc_nation)
        except InvalidInput as exc:
            return pages.back(_PAGE, str(exc)[:300], bad=True)
        if not authz.allows(who, Permission.EXPORT_FACTS_WRITE, Scope.of([nation])):
            return pages.back(_PAGE, NOT_ALLOWED, bad=True)
        replaced = _replaces(change, office.summary(who))
        return pages.render(
            request,
            "export_confirm.html",
            who,
            "export",
            status_code=422 if error else 200,
            title=f"Confirm: {FACTS[change.fact]}",
            heading=f"{FACTS[change.fact]} {title}".strip(),
            fact=change.fact,
            nation=nation,
            record=_show(change.record),
            replaced=None if replaced is None else _show(replaced),
            action=f"{_PAGE}/{change.fact}",
            token=tokens.issue(f"export.{change.fact}", change.params),
            hidden=sorted(change.params.items()),
            justification=justification[:JUSTIFICATION_MAX],
            just_min=JUSTIFICATION_MIN,
            just_max=JUSTIFICATION_MAX,
            error=error,
        )

    @app.post(
        _PAGE + "/{fact}/preview",
        include_in_schema=False,
        **needs(Permission.EXPORT_FACTS_WRITE),
    )
    async def preview_change(request: Request, fact: str) -> Response:
        pages.who(request)
        form = await request.form(max_files=1, max_fields=100)
        who = pages.posted_by(request, str(form.get("csrf") or "")[:200])
        if fact not in FACTS:
            return pages.back(_PAGE, NOT_ALLOWED, bad=True)
        try:
            change = await read_change(fact, form)
        except InvalidInput as exc:
            return pages.back(_PAGE, str(exc)[:300], bad=True)
        return preview(request, who, change, datetime.now(UTC))

    @app.post(_PAGE + "/{fact}", include_in_schema=False, **needs(Permission.EXPORT_FACTS_WRITE))
    async def confirm_change(request: Request, fact: str) -> Response:
        pages.who(request)
        form = await request.form(max_files=0, max_fields=20)
        who = pages.posted_by(request, str(form.get("csrf") or "")[:200])
        params = {k: str(form.get(k) or "") for k in ("fact", "target", "record")}
        confirm = str(form.get("confirm") or "")[:200]
        justification = str(form.get("justification") or "")[:2000]
        if fact not in FACTS or params["fact"] != fact:
            return pages.back(_PAGE, NOT_PREVIEWED, bad=True)
        if not tokens.check(f"export.{fact}", params, confirm):
            return pages.back(_PAGE, NOT_PREVIEWED, bad=True)
        change = _Change(fact, params["target"], json.loads(params["record"]))
        at = datetime.now(UTC)
        try:
            why = check_justification(justification)
        except InvalidInput as exc:
            return preview(request, who, change, at, justification=justification, error=str(exc))
        if office is None:
            return pages.back(_PAGE, "This node keeps no export facts.", bad=True)
        try:
            message = _make(office, who, change, why, at)
        except (AccessDenied, NotFound):
            return pages.back(_PAGE, NOT_ALLOWED, bad=True)
        except InvalidInput as exc:
            # the office's own words; it wrote nothing
            return preview(
                request, who, change, at, justification=justification, error=str(exc)[:300]
            )
        return pages.back(_PAGE, message)

    def record_range(since: str, until: str) -> tuple[datetime | None, datetime | None]:
        return _when(since.strip()[:25], "From"), _when(until.strip()[:25], "Before")

    @app.get(
        _PAGE + "/records",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.EXPORT_RECORDS_READ),
    )
    def records_page(request: Request, since: str = "", until: str = "") -> HTMLResponse:
        who = pages.who(request)
        form = {"since": since.strip()[:25], "until": until.strip()[:25]}
        allowed = office is not None and may(who, Permission.EXPORT_RECORDS_READ)
        found = []
        error = None
        if allowed and office is not None:
            try:
                found = office.records(who, since=_when(form["since"], "From"),
                                       until=_when(form["until"], "Before"))  # fmt: skip
            except InvalidInput as exc:
                error = str(exc)[:300]
            except AccessDenied:
                allowed = False
        known = {d.id: d for d in documents.all_visible(who)} if found else {}
        query = urlencode({k: v for k, v in form.items() if v})
        return pages.render(
            request,
            "export_records.html",
            who,
            "export",
            status_code=422 if error else 200,
            title="Export transfer records",
            allowed=allowed,
            records=found,
            known=known,
            marked=[known[r.document_id] for r in found if r.document_id in known],
            form=form,
            error=error,
            query=("&" + query) if query else "",
        )

    @app.get(
        _PAGE + "/records/download",
        include_in_schema=False,
        **needs(Permission.EXPORT_RECORDS_READ),
    )
    def records_download(
        request: Request, format: str = "csv", since: str = "", until: str = ""
    ) -> Response:
        who = pages.who(request)
        if office is None or format not in ("csv", "json"):
            return pages.not_found(request, who, "export", "There is no such download.")
        try:
            start, end = record_range(since, until)
            found = office.records(who, since=start, until=end)
        except InvalidInput as exc:
            return pages.back(f"{_PAGE}/records", str(exc)[:300], bad=True)
        except AccessDenied:
            return pages.not_found(request, who, "export", "There is no such download.")
        body = to_csv(found) if format == "csv" else to_json(found)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Response(
            body,
            media_type="text/csv; charset=utf-8" if format == "csv" else "application/json",
            headers={
                "Content-Disposition": f'attachment; filename="export-records-{stamp}.{format}"',
                "Cache-Control": "no-store",
            },
        )
