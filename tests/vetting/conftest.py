"""Fixtures for the vetting tests: the shipped policy and a clearance factory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from relto.vetting import Clearance, Status, VettingPolicy, default_policy

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # a Monday


@pytest.fixture
def policy() -> VettingPolicy:
    return default_policy()


#: How to reach each recorded status from a fresh clearance.
PATHS: dict[Status, list[Status]] = {
    Status.SPONSORED: [],
    Status.INVESTIGATING: [Status.INVESTIGATING],
    Status.ADJUDICATING: [Status.INVESTIGATING, Status.ADJUDICATING],
    Status.INTERIM: [Status.INVESTIGATING, Status.INTERIM],
    Status.GRANTED: [Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED],
    Status.SUSPENDED: [Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED, Status.SUSPENDED],
    Status.UNDER_REVIEW: [
        Status.INVESTIGATING,
        Status.ADJUDICATING,
        Status.GRANTED,
        Status.UNDER_REVIEW,
    ],
    Status.REVOKED: [Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED, Status.REVOKED],
    Status.DENIED: [Status.INVESTIGATING, Status.ADJUDICATING, Status.DENIED],
    Status.LAPSED: [Status.LAPSED],
}


def new_clearance(
    policy: VettingPolicy, nation: str = "AUS", level: str = "NV1", at: dt.datetime = T0
) -> Clearance:
    return Clearance.sponsor_new(
        id="c-1",
        person_id="p-1",
        nation=nation,
        level=level,
        sponsor="Department of Defence",
        at=at,
        actor="vo-1",
        reason="role requires SECRET access",
        policy=policy,
    )


def walk(
    c: Clearance, steps: list[Status], policy: VettingPolicy, start: dt.datetime = T0
) -> Clearance:
    at = start
    for s in steps:
        at += dt.timedelta(days=1)
        c = c.transition(s, at=at, actor="vo-1", reason=f"to {s.value}", policy=policy)
    return c


@pytest.fixture
def make() -> Callable[..., Clearance]:
    def _make(policy: VettingPolicy, status: Status, **kw: object) -> Clearance:
        return walk(new_clearance(policy, **kw), PATHS[status], policy)  # type: ignore[arg-type]

    return _make
