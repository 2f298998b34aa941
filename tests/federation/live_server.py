"""A relto app under uvicorn on 127.0.0.1, in a thread, for tests that need nodes
to reach each other over real HTTP: one helper for the federation, client and
audit tests (stoppable and restartable, to play a node that is down a while).

Imported as ``from federation.live_server import ...`` outside this package
(pytest puts ``tests/`` on the path for its test packages).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["Server", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``app`` served on ``port`` (``lifespan``: run the app's start-up and its
    background tasks, off by default). :meth:`start` / :meth:`stop`, or a ``with``."""

    def __init__(self, app: Any, port: int, *, lifespan: str = "off") -> None:
        self.app, self.port, self.lifespan = app, port, lifespan
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning",
            lifespan=self.lifespan,  # type: ignore[arg-type]
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
            self.server = self.thread = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
