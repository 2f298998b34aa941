"""The partnership model: nations, projects and admissions (pure, no I/O).

A partnership has *member* nations, who share everything the policy allows among
themselves, and *partner* nations, admitted project by project. An
:class:`Admission` says that one nation takes part in one project up to a
*ceiling* classification, from ``valid_from`` until ``valid_until`` (or until it is
ended). Nothing is implied: a member nation takes part in a project only through an
admission too, so the matrix a security officer reads is the whole truth.

Ceilings use the partnership's common classification scale
(:data:`CLASSIFICATIONS`, lowest first); national schemes map onto it through the
SPIF equivalences held by :mod:`relto.labels`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from relto.partnership.errors import InvalidPartnership

__all__ = [
    "CLASSIFICATIONS",
    "MAX_CUSTODIANS",
    "MEMBER_NATIONS",
    "PARTNER_NATIONS",
    "ROLES",
    "Admission",
    "Partnership",
    "Project",
    "RecordedAgreement",
    "check_ceiling",
    "check_custody",
    "check_nation",
    "check_slug",
    "classification_rank",
    "require_aware",
]

#: The partnership's common classification scale, lowest first.
CLASSIFICATIONS: tuple[str, ...] = (
    "UNCLASSIFIED",
    "RESTRICTED",
    "CONFIDENTIAL",
    "SECRET",
    "TOP SECRET",
)

#: The AUKUS members and the partners admitted project by project.
MEMBER_NATIONS: tuple[str, ...] = ("AUS", "GBR", "USA")
PARTNER_NATIONS: tuple[str, ...] = ("JPN", "KOR", "NZL", "CAN")

#: Roles a person may hold, each for one nation.
ROLES: tuple[str, ...] = (
    "engineer",
    "security_officer",
    "vetting_officer",
    "export_control_officer",
    "auditor",
)

_NATION = re.compile(r"^[A-Z]{3}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_NAME = 200
MAX_TEXT = 2000


def classification_rank(level: str) -> int:
    """The position of ``level`` on the common scale; raises on an unknown level."""
    try:
        return CLASSIFICATIONS.index(level)
    except ValueError:
        raise InvalidPartnership(
            f"unknown classification {level[:40]!r}; expected one of {', '.join(CLASSIFICATIONS)}"
        ) from None


def check_ceiling(level: str) -> str:
    classification_rank(level)
    return level


def check_nation(code: str) -> str:
    if not isinstance(code, str) or not _NATION.match(code):
        raise InvalidPartnership(f"nation must be an ISO 3166 alpha-3 code, got {code[:10]!r}")
    return code


def check_slug(slug: str, what: str = "id") -> str:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise InvalidPartnership(
            f"{what} must be 1-63 lowercase letters, digits or hyphens, got {slug[:70]!r}"
        )
    return slug


def check_text(value: str, what: str, limit: int = MAX_NAME, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise InvalidPartnership(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidPartnership(f"{what} is longer than {limit} characters")
    return value


def require_aware(at: datetime, what: str = "at") -> datetime:
    """Times must be timezone-aware; a naive datetime is a programming error."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")
    return at


@dataclass(frozen=True)
class Partnership:
    """A set of nations sharing work: members share, partners are admitted."""

    id: str
    name: str
    members: tuple[str, ...]
    partners: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        check_slug(self.id, "partnership id")
        check_text(self.name, "partnership name")
        check_text(self.description, "description", MAX_TEXT, empty_ok=True)
        if not self.members:
            raise InvalidPartnership("a partnership needs at least one member nation")
        for code in (*self.members, *self.partners):
            check_nation(code)
        both = set(self.members) & set(self.partners)
        if both:
            raise InvalidPartnership(
                f"nations cannot be both member and partner: {', '.join(sorted(both))}"
            )
        if len(set(self.members)) != len(self.members) or len(set(self.partners)) != len(
            self.partners
        ):
            raise InvalidPartnership("a nation is listed twice")

    @property
    def nations(self) -> tuple[str, ...]:
        return (*self.members, *self.partners)

    def is_member(self, nation: str) -> bool:
        return nation in self.members


#: At most this many nations hold joint custody of a project's objects.
MAX_CUSTODIANS = 8


def check_custody(nations: tuple[str, ...]) -> tuple[str, ...]:
    """Nations holding joint custody: alpha-3 codes, each once, at most
    :data:`MAX_CUSTODIANS`, in a canonical (sorted) order; empty means none."""
    if not isinstance(nations, tuple):
        raise TypeError("joint custody must be a tuple of nations")
    for code in nations:
        check_nation(code)
    if len(set(nations)) != len(nations):
        raise InvalidPartnership("a nation is listed twice in the joint custody")
    if len(nations) > MAX_CUSTODIANS:
        raise InvalidPartnership(f"at most {MAX_CUSTODIANS} nations can hold joint custody")
    return tuple(sorted(nations))


