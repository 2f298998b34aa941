"""The demo partnership file: a user's edited copy is checked before anything is
loaded, with a message that says what is wrong; relative dates keep it current."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from relto.demo import DEMO_FILE, InvalidDemoFile, parse_demo, read_demo


def _doc() -> dict[str, Any]:
    data = yaml.safe_load(DEMO_FILE.read_text())
    assert isinstance(data, dict)
    return data


def test_packaged_file_has_every_clearance_state_and_workstream() -> None:
    d = read_demo()
    assert d.partnership.members == ("AUS", "GBR", "USA")
    assert set(d.partnership.partners) == {"JPN", "KOR", "NZL", "CAN"}
    assert len(d.projects) == 8
    states = {c.status for p in d.people for c in p.clearances}
    assert states == {"granted", "interim", "expired", "suspended", "under_review"}
    for nation in d.partnership.nations:
        assert any(p.nationality == nation for p in d.people), nation
    assert len(d.documents) >= 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["partnership"].update(members=["GBR", "XX"]), "alpha-3"),
        (lambda d: d["admissions"].update(undersea={"FRA": "SECRET"}), "FRA is not a nation"),
        (lambda d: d["admissions"].update(undersea={"JPN": "COSMIC"}), "unknown classification"),
        (lambda d: d["people"][0].update(roles=["admiral"]), "unknown role"),
        (lambda d: d["people"][0]["clearances"][0].update(level="DV2"), "vetting scheme"),
        (lambda d: d["people"][0]["clearances"][0].update(status="pending"), "status must be"),
        (lambda d: d["people"][0]["clearances"][0].update(granted="yesterday"), "not a date"),
        (lambda d: d["documents"][0].update(owner="nobody"), "unknown owner"),
        (lambda d: d["projects"].append(d["projects"][0]), "used twice"),
    ],
)
def test_edited_file_errors_name_the_problem(edit: Any, message: str) -> None:
    doc = _doc()
    edit(doc)
    with pytest.raises(InvalidDemoFile) as err:
        parse_demo(doc)
    assert message in str(err.value)


def test_not_yaml_is_a_domain_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("partnership: [unclosed")
    with pytest.raises(InvalidDemoFile, match="not valid YAML"):
        read_demo(bad)
    with pytest.raises(InvalidDemoFile, match="cannot read"):
        read_demo(tmp_path / "missing.yaml")


def test_relative_dates_follow_the_load_day() -> None:
    from relto.demo.data import _d

    today = date(2026, 11, 29)
    assert _d("+21d", "x", today) == date(2026, 12, 20)
    assert _d("-6m", "x", today) == date(2026, 5, 28)
    assert _d("+2y", "x", today) == date(2028, 11, 28)
    assert _d("2025-01-01", "x", today) == date(2025, 1, 1)


@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=10,
    )
)
def test_arbitrary_yaml_never_crashes_the_loader(doc: Any) -> None:
    with contextlib.suppress(InvalidDemoFile):
        parse_demo(doc)


def test_copied_file_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _doc()
    doc["partnership"]["name"] = "My own partnership"
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("RELTO_DEMO_FILE", str(mine))
    assert read_demo().partnership.name == "My own partnership"
