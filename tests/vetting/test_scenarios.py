"""Scenarios from the issue: midnight expiry, immediate suspension, recognition only
while an agreement is in force, dual nationals, overdue reports and incidents."""

from __future__ import annotations

import datetime as dt

import pytest

from relto.vetting import (
    AUTOMATIC_ACTOR,
    Clearance,
    IncidentKind,
    NotCurrent,
    ObligationKind,
    Person,
    ProjectMembership,
    Role,
    Status,
    VettingInputError,
    VettingPolicy,
    business_deadline,
    load_policy,
    recognises,
    recognition,
)

from .conftest import PATHS, T0, new_clearance, walk

UTC = dt.UTC


def granted(policy: VettingPolicy, nation: str = "AUS", level: str = "NV1") -> Clearance:
    return walk(new_clearance(policy, nation=nation, level=level), PATHS[Status.GRANTED], policy)


def test_clearance_expires_at_midnight(policy: VettingPolicy) -> None:
    c = granted(policy)  # granted on 2026-01-08 (three steps after T0), NV1: 10 years
    midnight = dt.datetime(2036, 1, 8, tzinfo=UTC)
    assert c.valid_until_at(midnight) == midnight
    assert c.is_current(midnight - dt.timedelta(microseconds=1), policy)
    assert not c.is_current(midnight, policy)
    cur = c.currency(midnight, policy)
    assert cur.code is NotCurrent.EXPIRED
    assert cur.reason == "the AUS NV1 clearance expired on 2036-01-08 00:00 UTC"
    # Nothing was written: expiry is computed, the history is unchanged.
    assert c.recorded_status_at(midnight) is Status.GRANTED


def test_expiry_in_other_timezones_is_the_same_instant(policy: VettingPolicy) -> None:
    c = granted(policy)
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert not c.is_current(dt.datetime(2036, 1, 8, 9, 0, tzinfo=tokyo), policy)
    assert c.is_current(dt.datetime(2036, 1, 8, 8, 59, 59, tzinfo=tokyo), policy)


def test_leap_day_grant_expires_on_28_february() -> None:
    from relto.vetting import expiry_after

    assert expiry_after(dt.datetime(2028, 2, 29, 12, tzinfo=UTC), 5) == dt.datetime(
        2033, 2, 28, tzinfo=UTC
    )


def test_suspension_takes_effect_on_the_very_next_check(policy: VettingPolicy) -> None:
    c = granted(policy)
    at = dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert c.is_current(at, policy)
    s = c.transition(Status.SUSPENDED, at=at, actor="so-1", reason="pending inquiry", policy=policy)
    assert not s.is_current(at, policy)
    assert s.currency(at, policy).code is NotCurrent.SUSPENDED
    assert s.not_current_reason(at, policy) == "the AUS NV1 clearance is suspended"
    # One microsecond earlier the suspension did not exist yet: history is exact.
    assert s.is_current(at - dt.timedelta(microseconds=1), policy)


def test_under_review_suspends_only_where_policy_says(policy: VettingPolicy) -> None:
    lenient = load_policy(suspends_override={"AUS": False})
    c = granted(policy).transition(
        Status.UNDER_REVIEW, at=T0 + dt.timedelta(days=10), actor="so", reason="r", policy=policy
    )
    at = T0 + dt.timedelta(days=11)
    assert not c.is_current(at, policy)
    assert c.currency(at, policy).code is NotCurrent.UNDER_REVIEW
    assert "AUS policy suspends access" in (c.not_current_reason(at, policy) or "")
    assert c.is_current(at, lenient)


@pytest.mark.parametrize(
    ("steps", "code", "sentence"),
    [
        (
            [],
            NotCurrent.NOT_GRANTED,
            "the AUS NV1 clearance has not been granted (it is still sponsored)",
        ),
        (PATHS[Status.REVOKED], NotCurrent.REVOKED, "the AUS NV1 clearance was revoked"),
        (PATHS[Status.DENIED], NotCurrent.DENIED, "the AUS NV1 clearance was denied"),
        (
            PATHS[Status.LAPSED],
            NotCurrent.LAPSED,
            "the AUS NV1 clearance lapsed because its sponsorship ended",
        ),
    ],
)
def test_not_current_reasons_are_sentences(
    policy: VettingPolicy, steps: list[Status], code: NotCurrent, sentence: str
) -> None:
    c = walk(new_clearance(policy), steps, policy)
    cur = c.currency(T0 + dt.timedelta(days=30), policy)
    assert (cur.current, cur.code, cur.reason) == (False, code, sentence)