@dataclass(frozen=True)
class Project:
    """A workstream of the partnership; nations take part through admissions.

    ``joint_custody``: the nations whose key access services each hold a share of
    the key of a new object of this project by default (the uploader's own nation
    always holds one); empty, the default, means the originator's KAS alone.

    ``export_relevant``: the project's objects may be export controlled, so the
    console asks the uploader for the export classification of each new object,
    which is withheld from everyone until an export-control officer classifies it
    (:meth:`relto.export_office.ExportOffice.mark_pending`).
    """

    id: str
    partnership_id: str
    name: str
    description: str = ""
    joint_custody: tuple[str, ...] = ()
    export_relevant: bool = False

    def __post_init__(self) -> None:
        check_slug(self.id, "project id")
        check_slug(self.partnership_id, "partnership id")
        check_text(self.name, "project name")
        check_text(self.description, "description", MAX_TEXT, empty_ok=True)
        if check_custody(self.joint_custody) != self.joint_custody:
            raise InvalidPartnership("joint custody nations must be listed in sorted order")
        if not isinstance(self.export_relevant, bool):
            raise TypeError("export_relevant must be true or false")


@dataclass(frozen=True)
class Admission:
    """``nation`` takes part in ``project_id`` up to ``ceiling`` over an interval.

    ``valid_until`` is exclusive; ``ended_at`` (exclusive too) is set when a
    security officer ends the admission early and is never later than
    ``valid_until``.
    """

    id: str
    project_id: str
    nation: str
    ceiling: str
    valid_from: datetime
    valid_until: datetime | None = None
    ended_at: datetime | None = None
    admitted_by: str = ""
    ended_by: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        check_slug(self.project_id, "project id")
        check_nation(self.nation)
        check_ceiling(self.ceiling)
        require_aware(self.valid_from, "valid_from")
        if self.valid_until is not None:
            require_aware(self.valid_until, "valid_until")
            if self.valid_until <= self.valid_from:
                raise InvalidPartnership("valid_until must be after valid_from")
        if self.ended_at is not None:
            require_aware(self.ended_at, "ended_at")
        check_text(self.note, "note", MAX_TEXT, empty_ok=True)

    @property
    def end(self) -> datetime | None:
        """When the admission stops applying (exclusive), or ``None`` if open-ended."""
        ends = [t for t in (self.valid_until, self.ended_at) if t is not None]
        return min(ends) if ends else None

    def active_at(self, at: datetime) -> bool:
        require_aware(at)
        end = self.end
        return self.valid_from <= at and (end is None or at < end)

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        mine = self.end
        starts_before_my_end = mine is None or start < mine
        ends_after_my_start = end is None or end > self.valid_from
        return starts_before_my_end and ends_after_my_start

    def status_at(self, at: datetime) -> str:
        """``active``, ``pending`` (not yet valid), ``ended`` or ``expired``."""
        if self.active_at(at):
            return "active"
        if at < self.valid_from:
            return "pending"
        if self.ended_at is not None and (
            self.valid_until is None or self.ended_at < self.valid_until
        ):
            return "ended"
        return "expired"


#: Scopes of a security-of-information agreement (as relto.vetting's data).
AGREEMENT_SCOPES = ("government", "military")
_AGREEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")


@dataclass(frozen=True)
class RecordedAgreement:
    """A bilateral security-of-information agreement the partnership recorded, by
    its members' quorum, as in force from ``in_force`` (UTC midnight) until
    ``terminated`` (exclusive): clearances of either party count for the other's
    information then. ``recorded_by`` names the partnership change that recorded it.
    """

    id: str
    partnership_id: str
    parties: tuple[str, str]
    title: str
    in_force: date
    scope: str
    sources: tuple[str, ...]
    terminated: date | None = None
    recorded_by: str = ""

    def __post_init__(self) -> None:
        if not _AGREEMENT_ID.match(self.id):
            raise InvalidPartnership("agreement id must be 1-63 letters, digits or hyphens")
        check_slug(self.partnership_id, "partnership id")
        if len(self.parties) != 2 or self.parties[0] == self.parties[1]:
            raise InvalidPartnership("an agreement has exactly two distinct parties")
        for code in self.parties:
            check_nation(code)
        if tuple(sorted(self.parties)) != self.parties:
            raise InvalidPartnership("agreement parties must be listed in sorted order")
        check_text(self.title, "title", 300)
        if self.scope not in AGREEMENT_SCOPES:
            raise InvalidPartnership('scope is "government" or "military"')
        if not 1 <= len(self.sources) <= 10:
            raise InvalidPartnership("an agreement names 1 to 10 sources")
        for source in self.sources:
            check_text(source, "source", 500)
        if self.terminated is not None and self.terminated <= self.in_force:
            raise InvalidPartnership("terminated must be after in_force")
        check_text(self.recorded_by, "recorded_by", 200, empty_ok=True)
