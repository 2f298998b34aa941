"""The signed-in person as the directory records them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relto.federation.attestation import AttestedPerson

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """An authenticated person: who the credential proved, and everything else
    (name, nation, nationalities, roles) from this node's directory -- never from
    the credential's own claims.

    ``home_nation`` is the nation that vouches for the person and for which their
    roles are held; ``via`` says how they proved who they are (``bearer``,
    ``session``, ``attestation`` or ``node`` for the node's own in-process calls).
    A person of another nation (``via="attestation"``) has no roles here and no
    record in this node's directory: ``attested`` is what their home node vouched
    for, and decisions about them are made on it.
    """

    person_id: str
    name: str
    home_nation: str
    nationalities: frozenset[str]
    roles: frozenset[tuple[str, str]]
    via: str = "bearer"
    attested: AttestedPerson | None = None

    @property
    def nation(self) -> str:
        return self.home_nation

    @property
    def role_names(self) -> list[str]:
        return sorted({r for r, _ in self.roles})

    @property
    def attested_roles(self) -> frozenset[str]:
        """The roles the person's home node vouched for them holding, for their home
        nation (an attestation verified against this node's pins); empty for
        anyone else. They grant nothing here but what a rule of kind "role
        attested by home" names (ADR 0142)."""
        a = self.attested
        if self.via != "attestation" or a is None or a.home_nation != self.home_nation:
            return frozenset()
        return a.roles
