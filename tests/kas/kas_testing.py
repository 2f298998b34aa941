"""Constants and helpers shared by the KAS tests (imported by name: tests/kas is on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime

PASSPHRASE = "correct horse battery staple kas"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
