"""How long a quorum-signed partnership change takes to be in force on every node.

Three member nodes (AUS, GBR, USA) run under uvicorn on 127.0.0.1 in this process,
each with its own data folder and keys, pinned to each other, each offering its
changes to the others every ``--interval`` seconds (the server's own replication
task, ``RELTO_FEDERATION_CHANGES_PUSH_SECONDS``). For each of ``--changes``
changes: GBR proposes (a new project), AUS and USA approve as soon as it reaches
them; the clock runs from the last approval to the change being applied on all
three. The baseline, measured in the same run, is the push interval itself: the
ratio says how many intervals a change takes to be everywhere.

Run: ``.venv/bin/python bench/partnership_changes.py [--changes 50] [--interval 1]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.federation.ledger import ChangeLedger
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.server import create_app
from relto.server.routes.changes import node_ledger

OFFICERS = {"AUS": "aus-so-campbell", "GBR": "gbr-so-whitfield", "USA": "usa-so-bennett"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Live:
    def __init__(self, nation: str, root: Path) -> None:
        port = _port()
        settings = Settings(
            nation=nation, data_dir=root / nation.lower(), bind="127.0.0.1", port=port,
            public_url=f"http://127.0.0.1:{port}", secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)), log_level="WARNING",
        )  # type: ignore[call-arg]  # fmt: skip
        self.nation = nation
        self.app: Any = create_app(settings)
        self.node: Node = self.app.state.node
        load_demo(self.node.db, self.node.sink, nation_share(read_demo(), nation),
                  at=datetime.now(UTC))  # fmt: skip
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.officer = self.node.directory.principal(OFFICERS[nation], via="node")

    @property
    def ledger(self) -> ChangeLedger:
        found = node_ledger(self.node, self.app.state.changes)
        assert found is not None
        return found

    def status(self, change_id: str) -> str | None:
        try:
            return self.ledger.standing(change_id).status
        except Exception:
            return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="push interval, seconds")
    args = parser.parse_args()
    os.environ["RELTO_FEDERATION_CHANGES_PUSH_SECONDS"] = str(max(1, int(args.interval)))
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        nodes = {n: Live(n, Path(tmp)) for n in ("AUS", "GBR", "USA")}
        now = datetime.now(UTC)
        for a in nodes.values():
            for b in nodes.values():
                if a is not b:
                    assert b.node.federation is not None
                    a.node.trust.pin(b.node.federation.descriptor(now),
                                     fingerprint=b.node.federation.descriptors.fingerprint,
                                     actor=a.officer, now=now)  # fmt: skip
        gbr, others = nodes["GBR"], [nodes["AUS"], nodes["USA"]]
        took: list[float] = []
        for i in range(args.changes):
            change = gbr.ledger.propose(
                gbr.officer, "project.create",
                {"id": f"bench-{i}-{secrets.token_hex(3)}", "name": f"Bench project {i}"},
                "a project for the change benchmark",
            ).change.id  # fmt: skip
            last_signed = 0.0
            for m in others:  # each approves as soon as the change reaches it
                while m.status(change) is None:
                    time.sleep(0.01)
                m.ledger.decide(m.officer, change, "approve", "benchmark approval")
                last_signed = time.monotonic()
            while any(m.status(change) != "applied" for m in nodes.values()):
                time.sleep(0.01)
                if time.monotonic() - last_signed > 120:
                    sys.exit(f"change {i} not applied everywhere within 120 s")
            took.append(time.monotonic() - last_signed)
        for m in nodes.values():
            m.server.should_exit = True
    median, worst = statistics.median(took), max(took)
    interval = max(1, int(args.interval))
    print(f"\n{args.changes} changes, 3 member nodes, push interval {interval} s")
    print("| from the last approval to applied on all nodes | seconds | × interval |")
    print("| --- | ---: | ---: |")
    print(f"| push interval [baseline] | {interval:.2f} | 1.00 |")
    print(f"| median | {median:.2f} | {median / interval:.2f} |")
    print(f"| max | {worst:.2f} | {worst / interval:.2f} |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
