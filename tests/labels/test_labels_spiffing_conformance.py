"""The spiffing conformance suite, run data-driven through ``relto label ...``.

Every ``<test>`` in ``spiffing/tests.xml`` that does not name a ``.ber`` file, and
every ``<policy>`` load, becomes one CLI case: markings by language, validity,
clearance markings, access results, translations and the expected exceptions.
Cases not run, with the reason (see docs/labels.md):

- tests naming ``stupid-label.ber`` and ``this-file-does-not-exist.ber``: BER/DER
  labels are out of scope (the issue excludes ``.ber`` files);
- ``nato-4774-17-5``: commented out in tests.xml itself (the SPIF cannot suppress
  the EAPC releasability marking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from relto.cli.main import main

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SUITE = Path(__file__).resolve().parents[1] / "data" / "conformance" / "spiffing"


@dataclass(frozen=True)
class Case:
    ident: str
    spifs: tuple[str, ...]
    attrs: dict[str, str] = field(default_factory=dict)
    lang: str | None = None
    policy_exception: str | None = None


def _cases() -> list[Case]:
    tree = etree.parse(str(SUITE / "tests.xml"))
    cases: list[Case] = []
    for s, seq in enumerate(tree.getroot().iter("sequence"), 1):
        spifs = tuple(p.get("spif") for p in seq.iter("policy"))
        for p in seq.iter("policy"):
            if p.get("exception"):
                cases.append(
                    Case(
                        f"seq{s}-policy-{p.get('spif')}",
                        (p.get("spif"),),
                        {},
                        None,
                        p.get("exception"),
                    )
                )
        good = tuple(p.get("spif") for p in seq.iter("policy") if not p.get("exception"))
        for t, test in enumerate(seq.iter("test"), 1):
            label = test.get("label", "")
            if label.endswith(".ber"):
                continue
            lang = test.get(XML_LANG)
            ident = f"seq{s}-test{t}-{label}" + (f"-{lang}" if lang else "")
            cases.append(Case(ident, good or spifs, dict(test.attrib), lang))
    return cases


CASES = _cases()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _spif_args(case: Case) -> list[str]:
    args: list[str] = []
    for s in case.spifs:
        args += ["--spif", str(SUITE / s)]
    return args


def test_suite_is_not_empty_and_ber_cases_are_the_only_ones_left_out() -> None:
    tree = etree.parse(str(SUITE / "tests.xml"))
    all_tests = list(tree.getroot().iter("test"))
    ber = [t for t in all_tests if t.get("label", "").endswith(".ber")]
    ran = [c for c in CASES if c.policy_exception is None]
    assert len(ran) == len(all_tests) - len(ber) == 23
    assert [t.get("label") for t in ber] == ["stupid-label.ber", "this-file-does-not-exist.ber"]


@pytest.mark.parametrize("case", CASES, ids=[c.ident for c in CASES])
def test_spiffing_case_through_cli(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    spif = _spif_args(case)
    if case.policy_exception is not None:
        code, out, err = _run(capsys, "label", "validate", *spif)
        assert code == 1
        assert case.policy_exception.casefold() in err.casefold()
        return
    a = case.attrs
    label = str(SUITE / a["label"])
    lang = ["--lang", case.lang] if case.lang else []
    if "valid" in a:
        code, out, err = _run(capsys, "label", "validate", *spif, "--label", label)
        expected = a["valid"] == "true"
        assert code == (0 if expected else 1), err
        if not expected:
            assert "invalid:" in err
    if "label-marking" in a:
        code, out, err = _run(capsys, "label", "marking", *spif, "--label", label, *lang)
        assert code == 0, err
        assert out.rstrip("\n") == a["label-marking"]
    if "encrypt" in a and "encrypt-marking" in a:
        code, out, err = _run(
            capsys, "label", "translate", *spif, "--to", a["encrypt"], "--label", label
        )
        assert code == 0, err
        assert out.rstrip("\n") == a["encrypt-marking"]
    if "clearance" in a:
        clearance = str(SUITE / a["clearance"])
        if "clearance-marking" in a:
            code, out, err = _run(capsys, "label", "marking", *spif, "--clearance", clearance)
            assert code == 0, err
            assert out.rstrip("\n") == a["clearance-marking"]
        code, out, err = _run(
            capsys, "label", "access", *spif, "--label", label, "--clearance", clearance
        )
        assert code == 0, err
        assert out.strip() == ("granted" if a["acdf-result"] == "1" else "denied")
