"""Child processes in their own process groups, stopped in escalating steps.

Each child leads its own process group, so a terminal's Ctrl-C reaches only the
launcher, which then stops every group it started: SIGINT, then SIGTERM after
``grace`` seconds, then SIGKILL -- nothing is left behind, whatever a child does
with the first signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Child", "start", "stop_all"]


@dataclass
class Child:
    """A started process (the leader of its own group) and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log (for an error message)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start(name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path) -> Child:
    """Start ``argv`` as the leader of a new process group, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv built by the launcher, no shell
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stop_all(children: Sequence[Child], *, grace: float = 8.0, term: float = 3.0) -> None:
    """Stop every child's whole process group: SIGINT, then SIGTERM after ``grace``
    seconds, then SIGKILL after ``term`` more; returns when every group is gone."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, term), (signal.SIGKILL, 5.0)):
        pending = [c for c in children if not _group_gone(c.pid)]
        if not pending:
            break
        for child in pending:
            _signal_group(child, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for child in pending:
                child.process.poll()  # reap the leader, so its group can empty
            if all(_group_gone(c.pid) for c in pending):
                break
            time.sleep(0.05)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=1)
