"""Recognition: whose clearances count for whose information.

A clearance issued by nation A counts for nation B's information only when A is B,
or when a security-of-information agreement between A and B is in force at that
moment. Nothing is inferred: no reciprocity beyond what an agreement records, no
transitivity (A–B and B–C say nothing about A–C), and an agreement whose entry into
force relto could not confirm is not in force.

Levels are not compared here: an issuer's level is mapped to the information
nation's scheme through the equivalences of :mod:`relto.labels` by the decision
engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from relto.vetting._data import Agreement, VettingPolicy, default_policy
from relto.vetting._people import check_nation
from relto.vetting._time import utc

__all__ = ["Recognition", "recognises", "recognition"]


@dataclass(frozen=True)
class Recognition:
    """The answer with its grounds: the agreement relied on, or why none applies."""

    recognised: bool
    issuer_nation: str
    info_nation: str
    agreement: Agreement | None
    reason: str


def recognition(
    issuer_nation: str,
    info_nation: str,
    at: dt.datetime,
    *,
    policy: VettingPolicy | None = None,
    scope: str | None = None,
) -> Recognition:
    """Whether ``issuer_nation``'s clearances count for ``info_nation``'s information.

    ``scope`` (``"government"`` or ``"military"``), when given, also requires the
    agreement to cover that kind of information; a ``government`` agreement covers
    both.
    """
    check_nation(issuer_nation, "issuer nation")
    check_nation(info_nation, "information nation")
    at = utc(at)
    if issuer_nation == info_nation:
        return Recognition(True, issuer_nation, info_nation, None, "same nation")
    policy = policy or default_policy()
    pair = frozenset({issuer_nation, info_nation})
    candidates = [a for a in policy.agreements if a.parties == pair]
    if not candidates:
        return Recognition(
            False,
            issuer_nation,
            info_nation,
            None,
            f"relto records no security agreement between {issuer_nation} and {info_nation}",
        )
    for a in candidates:
        if a.in_force_at(at) and (scope is None or a.scope == "government" or a.scope == scope):
            return Recognition(True, issuer_nation, info_nation, a, f"{a.id} is in force")
    a = candidates[0]
    if scope is not None and any(c.in_force_at(at) for c in candidates):
        why = f"no agreement between them covers {scope} information"
    elif a.in_force is None:
        why = f"{a.id} is not recorded as in force"
    elif a.terminated is not None and at >= dt.datetime.combine(
        a.terminated, dt.time(), tzinfo=dt.UTC
    ):
        why = f"{a.id} ended on {a.terminated.isoformat()}"
    else:
        why = f"{a.id} enters into force on {a.in_force.isoformat()}"
    return Recognition(False, issuer_nation, info_nation, None, why)


def recognises(
    issuer_nation: str,
    info_nation: str,
    at: dt.datetime,
    *,
    policy: VettingPolicy | None = None,
    scope: str | None = None,
) -> bool:
    """``True`` if a clearance from ``issuer_nation`` counts for ``info_nation`` at ``at``."""
    return recognition(issuer_nation, info_nation, at, policy=policy, scope=scope).recognised
