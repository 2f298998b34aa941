"""Shared fixtures: a real throwaway PostgreSQL server, databases on SQLite and
PostgreSQL, and paths to the public conformance data.

The PostgreSQL server is started by the fixture from Debian's binaries
(``scripts/system-deps.sh`` installs them when missing; ``make test`` runs it).
A missing binary fails the run loudly: tests that need it are never skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from relto.store import Database, create_database
from s3_testing import SeaweedS3, free_port

ROOT = Path(__file__).resolve().parent.parent

# The suite drives each app from one address, far faster than any person would:
# rate limits are off unless a test sets its own (tests/server/test_limits.py).
for _limit in ("RELTO_RATE_LIMIT_LOGIN", "RELTO_RATE_LIMIT_API", "RELTO_RATE_LIMIT_KAS"):
    os.environ.setdefault(_limit, "off")
#: Public conformance data, carried by the repository with its licences.
CONFORMANCE = ROOT / "tests" / "data" / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}")
    return CONFORMANCE


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL binaries are missing and could not be installed")
    return Path(found[-1]).parent


class PostgresServer:
    """A throwaway PostgreSQL cluster on loopback, deleted afterwards."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="relto-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the postgres user.
            user = "postgres"
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                pytest.fail("running as root and there is no 'postgres' user")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.dir.chmod(0o755)
            self._as = ["runuser", "-u", user, "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "relto",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://relto@127.0.0.1:{self.port}/{dbname}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


_db_counter = 0


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    global _db_counter
    _db_counter += 1
    return postgres_server.create_db(f"t{os.getpid()}_{_db_counter}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database, once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relto.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = create_database(url)
    try:
        yield db
    finally:
        db.dispose()


def _skipped(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failed run: every test here can run on a fresh machine
    (what it needs is installed or started by the suite), so a skip means
    something went missing."""
    if _skipped(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = _skipped(terminalreporter.config)
    if skipped:
        terminalreporter.section("skipped tests fail the run", sep="=", red=True)
        for report in skipped:
            terminalreporter.write_line(f"SKIPPED {report.nodeid}")


# -- a real S3 server: SeaweedFS (issue 18) -----------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """A real S3 server for the session (one per xdist worker), removed afterwards."""
    server = SeaweedS3()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_s3_server() -> Iterator[SeaweedS3]:
    """A real S3 server of one test's own, which the test may stop."""
    server = SeaweedS3()
    server.start()
    try:
        yield server
    finally:
        server.remove()
