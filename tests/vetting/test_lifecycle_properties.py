"""Property tests: no sequence of requests escapes the transition table or rewrites
history, and the status replayed at any past moment is what was recorded then."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from relto.vetting import (
    ACTIVE,
    FINAL,
    Clearance,
    IllegalTransition,
    IncidentKind,
    Status,
    VettingInputError,
    default_policy,
    is_legal,
)

from .conftest import T0, new_clearance

POLICY = default_policy()
requests = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(list(Status)), st.sampled_from(list(IncidentKind))),
        st.integers(min_value=0, max_value=400 * 86400),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_random_requests_never_escape_the_table(reqs: list[tuple[object, int]]) -> None:
    c: Clearance = new_clearance(POLICY, nation="GBR", level="SC")
    at = T0
    for target, delta in reqs:
        at = at + dt.timedelta(seconds=delta)
        before = c
        frm = c.status_at(at)
        try:
            if isinstance(target, IncidentKind):
                c = c.record_incident(target, at=at, actor="so", reason="prop")
            else:
                c = c.transition(target, at=at, actor="vo", reason="prop", policy=POLICY)
        except (IllegalTransition, VettingInputError):
            assert c is before
            continue
        # History only grows; the old events are untouched.
        assert c.events[: len(before.events)] == before.events
        assert len(c.events) > len(before.events)
        if isinstance(target, Status):
            assert frm is not None and is_legal(frm, target)
            assert frm not in FINAL
        for e in c.events[len(before.events) :]:
            if e.to_status is not None:
                assert e.from_status is None or is_legal(e.from_status, e.to_status)
    # Replay: the recorded status right at each transition is that transition's target.
    seqs = [e.seq for e in c.events]
    assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
    times = [e.at for e in c.events]
    assert times == sorted(times)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=20 * 366 * 86400))
def test_granted_clearance_current_exactly_until_valid_until(offset: int) -> None:
    c = new_clearance(POLICY)
    for i, s in enumerate((Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED), 1):
        c = c.transition(s, at=T0 + dt.timedelta(days=i), actor="vo", reason="x", policy=POLICY)
    at = T0 + dt.timedelta(days=3, seconds=offset)
    until = c.valid_until_at(at)
    assert until is not None
    assert c.is_current(at, POLICY) is (at < until)
    assert (c.status_at(at) in ACTIVE) is (at < until)
