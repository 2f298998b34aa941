"""The demo file's model: parsed and checked before anything is loaded."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from relto.errors import InvalidInput, ReltoError
from relto.partnership.errors import InvalidPartnership
from relto.partnership.model import (
    ROLES,
    Partnership,
    Project,
    check_ceiling,
    check_nation,
    check_slug,
)

__all__ = [
    "CLEARANCE_STATUSES",
    "DEMO_FILE",
    "DemoClearance",
    "DemoData",
    "DemoDocument",
    "DemoPerson",
    "InvalidDemoFile",
    "demo_file",
    "parse_demo",
    "read_demo",
]

DEMO_FILE = Path(__file__).with_name("partnership.yaml")
CLEARANCE_STATUSES = ("granted", "interim", "expired", "suspended", "under_review")
_MAX_FILE = 1 << 20


class InvalidDemoFile(InvalidInput):
    """The demo file is not valid; nothing was loaded."""

    code = "invalid_demo_file"


@dataclass(frozen=True)
class DemoClearance:
    level: str
    status: str
    granted: date
    expires: date


@dataclass(frozen=True)
class DemoPerson:
    id: str
    name: str
    nationality: str
    organisation: str
    roles: tuple[str, ...]
    projects: tuple[str, ...]
    clearances: tuple[DemoClearance, ...]

    @property
    def role_grants(self) -> frozenset[tuple[str, str]]:
        """Each role is held for the person's own nation."""
        return frozenset((r, self.nationality) for r in self.roles)


@dataclass(frozen=True)
class DemoDocument:
    id: str
    title: str
    project: str
    originator: str
    owner: str
    label: str
    text: str


@dataclass(frozen=True)
class DemoData:
    partnership: Partnership
    projects: tuple[Project, ...]
    admissions: tuple[tuple[str, str, str], ...]  # (project, nation, ceiling)
    people: tuple[DemoPerson, ...]
    documents: tuple[DemoDocument, ...]

    def person(self, person_id: str) -> DemoPerson | None:
        return next((p for p in self.people if p.id == person_id), None)


def demo_file() -> Path:
    """The demo file in use: ``RELTO_DEMO_FILE`` if set, else the packaged one."""
    override = os.environ.get("RELTO_DEMO_FILE")
    return Path(override) if override else DEMO_FILE


