"""The contract relto.decisions relies on: status_at, not_current_reason, the level
mapping, the review policy and recognises, on real vetting objects."""

from __future__ import annotations

import datetime as dt

from relto.decisions.adapters import (
    VettingRecognition,
    subject_from_vetting,
    vetting_grant,
    world_review_keeps_access,
)
from relto.vetting import Person, ProjectMembership, Role, Status, VettingPolicy, load_policy

from .conftest import PATHS, T0, new_clearance, walk


def test_engine_sees_status_cause_and_dual_nationality(policy: VettingPolicy) -> None:
    person = Person(
        "p-1",
        "Aiko Smith",
        frozenset({"AUS", "JPN"}),
        "ANU",
        "AUS",
        frozenset({Role.ENGINEER}),
        (ProjectMembership("quantum-x"),),
    )
    c = walk(new_clearance(policy), PATHS[Status.SUSPENDED], policy)
    at = T0 + dt.timedelta(days=30)
    subject = subject_from_vetting(person, [c], at, policy)
    assert subject.nationalities == {"AUS", "JPN"}
    (fact,) = subject.clearances
    assert (fact.nation, fact.level, fact.status) == ("AUS", "SECRET", "suspended")
    assert fact.cause == "the AUS NV1 clearance is suspended"


def test_engine_level_mapping_review_policy_and_recognition(policy: VettingPolicy) -> None:
    assert vetting_grant("GBR", "DV", policy) == "TOP SECRET"
    assert vetting_grant("GBR", "NOPE", policy) is None
    assert world_review_keeps_access({"AUS", "GBR"}, policy) == frozenset()
    assert world_review_keeps_access({"AUS"}, load_policy(suspends_override={"AUS": False})) == {
        "AUS"
    }
    rec = VettingRecognition(policy)
    assert rec.recognises("JPN", "GBR", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert not rec.recognises("JPN", "GBR", dt.datetime(2013, 1, 1, tzinfo=dt.UTC))
