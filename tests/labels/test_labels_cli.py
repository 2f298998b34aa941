"""``relto label ...`` beyond the conformance suite: parse, exit codes, built-ins."""

from __future__ import annotations

from pathlib import Path

import pytest

from relto.cli.main import main
from relto.labels import read_label


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_prints_canonical_marking_and_label_xml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "label", "parse", "s // rel to gbr,usa", "--originator", "GBR")
    assert code == 0, err
    first, _, xml = out.partition("\n")
    assert first == "SECRET//REL TO GBR, USA"
    label = read_label(xml.encode())
    assert label.policy == "GBR" and label.classification == "SECRET"
    assert label.categories[0].values == ("GBR", "USA")
    assert label.creation_time is not None and label.review_time is not None


def test_parse_portion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "label", "parse", "TOP SECRET//NOFORN", "--portion")
    assert code == 0
    assert out.splitlines()[:2] == ["TOP SECRET//NOFORN", "(TS//NF)"]


def test_parse_keeps_the_portion_form(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "label", "parse", "( s//rel to gbr, usa )")
    assert code == 0
    assert out.splitlines()[0] == "(S//REL TO USA, GBR)"


def test_parse_contradiction_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "label", "parse", "SECRET//NOFORN/REL TO USA, GBR")
    assert code == 1
    assert out == ""
    assert err.strip().startswith("relto: error: NOFORN at offset 8 contradicts REL TO")
    assert len(err.strip().splitlines()) == 1


def test_validate_unreadable_label_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<not-closed>")
    code, _, err = _run(capsys, "label", "validate", "--spif", "USA", "--label", str(bad))
    assert code == 2
    assert "not well-formed" in err
    code, _, _ = _run(
        capsys, "label", "validate", "--spif", "USA", "--label", str(tmp_path / "nope")
    )
    assert code == 2


def test_validate_unreadable_spif_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "label", "validate", "--spif", str(tmp_path / "missing.xml"))
    assert code == 2
    assert "cannot read" in err


def test_validate_builtin_label_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "label", "parse", "SECRET//REL TO USA, JPN", "--originator", "USA")
    assert code == 0
    path = tmp_path / "l.xml"
    path.write_text(out.partition("\n")[2], encoding="utf-8")
    code, out, err = _run(capsys, "label", "validate", "--label", str(path))
    assert (code, out.strip()) == (0, "valid"), err
    code, out, err = _run(capsys, "label", "marking", "--spif", "USA", "--label", str(path))
    assert (code, out.strip()) == (0, "SECRET//REL TO USA, JPN")
    code, out, err = _run(
        capsys, "label", "translate", "--to", "JPN", "--label", str(path), "--lang", "ja"
    )
    assert (code, out.strip()) == (0, "極秘//REL TO JPN, USA"), err


def test_strict_flag_refuses_schema_invalid_spif(
    conformance_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spif = str(conformance_dir / "spif" / "sparrow-acme.xml")
    assert _run(capsys, "label", "validate", "--spif", spif)[0] == 0
    code, _, err = _run(capsys, "label", "validate", "--strict", "--spif", spif)
    assert code == 1
    assert "not valid Open XML SPIF 2.1" in err


def test_marking_needs_exactly_one_of_label_or_clearance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, _ = _run(capsys, "label", "marking", "--spif", "USA")
    assert code == 2