def read_demo(path: Path | None = None) -> DemoData:
    path = path or demo_file()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDemoFile(f"cannot read demo file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise InvalidDemoFile(f"demo file {path} is larger than {_MAX_FILE} bytes")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidDemoFile(f"demo file {path} is not valid YAML: {exc}") from None
    return parse_demo(doc)


_RELATIVE = re.compile(r"^([+-])(\d{1,4})([dmy])$")


def _d(value: Any, where: str, today: date | None = None) -> date:
    """A date: ``YYYY-MM-DD``, or relative to the day the file is loaded (``+21d``,
    ``-6m``, ``+2y``), so that a demo loaded any day has revalidations coming up."""
    if isinstance(value, str) and (m := _RELATIVE.match(value.strip())):
        base = today or datetime.now(UTC).date()
        n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
        if m.group(3) == "d":
            return base + timedelta(days=n)
        months = n * (12 if m.group(3) == "y" else 1)
        y, mo = divmod(base.month - 1 + months, 12)
        return date(base.year + y, mo + 1, min(base.day, 28))
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidDemoFile(f"{where}: {str(value)[:30]!r} is not a date (YYYY-MM-DD)") from None


def _s(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidDemoFile(f"{where}: '{key}' must be a non-empty string")
    return value


def _flag(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise InvalidDemoFile(f"{where}: '{key}' must be true or false")
    return value


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise InvalidDemoFile(f"{where}: '{key}' must be a list")
    return value


def parse_demo(doc: Any) -> DemoData:
    """Check a loaded YAML document and turn it into :class:`DemoData`."""
    if not isinstance(doc, dict):
        raise InvalidDemoFile("the demo file must be a mapping with a 'partnership' section")
    try:
        return _parse(doc)
    except InvalidPartnership as exc:
        raise InvalidDemoFile(str(exc)) from None


def _parse(doc: dict[str, Any]) -> DemoData:
    p = doc.get("partnership")
    if not isinstance(p, dict):
        raise InvalidDemoFile("'partnership' must be a mapping")
    partnership = Partnership(
        id=_s(p, "id", "partnership"),
        name=_s(p, "name", "partnership"),
        description=str(p.get("description", "")),
        members=tuple(str(n) for n in _list(p, "members", "partnership")),
        partners=tuple(str(n) for n in _list(p, "partners", "partnership")),
    )
    projects: list[Project] = []
    for i, item in enumerate(_list(doc, "projects", "file")):
        where = f"projects[{i}]"
        if not isinstance(item, dict):
            raise InvalidDemoFile(f"{where} must be a mapping")
        projects.append(
            Project(
                id=_s(item, "id", where),
                partnership_id=partnership.id,
                name=_s(item, "name", where),
                description=str(item.get("description", "")),
                export_relevant=_flag(item, "export_relevant", where),
            )
        )
    project_ids = {p.id for p in projects}
    if len(project_ids) != len(projects):
        raise InvalidDemoFile("projects: an id is used twice")
    admissions: list[tuple[str, str, str]] = []
    adm = doc.get("admissions", {})
    if not isinstance(adm, dict):
        raise InvalidDemoFile("'admissions' must be a mapping of project to nations")
    for project_id, nations in adm.items():
        if project_id not in project_ids:
            raise InvalidDemoFile(f"admissions: unknown project {str(project_id)[:60]!r}")
        if not isinstance(nations, dict):
            raise InvalidDemoFile(f"admissions.{project_id}: must map nation to ceiling")
        for nation, ceiling in nations.items():
            check_nation(str(nation))
            if nation not in partnership.nations:
                raise InvalidDemoFile(
                    f"admissions.{project_id}: {nation} is not a nation of the partnership"
                )
            admissions.append((project_id, str(nation), check_ceiling(str(ceiling))))
    from relto.vetting import default_policy

    policy = default_policy()
    people: list[DemoPerson] = []
    for i, item in enumerate(_list(doc, "people", "file")):
        where = f"people[{i}]"
        if not isinstance(item, dict):
            raise InvalidDemoFile(f"{where} must be a mapping")
        pid = check_slug(_s(item, "id", where), f"{where}.id")
        nationality = check_nation(_s(item, "nationality", where))
        roles = tuple(str(r) for r in _list(item, "roles", where))
        for r in roles:
            if r not in ROLES:
                raise InvalidDemoFile(f"{where}: unknown role {r[:40]!r}")
        person_projects = tuple(str(x) for x in _list(item, "projects", where))
        for x in person_projects:
            if x not in project_ids:
                raise InvalidDemoFile(f"{where}: unknown project {x[:60]!r}")
        clearances: list[DemoClearance] = []
        for j, c in enumerate(_list(item, "clearances", where)):
            cw = f"{where}.clearances[{j}]"
            if not isinstance(c, dict):
                raise InvalidDemoFile(f"{cw} must be a mapping")
            status = _s(c, "status", cw)
            if status not in CLEARANCE_STATUSES:
                raise InvalidDemoFile(
                    f"{cw}: status must be one of {', '.join(CLEARANCE_STATUSES)}"
                )
            granted, expires = _d(c.get("granted"), cw), _d(c.get("expires"), cw)
            if expires <= granted:
                raise InvalidDemoFile(f"{cw}: expires must be after granted")
            level = _s(c, "level", cw)
            try:
                policy.level(nationality, level)
            except ReltoError:
                raise InvalidDemoFile(
                    f"{cw}: {level[:40]!r} is not a level of the {nationality} vetting scheme"
                ) from None
            clearances.append(DemoClearance(level, status, granted, expires))
        people.append(
            DemoPerson(
                id=pid,
                name=_s(item, "name", where),
                nationality=nationality,
                organisation=str(item.get("organisation", "")),
                roles=roles,
                projects=person_projects,
                clearances=tuple(clearances),
            )
        )
    if len({p.id for p in people}) != len(people):
        raise InvalidDemoFile("people: an id is used twice")
    person_ids = {p.id for p in people}
    documents: list[DemoDocument] = []
    for i, item in enumerate(_list(doc, "documents", "file")):
        where = f"documents[{i}]"
        if not isinstance(item, dict):
            raise InvalidDemoFile(f"{where} must be a mapping")
        d = DemoDocument(
            id=check_slug(_s(item, "id", where), f"{where}.id"),
            title=_s(item, "title", where),
            project=_s(item, "project", where),
            originator=check_nation(_s(item, "originator", where)),
            owner=_s(item, "owner", where),
            label=_s(item, "label", where),
            text=_s(item, "text", where),
        )
        if d.project not in project_ids:
            raise InvalidDemoFile(f"{where}: unknown project {d.project[:60]!r}")
        if d.owner not in person_ids:
            raise InvalidDemoFile(f"{where}: unknown owner {d.owner[:60]!r}")
        documents.append(d)
    return DemoData(
        partnership=partnership,
        projects=tuple(projects),
        admissions=tuple(admissions),
        people=tuple(people),
        documents=tuple(documents),
    )
