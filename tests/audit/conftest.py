"""Fixtures for the transparency log tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from relto.audit import NoteSigner, TransparencyLog
from relto.store import Database

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def log(database: Database) -> Iterator[TransparencyLog]:
    yield TransparencyLog(database, clock=Clock())


@pytest.fixture(scope="session")
def log_signer() -> NoteSigner:
    return NoteSigner.generate("relto.example/gbr/audit")


@pytest.fixture(scope="session")
def witness_signer() -> NoteSigner:
    return NoteSigner.generate("witness.example/aus")


def fill(log: TransparencyLog, n: int, start: int = 0) -> None:
    log.append_many(
        [
            ("decision", {"person": f"p{i}", "object": f"o{i}", "allowed": i % 2 == 0}, T0)
            for i in range(start, start + n)
        ]
    )
