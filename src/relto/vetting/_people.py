"""People: nationalities, organisation, home nation, roles and project memberships."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from relto.vetting.errors import VettingInputError

__all__ = ["Person", "ProjectMembership", "Role", "check_nation"]

_ALPHA3 = re.compile(r"^[A-Z]{3}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_MAX_TEXT = 200
_MAX_ITEMS = 32


class Role(StrEnum):
    """What a person does in relto; roles never grant access to information by themselves."""

    ENGINEER = "engineer"
    SECURITY_OFFICER = "security_officer"
    VETTING_OFFICER = "vetting_officer"
    EXPORT_CONTROL_OFFICER = "export_control_officer"
    AUDITOR = "auditor"


def check_nation(value: object, what: str = "nation") -> str:
    """An ISO 3166-1 alpha-3 code in upper case, or :class:`VettingInputError`."""
    if not isinstance(value, str) or not _ALPHA3.match(value):
        raise VettingInputError(f"{what} must be an ISO 3166-1 alpha-3 code such as 'GBR'")
    return value


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise VettingInputError(
            f"{what} must be 1-64 characters of letters, digits, '.', '_', ':' or '-'"
        )
    return value


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise VettingInputError(f"{what} must be non-empty text")
    if len(value) > _MAX_TEXT or any(ord(c) < 32 for c in value):
        raise VettingInputError(f"{what} must be at most {_MAX_TEXT} printable characters")
    return value


@dataclass(frozen=True)
class ProjectMembership:
    """Membership of one project (need-to-know is decided elsewhere, from this fact)."""

    project: str
    role: str = "member"

    def __post_init__(self) -> None:
        check_id(self.project, "project")
        check_text(self.role, "project role")


@dataclass(frozen=True)
class Person:
    """A person known to relto.

    ``nationalities`` holds every citizenship the person has declared, as a frozen set
    of alpha-3 codes: a dual national is simply a person with two. ``home_nation`` is
    the nation whose node manages the person (usually, but not necessarily, one of
    the nationalities).
    """

    id: str
    name: str
    nationalities: frozenset[str]
    organisation: str
    home_nation: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    projects: tuple[ProjectMembership, ...] = ()

    def __post_init__(self) -> None:
        check_id(self.id, "person id")
        check_text(self.name, "name")
        check_text(self.organisation, "organisation")
        check_nation(self.home_nation, "home nation")
        if not isinstance(self.nationalities, frozenset) or not self.nationalities:
            raise VettingInputError("a person must have at least one nationality")
        if len(self.nationalities) > _MAX_ITEMS:
            raise VettingInputError("too many nationalities")
        for n in self.nationalities:
            check_nation(n, "nationality")
        if not isinstance(self.roles, frozenset) or not all(
            isinstance(r, Role) for r in self.roles
        ):
            raise VettingInputError("roles must be relto roles")
        if len(self.projects) > _MAX_ITEMS * 8:
            raise VettingInputError("too many project memberships")
        seen = set()
        for m in self.projects:
            if not isinstance(m, ProjectMembership):
                raise VettingInputError("project memberships must be ProjectMembership")
            if m.project in seen:
                raise VettingInputError(f"project {m.project!r} is listed twice")
            seen.add(m.project)

    @property
    def is_dual_national(self) -> bool:
        return len(self.nationalities) > 1

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    def is_member_of(self, project: str) -> bool:
        return any(m.project == project for m in self.projects)
