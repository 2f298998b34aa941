"""Every example in the docs runs as published.

Each fenced block in ``README.md`` and ``docs/*.md`` (ADRs aside: they record what
was decided then) carries a language tag, and the tag says what is done with it:

- ``pycon``: a Python session; run with :mod:`doctest`, the printed results must
  match (``...`` stands for any text).
- ``python``: run; it must not raise. Blocks of one page share one namespace, in
  page order, so a later block may use an earlier block's names.
- ``console``: shell commands, each line starting with ``$ ``; run with the
  project's ``.venv/bin`` first on ``PATH``, in a scratch folder that the page's
  other blocks share. Each must exit 0, and the lines shown after a command must
  appear in its output in that order.
- ``yaml``: a decision scenario (``relto decide --scenario``); every request names
  a person and an object of the scenario, and no object is unreadable to the engine.
- ``json``: must parse.
- ``env``: environment settings (``NAME='value'``); relto's settings must accept them.
- ``sh`` (commands shown, not run here: they start servers or install) and ``text``
  (a synopsis or an illustration).

A block without a tag, or with another one, fails the test: the author decides.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from relto.config import Settings
from relto.decisions.scenario import decide_scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUN = {"pycon", "python", "console", "yaml", "json", "env"}
SHOWN = {"sh", "text"}
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    tag: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, tag, body = i + 1, m.group(1), []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}:{start}: fence never closed")
        found.append(Block(page, start, tag, "\n".join(body) + "\n"))
        i += 1
    return found


def test_every_block_says_what_it_is() -> None:
    untagged = [
        f"{b.where}: ```{b.tag}"
        for page in PAGES
        for b in blocks_of(page)
        if b.tag not in RUN | SHOWN
    ]
    assert not untagged, f"tag each block with one of {sorted(RUN | SHOWN)}: {untagged}"


def _pages_with(tags: set[str]) -> list[Path]:
    return [p for p in PAGES if any(b.tag in tags for b in blocks_of(p))]


def _env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["RELTO_DATA_DIR"] = str(scratch / "relto-data")
    env["HOME"] = str(scratch)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def _run_python(block: Block, namespace: dict[str, object]) -> None:
    if block.tag == "python":
        code = compile(block.text, block.where, "exec")
        exec(code, namespace)  # the docs' own example code
        return
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, namespace, block.where, str(block.page), block.line)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    out: list[str] = []
    runner.run(test, out=out.append, clear_globs=False)
    assert runner.failures == 0, "".join(out)
    namespace.update(test.globs)


@pytest.mark.parametrize("page", _pages_with({"python", "pycon"}), ids=lambda p: p.name)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("RELTO_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path / "relto-data"))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks_of(page):
        if block.tag in {"python", "pycon"}:
            _run_python(block, namespace)


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) for each ``$ `` line."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands and line.strip():
            commands[-1][1].append(line.strip())
        elif not commands and line.strip():
            raise AssertionError(f"{block.where}: text before the first '$ ' command")
    return commands


@pytest.mark.parametrize("page", _pages_with({"console"}), ids=lambda p: p.name)
def test_console_examples_run(page: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    for block in blocks_of(page):
        if block.tag != "console":
            continue
        for command, shown in _commands(block):
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            output = done.stdout + done.stderr
            failed = f"{block.where}: `{command}` exited {done.returncode}:\n{output}"
            assert done.returncode == 0, failed
            lines = [line.strip() for line in output.splitlines()]
            at = 0
            for want in shown:
                while at < len(lines) and lines[at] != want:
                    at += 1
                missing = f"{block.where}: `{command}` did not print {want!r}:\n{output}"
                assert at < len(lines), missing
                at += 1


def _blocks(tag: str) -> list[Block]:
    return [b for page in PAGES for b in blocks_of(page) if b.tag == tag]


@pytest.mark.parametrize("block", _blocks("yaml"), ids=lambda b: b.where)
def test_scenario_examples_decide(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(block.text, encoding="utf-8")
    scenario = load_scenario(path)
    results = decide_scenario(scenario)
    assert results, f"{block.where}: the scenario decides nothing"
    unknown = [req.id for req, decision in results if decision is None]
    assert not unknown, f"{block.where}: requests name an unknown person or object: {unknown}"
    broken = [
        req.id
        for req, decision in results
        if decision is not None and "UNKNOWN_ATTRIBUTE" in decision.codes
    ]
    assert not broken, f"{block.where}: objects the engine cannot read: {broken}"


@pytest.mark.parametrize("block", _blocks("json"), ids=lambda b: b.where)
def test_json_examples_parse(block: Block) -> None:
    json.loads(block.text)


@pytest.mark.parametrize("block", _blocks("env"), ids=lambda b: b.where)
def test_env_examples_are_accepted(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("RELTO_")]:
        monkeypatch.delenv(key)
    for name, value in _assignments(block):
        monkeypatch.setenv(name, value)
    Settings()


def _assignments(block: Block) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for word in shlex.split(block.text, comments=True):
        name, sep, value = word.partition("=")
        assert sep and re.fullmatch(r"RELTO_[A-Z0-9_]+", name), f"{block.where}: {word!r}"
        pairs.append((name, value))
    assert pairs, f"{block.where}: no settings"
    return pairs
