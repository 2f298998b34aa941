"""The node's directory: who a person is, as this node's vetting records say.

A credential proves only *who* is calling (a person id, and which nation's
identity provider vouched for it); everything else a decision or a permission
needs -- name, home nation, nationalities, roles -- is read here. Roles are held
for the person's home nation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from relto.authz import Principal
from relto.errors import ReltoError
from relto.store.vetting import SqlVettingRepository
from relto.vetting._people import Person
from relto.vetting.service import VettingService

__all__ = ["Directory", "principal_of"]

#: People a directory listing (the demo sign-in page) shows at most.
MAX_ENTRIES = 1000


def principal_of(person: Person, via: str) -> Principal:
    return Principal(
        person_id=person.id,
        name=person.name,
        home_nation=person.home_nation,
        nationalities=frozenset(person.nationalities),
        roles=frozenset((role.value, person.home_nation) for role in person.roles),
        via=via,
    )


class Directory:
    """People by id, from :class:`VettingService` (no caller: the node itself asks)."""

    def __init__(self, vetting: VettingService) -> None:
        self._vetting = vetting

    def principal(self, person_id: str, *, via: str) -> Principal | None:
        """The person as a :class:`Principal`, or ``None`` if the node does not know them."""
        try:
            person = self._vetting.get_person(person_id[:64])
        except ReltoError:
            return None
        return principal_of(person, via)

    def people(self, limit: int = MAX_ENTRIES) -> list[Person]:
        return self._vetting.all_people(limit)

    def home_nations(self, person_ids: Iterable[str]) -> Mapping[str, str]:
        """Person id -> home nation, for the people this node knows (one query)."""
        ids = sorted({p[:64] for p in person_ids})
        if not ids:
            return {}
        with self._vetting.db.session() as s:
            people = SqlVettingRepository(s).get_people(ids)
        return {pid: p.home_nation for pid, p in people.items()}
