"""The lifecycle: every legal and illegal transition, and history that never changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from relto.vetting import (
    FINAL,
    TRANSITIONS,
    Clearance,
    IllegalTransition,
    Status,
    VettingInputError,
    VettingPolicy,
    is_legal,
)

from .conftest import PATHS, T0, new_clearance, walk

LATER = T0 + dt.timedelta(days=30)

# Every (from, to) pair of recorded statuses, with the expected answer. From suspended
# or under review (reached from granted) only a return to granted is a reinstatement;
# "interim" would be an upgrade by the back door.
CASES = [
    (
        frm,
        to,
        is_legal(frm, to)
        and to is not Status.EXPIRED
        and not (frm in (Status.SUSPENDED, Status.UNDER_REVIEW) and to is Status.INTERIM),
    )
    for frm in PATHS
    for to in Status
]


def test_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
    assert Status.EXPIRED not in set().union(*TRANSITIONS.values())
    assert len(CASES) == len(PATHS) * len(Status)


@pytest.mark.parametrize(("frm", "to", "legal"), CASES, ids=lambda v: getattr(v, "value", v))
def test_transition_table_enforced(
    policy: VettingPolicy, make: Callable[..., Clearance], frm: Status, to: Status, legal: bool
) -> None:
    c = make(policy, frm)
    assert c.status_at(LATER) is frm
    if legal:
        after = c.transition(to, at=LATER, actor="vo-2", reason="table test", policy=policy)
        assert after.status_at(LATER) is to
        assert after.events[: len(c.events)] == c.events
        last = after.events[-1]
        assert (last.from_status, last.to_status, last.actor) == (frm, to, "vo-2")
    else:
        with pytest.raises(IllegalTransition):
            c.transition(to, at=LATER, actor="vo-2", reason="table test", policy=policy)


def test_expired_clearance_cannot_be_revived(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), PATHS[Status.GRANTED], policy)
    after_expiry = T0 + dt.timedelta(days=365 * 11)
    assert c.status_at(after_expiry) is Status.EXPIRED
    for to in Status:
        with pytest.raises(IllegalTransition):
            c.transition(to, at=after_expiry, actor="vo", reason="revive", policy=policy)


def test_interim_suspended_reinstated_only_as_interim(policy: VettingPolicy) -> None:
    c = walk(
        new_clearance(policy), [Status.INVESTIGATING, Status.INTERIM, Status.SUSPENDED], policy
    )
    with pytest.raises(IllegalTransition):
        c.transition(Status.GRANTED, at=LATER, actor="vo", reason="upgrade", policy=policy)
    back = c.transition(Status.INTERIM, at=LATER, actor="vo", reason="cleared", policy=policy)
    assert back.status_at(LATER) is Status.INTERIM


def test_backdated_event_rejected(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), [Status.INVESTIGATING], policy)
    with pytest.raises(VettingInputError, match="back-dating"):
        c.transition(Status.LAPSED, at=T0, actor="vo", reason="x", policy=policy)


def test_change_without_reason_or_naive_time_rejected(policy: VettingPolicy) -> None:
    c = new_clearance(policy)
    with pytest.raises(VettingInputError):
        c.transition(Status.INVESTIGATING, at=LATER, actor="vo", reason=" ", policy=policy)
    with pytest.raises(ValueError):
        c.transition(
            Status.INVESTIGATING,
            at=LATER.replace(tzinfo=None),
            actor="vo",
            reason="x",
            policy=policy,
        )


def test_history_is_append_only_and_replayable(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), PATHS[Status.REVOKED], policy)
    for e in c.events:
        assert c.recorded_status_at(e.at) is e.to_status
    assert [e.seq for e in c.events] == list(range(1, len(c.events) + 1))
    assert c.status_at(T0 - dt.timedelta(seconds=1)) is None


def test_grant_beyond_scheme_period_rejected(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), [Status.INVESTIGATING, Status.ADJUDICATING], policy)
    too_late = LATER + dt.timedelta(days=365 * 11)
    with pytest.raises(VettingInputError, match="10 years"):
        c.transition(
            Status.GRANTED, at=LATER, actor="vo", reason="x", policy=policy, valid_until=too_late
        )


def test_grant_without_known_period_needs_explicit_expiry(policy: VettingPolicy) -> None:
    c = walk(
        new_clearance(policy, nation="NZL", level="SECRET"), PATHS[Status.ADJUDICATING], policy
    )
    with pytest.raises(VettingInputError, match="valid_until"):
        c.transition(Status.GRANTED, at=LATER, actor="vo", reason="x", policy=policy)
    until = LATER + dt.timedelta(days=700)
    g = c.transition(
        Status.GRANTED, at=LATER, actor="vo", reason="x", policy=policy, valid_until=until
    )
    assert g.valid_until_at(LATER) == until


def test_continuous_vetting_has_no_fixed_expiry(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy, nation="USA", level="SECRET"), PATHS[Status.GRANTED], policy)
    assert c.valid_until_at(LATER) is None
    assert c.is_current(T0 + dt.timedelta(days=365 * 30), policy)


def test_revalidation_extends_validity(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), PATHS[Status.GRANTED], policy)
    first = c.valid_until_at(LATER)
    at = T0 + dt.timedelta(days=365 * 9)
    r = c.transition(Status.GRANTED, at=at, actor="vo", reason="revalidated", policy=policy)
    assert first is not None and r.valid_until_at(at) is not None
    assert r.valid_until_at(at) > first  # type: ignore[operator]
    assert r.is_current(first + dt.timedelta(days=1), policy)
    assert not c.is_current(first, policy)


def test_interim_cannot_outlast_the_scheme_period(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), [Status.INVESTIGATING], policy)
    with pytest.raises(VettingInputError, match="10 years"):
        c.transition(
            Status.INTERIM,
            at=LATER,
            actor="vo",
            reason="x",
            policy=policy,
            valid_until=LATER + dt.timedelta(days=365 * 12),
        )
    ok = c.transition(
        Status.INTERIM,
        at=LATER,
        actor="vo",
        reason="x",
        policy=policy,
        valid_until=LATER + dt.timedelta(days=180),
    )
    assert not ok.is_current(LATER + dt.timedelta(days=180), policy)


def test_reinstatement_cannot_extend_validity(policy: VettingPolicy) -> None:
    c = walk(new_clearance(policy), PATHS[Status.SUSPENDED], policy)
    until = c.valid_until_at(LATER)
    assert until is not None
    with pytest.raises(VettingInputError, match="cannot extend"):
        c.transition(
            Status.GRANTED,
            at=LATER,
            actor="vo",
            reason="back",
            policy=policy,
            valid_until=until + dt.timedelta(days=1),
        )
    back = c.transition(Status.GRANTED, at=LATER, actor="vo", reason="back", policy=policy)
    assert back.valid_until_at(LATER) == until
