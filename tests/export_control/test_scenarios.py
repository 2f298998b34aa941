"""Export control through the decision engine: scenarios and ``relto decide``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from relto.cli.main import main
from relto.decisions import InvalidScenario, decide_scenario, load_scenario

SCENARIO = Path(__file__).parent / "scenarios" / "export.yaml"


def _explained() -> dict[str, tuple[bool, list[str], str]]:
    out = {}
    for req, d in decide_scenario(load_scenario(SCENARIO)):
        assert d is not None
        out[req.id] = (d.allowed, list(d.codes), " ".join(r.sentence for r in d.reasons))
    return out


def test_scenario_requests_are_judged_by_export_control() -> None:
    got = _explained()
    assert got["aukus-126-7"][:2] == (True, [])
    assert got["jpn-licence"][:2] == (True, [])
    assert got["retransfer-in-aukus"][:2] == (True, [])
    for rid in (
        "jpn-no-licence",
        "jpn-expired",
        "uk-excluded",
        "dual-national",
        "retransfer-to-jpn",
        "share-no-recipient",
    ):
        assert got[rid][:2] == (False, ["EXPORT_CONTROLLED"]), rid
    assert "place_outside_aukus_territory" in got["jpn-no-licence"][2]
    no_licence = "no_covering_licence: No loaded ITAR licence covers USML IV(h)."
    assert no_licence in got["jpn-no-licence"][2]
    expired = "licence_expired: Licence DSP-5 DSP5-0002 expired on 2026-03-01."
    assert expired in got["jpn-expired"][2]
    assert "item_on_excluded_list" in got["uk-excluded"][2]
    assert "Recipient dana holds IRN nationality" in got["dual-national"][2]
    # the re-transfer is a new transfer from bob (uk-lab), which the TAA does not name
    assert "sender's organisation (uk-lab)" in got["retransfer-to-jpn"][2]
    assert "retransfer_recipient_missing" in got["share-no-recipient"][2]


def test_legal_basis_is_available_from_the_hook() -> None:
    sc = load_scenario(SCENARIO)
    assert sc.export_check is not None
    at = sc.at
    assert at is not None
    sonar = sc.objects["sonar"]
    bob = sc.subject_at("bob", at)
    kenji = sc.subject_at("kenji", at)
    assert sc.export_check.decide(bob, "read", sonar, at).legal_basis == "ITAR 126.7"
    assert sc.export_check.decide(kenji, "read", sonar, at).legal_basis == "licence TAA TAA-0001"
    share = sc.export_check.retransfer_to("alice").decide(bob, "share", sonar, at)
    assert share.legal_basis == "ITAR 126.7"


def test_cli_decides_export_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["decide", "--scenario", str(SCENARIO), "--explain"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0
    by_id = {line["request"]: line for line in out}
    assert by_id["aukus-126-7"]["allowed"] is True
    assert by_id["jpn-expired"]["reasons"] == ["EXPORT_CONTROLLED"]
    assert "expired on 2026-03-01" in by_id["jpn-expired"]["explanation"][0]
    # an allowed export-controlled request says under which legal basis; a denial has none
    assert by_id["aukus-126-7"]["legal_basis"] == "ITAR 126.7"
    assert by_id["jpn-licence"]["legal_basis"] == "licence TAA TAA-0001"
    assert by_id["retransfer-in-aukus"]["legal_basis"] == "ITAR 126.7"
    assert "legal_basis" not in by_id["jpn-expired"]


def _scenario(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return f


BASE = (
    "at: 2026-06-01\n"
    "people: [{id: a, nationalities: [GBR], projects: [p]}]\n"
    "clearances: [{person: a, nation: GBR, level: SECRET}]\n"
    "requests: [{id: r, person: a, object: o}]\n"
)


def test_unknown_party_fails_closed(tmp_path: Path) -> None:
    f = _scenario(
        tmp_path,
        BASE + "objects: [{id: o, classification: UNCLASSIFIED, originator: USA, project: p,"
        " rel_to: [GBR], export: {controlled: true, kind: technical_data, regime: ITAR,"
        " usml_category: XI, sender: nobody}}]\n"
        "export: {excluded_lists: []}\n",
    )
    ((_, d),) = decide_scenario(load_scenario(f))
    assert d is not None and d.codes == ("EXPORT_CONTROLLED",)
    assert "party_not_recorded" in d.reasons[0].sentence


def test_not_controlled_item_is_allowed(tmp_path: Path) -> None:
    f = _scenario(
        tmp_path,
        BASE + "objects: [{id: o, classification: UNCLASSIFIED, originator: USA, project: p,"
        " rel_to: [GBR], export: {controlled: false, kind: technical_data}}]\n",
    )
    ((_, d),) = decide_scenario(load_scenario(f))
    assert d is not None and d.allowed


def test_old_export_forms_still_deny_without_export_data(tmp_path: Path) -> None:
    for block in ("export: {regime: ITAR, classification: XI}", "export_controlled: true"):
        f = _scenario(
            tmp_path,
            BASE + "objects: [{id: o, classification: UNCLASSIFIED, originator: USA,"
            f" project: p, rel_to: [GBR], {block}}}]\n",
        )
        sc = load_scenario(f)
        assert sc.export_check is None
        ((_, d),) = decide_scenario(sc)
        assert d is not None and d.codes == ("EXPORT_CONTROLLED",)
        assert "no export-control check is configured" in d.reasons[0].sentence


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("export: {licences: [{number: x}]}\n", "export.licences[0]"),
        ("export: {bogus: 1}\n", "export: unknown keys"),
        ("export_parties: [{id: a}]\n", "export_parties[0]"),
        ("export_parties: [{id: a, location: gbr}]\n", "export_parties[0].location"),
        (
            "export_parties: [{id: a, location: GBR}, {id: a, location: GBR}]\n",
            "export_parties[1]",
        ),
        (
            "objects: [{id: o, classification: UNCLASSIFIED, originator: USA,"
            " export: {controlled: true, kind: technical_data}}]\n",
            "objects[0].export.regime",
        ),
        (
            "objects: [{id: o, classification: UNCLASSIFIED, originator: USA,"
            " export: {controlled: yes please, kind: technical_data, sender: a}}]\n",
            "objects[0].export.controlled",
        ),
        (
            "objects: [{id: o, classification: UNCLASSIFIED, originator: USA,"
            " export: {kind: rocket, controlled: false}}]\n",
            "objects[0].export.kind",
        ),
    ],
)
def test_malformed_export_data_names_the_path(
    tmp_path: Path, text: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _scenario(tmp_path, text)
    with pytest.raises(InvalidScenario, match="^scenario " + re.escape(where)):
        load_scenario(f)
    code = main(["decide", "--scenario", str(f)])
    assert code == 1 and "relto: error: scenario" in capsys.readouterr().err


class _Broken(dict[str, object]):
    def get(self, *_: object) -> object:
        raise RuntimeError("boom")


def test_hook_fails_closed_on_any_error() -> None:
    from datetime import UTC, datetime

    from relto.decisions import Resource, Subject
    from relto.decisions.export_hook import ExportControlCheck
    from relto.export_control import ExportFacts

    hook = ExportControlCheck(ExportFacts(), parties=_Broken())  # type: ignore[arg-type]
    obj = Resource("o", "USA", "UNCLASSIFIED", frozenset({"USA"}))
    sentence = hook.check(Subject("a", frozenset({"USA"})), "read", obj, datetime.now(UTC))
    assert sentence is not None and sentence.startswith("export_facts_unreadable:")
