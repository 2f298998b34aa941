"""The engine shares export answers between people whose export facts are alike.

Stops: one person's id (or another's answer) leaking into a decision about
someone else through the shared answers, and a remembered answer surviving into
a different time or action.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from relto.decisions import Engine, Subject, load_scenario
from relto.decisions.export_hook import ExportControlCheck
from relto.export_control import AuthorizedUserStatus, Regime

SCENARIO = Path(__file__).parent / "scenarios" / "export.yaml"


def _twins() -> tuple[object, ExportControlCheck, list[Subject]]:
    """The export scenario with a twin of each person: the same export facts under
    another id (and another authorized-user identifier, which no rule reads)."""
    sc = load_scenario(SCENARIO)
    check = sc.export_check
    assert check is not None and sc.at is not None
    parties = dict(check.parties)
    people = []
    for pid in ("alice", "bob", "kenji", "dana"):
        p = parties[pid]
        twin = replace(
            p,
            id=f"{pid}-twin",
            authorized=tuple(
                AuthorizedUserStatus(a.regime, a.identifier + "-other", a.valid_from, a.valid_until)
                for a in p.authorized
            ),
        )
        parties[twin.id] = twin
        s = sc.subject_at(pid, sc.at)
        people += [s, replace(s, id=twin.id)]
    return sc, replace(check, parties=parties), people


def test_alike_people_get_their_own_ids_in_shared_answers() -> None:
    sc, check, people = _twins()
    at = sc.at  # type: ignore[attr-defined]
    engine = Engine(sc.world, sc.mapper, sc.recognition, check)  # type: ignore[attr-defined]
    objects = list(sc.objects.values())  # type: ignore[attr-defined]
    for s in people:
        for o in objects:
            for action in ("read", "download", "share", "relabel"):
                shared = engine.evaluate(s, action, o, at=at)
                fresh = Engine(
                    sc.world, sc.mapper, sc.recognition,  # type: ignore[attr-defined]
                    replace(check),
                ).evaluate(s, action, o, at=at)  # fmt: skip
                assert shared == fresh, (s.id, action, o.id)
                text = " ".join(r.sentence for r in shared.reasons)
                other = s.id[:-5] if s.id.endswith("-twin") else f"{s.id}-twin"
                assert f" {other} " not in f" {text} ", (s.id, text)
                assert "\x00" not in text
    # the twins did share: fewer answers were asked than requests made
    asked = len(engine._export_answers)
    assert 0 < asked <= len(people) * len(objects) * 4 / 2


def test_shared_answers_follow_the_time_and_action_asked() -> None:
    sc, check, people = _twins()
    engine = Engine(sc.world, sc.mapper, sc.recognition, check)  # type: ignore[attr-defined]
    objects = list(sc.objects.values())  # type: ignore[attr-defined]
    rng = random.Random(7)
    times = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 6, 12)] + [
        datetime(2027, 2, 1, tzinfo=UTC)
    ]
    for _ in range(400):
        s, o = rng.choice(people), rng.choice(objects)
        action, at = rng.choice(("read", "download", "share")), rng.choice(times)
        fresh = Engine(
            sc.world,
            sc.mapper,
            sc.recognition,
            replace(check),  # type: ignore[attr-defined]
        ).evaluate(s, action, o, at=at)
        assert engine.evaluate(s, action, o, at=at) == fresh, (s.id, action, o.id, at)


def test_the_regime_of_an_authorized_user_status_still_counts() -> None:
    """Statuses are compared by regime and window: an EAR status is not an ITAR one."""
    sc, check, _ = _twins()
    at = sc.at  # type: ignore[attr-defined]
    bob = check.parties["bob"]
    ear = replace(
        bob,
        id="bob-ear",
        authorized=tuple(replace(a, regime=Regime.EAR) for a in bob.authorized),
    )
    check = replace(check, parties={**check.parties, "bob-ear": ear})
    engine = Engine(sc.world, sc.mapper, sc.recognition, check)  # type: ignore[attr-defined]
    sonar = sc.objects["sonar"]  # type: ignore[attr-defined]
    s = sc.subject_at("bob", at)  # type: ignore[attr-defined]
    assert engine.evaluate(s, "read", sonar, at=at).legal_basis == "ITAR 126.7"
    denied = engine.evaluate(replace(s, id="bob-ear"), "read", sonar, at=at)
    assert not denied.allowed
    assert "recipient_not_authorized_user" in denied.reasons[0].sentence