def test_jpn_clearance_counts_for_gbr_only_while_agreement_in_force() -> None:
    text = """
format: relto-vetting-agreements/1
agreements:
  - id: GBR-JPN-TEST
    parties: [GBR, JPN]
    title: test agreement
    signed: 2013-07-04
    in_force: 2014-01-01
    terminated: 2030-01-01
    scope: government
    verified: false
    sources: [test]
    note: test data
"""
    pol = load_policy(agreements=text)
    before = dt.datetime(2013, 12, 31, 23, 59, 59, tzinfo=UTC)
    start = dt.datetime(2014, 1, 1, tzinfo=UTC)
    end = dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert not recognises("JPN", "GBR", before, policy=pol)
    assert recognises("JPN", "GBR", start, policy=pol)
    assert recognises("JPN", "GBR", end - dt.timedelta(microseconds=1), policy=pol)
    assert not recognises("JPN", "GBR", end, policy=pol)
    assert "ended" in recognition("JPN", "GBR", end, policy=pol).reason
    # And with the shipped data: in force now, not before January 2014.
    assert recognises("JPN", "GBR", dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert not recognises("JPN", "GBR", dt.datetime(2013, 12, 1, tzinfo=UTC))


def test_no_recognition_without_agreement_and_no_transitivity() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert recognises("NZL", "NZL", at)
    # JPN-GBR and GBR-USA are recorded; that says nothing about other pairs.
    assert not recognises("KOR", "GBR", at)
    assert not recognises("NZL", "KOR", at)
    # Signed but entry into force not confirmed: not recognised (fail closed).
    assert not recognises("JPN", "NZL", at)
    assert not recognises("AUS", "KOR", at)


def test_military_only_agreement_does_not_cover_government_information() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert recognises("KOR", "JPN", at, scope="military")
    assert not recognises("KOR", "JPN", at, scope="government")
    assert recognises("JPN", "GBR", at, scope="military")


def test_dual_national_is_first_class() -> None:
    p = Person(
        id="p-7",
        name="Aiko Smith",
        nationalities=frozenset({"JPN", "AUS"}),
        organisation="ANU",
        home_nation="AUS",
        roles=frozenset({Role.ENGINEER}),
        projects=(ProjectMembership("quantum-x"),),
    )
    assert p.is_dual_national and p.nationalities == {"AUS", "JPN"}
    assert p.is_member_of("quantum-x") and not p.is_member_of("hypersonics")
    with pytest.raises(VettingInputError):
        Person("p-8", "X", frozenset(), "org", "AUS")
    with pytest.raises(VettingInputError):
        Person("p-8", "X", frozenset({"Japan"}), "org", "AUS")


def test_sead3_deadline_is_five_business_days(policy: VettingPolicy) -> None:
    # Return on Friday 2026-01-09: business days Mon 12 .. Fri 16; late from Sat 17 00:00.
    rule = policy.obligation("USA", "foreign_travel")
    assert rule.business_days == 5 and rule.source.verified
    assert business_deadline(dt.date(2026, 1, 9), 5) == dt.datetime(2026, 1, 17, tzinfo=UTC)


def test_overdue_expected_report_puts_clearance_under_review(policy: VettingPolicy) -> None:
    c = granted(policy, nation="USA", level="SECRET")
    c = c.expect_report(
        ObligationKind.FOREIGN_TRAVEL,
        occurred_on=dt.date(2026, 1, 9),
        at=dt.datetime(2026, 1, 9, tzinfo=UTC),
        actor="fso-1",
        reason="trip approved",
        policy=policy,
    )
    due = dt.datetime(2026, 1, 17, tzinfo=UTC)
    assert c.is_current(due - dt.timedelta(microseconds=1), policy)
    assert c.status_at(due) is Status.UNDER_REVIEW
    assert "foreign travel report due 2026-01-17" in (c.not_current_reason(due, policy) or "")
    # Filed late: recorded as under review, by relto, with the reason.
    ref = c.events[-1].seq
    late = c.file_report(
        ObligationKind.FOREIGN_TRAVEL,
        occurred_on=dt.date(2026, 1, 9),
        at=due,
        actor="holder-1",
        reason="returned from Osaka",
        policy=policy,
        ref=ref,
    )
    assert late.events[-1].actor == AUTOMATIC_ACTOR
    assert late.recorded_status_at(due) is Status.UNDER_REVIEW


def test_timely_report_keeps_clearance_current(policy: VettingPolicy) -> None:
    c = granted(policy, nation="USA", level="SECRET")
    at = dt.datetime(2026, 1, 16, 23, 0, tzinfo=UTC)
    ok = c.file_report(
        ObligationKind.FOREIGN_CONTACT,
        occurred_on=dt.date(2026, 1, 9),
        at=at,
        actor="holder-1",
        reason="met a foreign national at a conference",
        policy=policy,
    )
    assert ok.is_current(at, policy) and len(ok.events) == len(c.events) + 1


@pytest.mark.parametrize("kind", list(IncidentKind))
def test_incident_puts_clearance_under_review(policy: VettingPolicy, kind: IncidentKind) -> None:
    c = granted(policy)
    at = T0 + dt.timedelta(days=40)
    after = c.record_incident(kind, at=at, actor="so-1", reason="document left unsecured")
    assert after.status_at(at) is Status.UNDER_REVIEW
    assert after.events[-2].incident is kind
    assert not after.is_current(at, policy)


def test_report_about_the_future_rejected(policy: VettingPolicy) -> None:
    c = granted(policy)
    with pytest.raises(VettingInputError):
        c.file_report(
            ObligationKind.CHANGE_OF_CIRCUMSTANCES,
            occurred_on=dt.date(2027, 1, 1),
            at=T0 + dt.timedelta(days=5),
            actor="h",
            reason="x",
            policy=policy,
        )
