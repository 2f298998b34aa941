"""The engine's Decision carries the legal basis of an allowed export-controlled
request, and never allows one without a basis.

Stops: a controlled item released with no legal basis on record (a hook that
allows but names none), a memoised basis from one object leaking onto another
of the same group, and the list path (``readable``) disagreeing with
``evaluate``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from relto.decisions import Engine, ExportBasis, Resource, Subject, decide_scenario, load_scenario

SCENARIO = Path(__file__).parent / "scenarios" / "export.yaml"


def test_allowed_decisions_carry_their_legal_basis() -> None:
    got = {req.id: d for req, d in decide_scenario(load_scenario(SCENARIO))}
    assert got["aukus-126-7"] is not None and got["aukus-126-7"].legal_basis == "ITAR 126.7"
    assert got["jpn-licence"] is not None
    assert got["jpn-licence"].legal_basis == "licence TAA TAA-0001"
    for rid, d in got.items():
        assert d is not None
        if not d.allowed:
            assert d.legal_basis is None, rid


def test_same_group_objects_get_each_their_own_basis() -> None:
    sc = load_scenario(SCENARIO)
    at = sc.at
    assert at is not None and sc.export_check is not None
    engine = sc.engine()
    kenji = sc.subject_at("kenji", at)
    bob = sc.subject_at("bob", at)
    sonar = sc.objects["sonar"]
    sensor = sc.objects["sensor"]  # same label and group as sonar: only the export data differs
    assert engine.evaluate(bob, "read", sonar, at=at).legal_basis == "ITAR 126.7"
    assert engine.evaluate(kenji, "read", sonar, at=at).legal_basis == "licence TAA TAA-0001"
    assert not engine.evaluate(kenji, "read", sensor, at=at).allowed  # DSP-5 expired


class _AllowsWithoutBasis:
    """A hook that lets everything through and names no legal basis."""

    def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
        return None

    def legal_basis(self, subject: Subject, action: str, obj: Resource, at: datetime) -> None:
        return None


def test_a_hook_that_names_no_basis_denies_in_evaluate_and_readable() -> None:
    sc = load_scenario(SCENARIO)
    at = sc.at
    assert at is not None
    hook = _AllowsWithoutBasis()
    assert isinstance(hook, ExportBasis)
    engine = Engine(sc.world, sc.mapper, sc.recognition, hook)
    bob = sc.subject_at("bob", at)
    sonar = sc.objects["sonar"]
    d = engine.evaluate(bob, "read", sonar, at=at)
    assert not d.allowed and d.codes == ("EXPORT_CONTROLLED",)
    assert d.legal_basis is None
    assert engine.readable(bob, [sonar], at=at) == []
