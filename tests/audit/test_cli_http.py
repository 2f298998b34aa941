"""`relto audit` commands and the /api/v1/audit routes."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import text

from relto.audit import TransparencyLog, merkle, parse_verifier, verify_inclusion
from relto.audit.note import NoteSigner
from relto.audit.tiles import TilePath, format_tile_path
from relto.cli.main import main
from relto.config import Settings
from relto.kas.auth import AuthConfig, Authenticator, StaticJwks
from relto.server import create_app
from relto.store import create_database

from .conftest import T0, fill


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RELTO_DATABASE_URL", raising=False)
    monkeypatch.delenv("RELTO_AUDIT_KEY_FILE", raising=False)
    return tmp_path


ISSUER = "https://idp.gbr.example"
IDP_KEY = RSAKey.generate_key(2048, parameters={"kid": "audit-test", "alg": "RS256"})


#: Demo people (the directory says who holds which role; tokens only say who).
GBR_AUDITOR, GBR_OFFICER, GBR_ENGINEER = "gbr-aud-patel", "gbr-so-whitfield", "gbr-eng-harper"


def _token(sub: str = GBR_AUDITOR) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "relto", "sub": sub, "iat": now, "exp": now + 600}
    return jwt.encode({"alg": "RS256", "kid": "audit-test"}, claims, IDP_KEY)


def _trust_test_idp(app: object) -> None:
    app.state.edge.auth.authenticator = Authenticator(  # type: ignore[attr-defined]
        AuthConfig(issuer=ISSUER, audience="relto", nation="GBR"),
        StaticJwks({"keys": [IDP_KEY.as_dict(private=False)]}),
    )


AUDITOR = {"Authorization": f"Bearer {_token()}"}


def _db_url(tmp: Path) -> str:
    """The embedded default keeps the log in a SQLite file of its own."""
    return f"sqlite:///{(tmp / 'data' / 'audit.db').resolve()}"


def test_checkpoint_prove_verify_via_cli(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = TransparencyLog(create_database(_db_url(env)))
    fill(log, 25)
    assert main(["audit", "checkpoint"]) == 0
    note = capsys.readouterr().out
    assert note.startswith("relto/gbr/audit\n25\n")
    key = env / "data" / "audit" / "log.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cp_file = env / "cp.txt"
    cp_file.write_text(note)

    assert main(["audit", "prove", "--index", "7"]) == 0
    proof = json.loads(capsys.readouterr().out)
    verify_inclusion(
        7,
        25,
        base64.b64decode(proof["leaf_hash"]),
        [base64.b64decode(p) for p in proof["proof"]],
        base64.b64decode(proof["root"]),
    )
    assert main(["audit", "prove", "--consistency-from", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["second"] == 25

    assert main(["audit", "verify", "--checkpoint", str(cp_file), "--log", _db_url(env)]) == 0
    assert "ok" in capsys.readouterr().out

    with log.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE idx = 11"))
    db_file = str(env / "data" / "audit.db")
    assert main(["audit", "verify", "--checkpoint", str(cp_file), "--log", db_file]) == 1
    assert "first mismatch at index 11 (deleted)" in capsys.readouterr().out


def test_verify_refuses_checkpoint_signed_by_another_key(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = TransparencyLog(create_database(_db_url(env)))
    fill(log, 3)
    rogue = NoteSigner.generate("relto/gbr/audit")
    cp_file = env / "cp.txt"
    cp_file.write_text(log.sign_checkpoint(rogue, T0))
    assert main(["audit", "key"]) == 0
    real_key = capsys.readouterr().out.strip()
    code = main(
        ["audit", "verify", "--checkpoint", str(cp_file), "--log", _db_url(env),
         "--log-key", real_key]
    )  # fmt: skip
    assert code == 1
    assert "not trusted" in capsys.readouterr().err


def test_key_file_readable_by_others_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "key"]) == 0
    key = env / "data" / "audit" / "log.key"
    os.chmod(key, 0o644)
    assert main(["audit", "key"]) == 1
    err = capsys.readouterr().err
    assert "readable by others" in err and "PRIVATE" not in err


def test_witness_cli_cosigns_then_refuses_rollback(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = TransparencyLog(create_database(_db_url(env)))
    fill(log, 4)
    assert main(["audit", "checkpoint"]) == 0
    old = env / "old.txt"
    old.write_text(capsys.readouterr().out)
    fill(log, 4, 4)
    assert main(["audit", "checkpoint"]) == 0
    new = env / "new.txt"
    new.write_text(capsys.readouterr().out)
    assert (
        main(["audit", "keygen", "--name", "witness.example/aus", "--out", str(env / "w.key")]) == 0
    )
    cosigner_key = capsys.readouterr().out.splitlines()[1].split()[-1]
    log_key = str(env / "data" / "audit" / "log.key.pub")
    args = ["audit", "witness", "--log", _db_url(env), "--log-key", log_key,
            "--key", str(env / "w.key"), "--state", str(env / "w.json")]  # fmt: skip
    assert main([*args, "--checkpoint", str(old)]) == 0
    capsys.readouterr()
    assert main([*args, "--checkpoint", str(new)]) == 0
    cosigned = env / "cosigned.txt"
    cosigned.write_text(capsys.readouterr().out)
    assert main([*args, "--checkpoint", str(old)]) == 1
    assert "refused" in capsys.readouterr().err
    code = main(
        ["audit", "verify", "--checkpoint", str(cosigned), "--log", _db_url(env),
         "--log-key", log_key, "--witness-key", cosigner_key, "--min-cosignatures", "1"]
    )  # fmt: skip
    assert code == 0
    code = main(
        ["audit", "verify", "--checkpoint", str(new), "--log", _db_url(env),
         "--log-key", log_key, "--witness-key", cosigner_key, "--min-cosignatures", "1"]
    )  # fmt: skip
    assert code == 1


@pytest.fixture
def client(env: Path) -> Iterator[tuple[TestClient, TransparencyLog]]:
    log = TransparencyLog(create_database(_db_url(env)))
    main_db = create_database(f"sqlite:///{env / 'data' / 'relto.db'}")
    app = create_app(Settings(demo=True, data_dir=env / "data"), db=main_db, sink=log)
    _trust_test_idp(app)
    with TestClient(app) as c:
        yield c, log


def test_http_checkpoint_entries_and_proofs(client: tuple[TestClient, TransparencyLog]) -> None:
    c, log = client
    base = log.size()  # whatever the demo loader recorded through the sink
    fill(log, 300, base)
    total, k = base + 300, base + 105
    r = c.get("/api/v1/audit/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    size, root = log.head()
    assert r.text.split("\n")[1] == str(size) == str(total)
    entries = c.get(
        "/api/v1/audit/entries", params={"start": k, "end": k + 3}, headers=AUDITOR
    ).json()["entries"]
    assert [e["index"] for e in entries] == [k, k + 1, k + 2]
    assert entries[0]["entry"]["payload"]["person"] == f"p{k}"
    body = base64.b64decode(entries[0]["body"])
    assert merkle.leaf_hash(body) == base64.b64decode(entries[0]["leaf_hash"])
    # reading entries is itself recorded (an audit read), so the log has grown: ask
    # for the proof at the size the root above was taken at
    p = c.get(
        "/api/v1/audit/proof/inclusion",
        params={"leaf_hash": entries[0]["leaf_hash"], "size": total},
    )
    proof = p.json()
    verify_inclusion(
        k, total, merkle.leaf_hash(body), [base64.b64decode(x) for x in proof["proof"]], root
    )
    cons = c.get("/api/v1/audit/proof/consistency", params={"first": 100, "second": total}).json()
    merkle.verify_consistency(
        100, total, [base64.b64decode(x) for x in cons["proof"]], log.root_at(100), root
    )
    beyond = log.size()
    assert c.get("/api/v1/audit/proof/inclusion", params={"index": beyond}).status_code == 404
    assert c.get("/api/v1/audit/proof/inclusion").status_code == 422
    bad = c.get("/api/v1/audit/entries", params={"start": 9, "end": 2}, headers=AUDITOR)
    assert bad.status_code == 422


def test_http_tiles_follow_tlog_tiles(client: tuple[TestClient, TransparencyLog]) -> None:
    c, log = client
    base = log.size()
    n = base // 256 + 2  # index of the partial level-0 tile, after n full ones
    fill(log, n * 256 + 44 - base, base)
    full = c.get("/api/v1/audit/" + format_tile_path(TilePath(0, 0, 256)))
    assert full.status_code == 200 and len(full.content) == 256 * 32
    hashes = [full.content[i : i + 32] for i in range(0, len(full.content), 32)]
    assert merkle.root_from_leaves(hashes) == log.root_at(256)
    partial = c.get("/api/v1/audit/" + format_tile_path(TilePath(0, n, 44)))
    assert partial.status_code == 200 and len(partial.content) == 44 * 32
    level1 = c.get("/api/v1/audit/" + format_tile_path(TilePath(1, 0, n)))
    assert level1.content[:32] == log.root_at(256)
    not_full = format_tile_path(TilePath(0, n, 256))
    assert c.get("/api/v1/audit/" + not_full).status_code == 404
    too_wide = format_tile_path(TilePath(0, n, 45))
    assert c.get("/api/v1/audit/" + too_wide).status_code == 404
    bundle = c.get(
        "/api/v1/audit/" + format_tile_path(TilePath(None, n, 44)), headers=AUDITOR
    ).content
    first_len = int.from_bytes(bundle[:2], "big")
    assert merkle.leaf_hash(bundle[2 : 2 + first_len]) == partial.content[:32]
    assert c.get("/api/v1/audit/tile/0/1").status_code == 422


def test_entry_bodies_are_not_readable_by_anyone_who_asks(
    client: tuple[TestClient, TransparencyLog],
) -> None:
    """Who saw what is for auditors and security officers; what a partner needs to
    check the log (checkpoints, proofs, hash tiles) stays public."""
    c, log = client
    base = log.size()
    fill(log, 600, base)  # entries about nobody the node knows: GBR's (the node's)
    first = base // 256 + 1  # a bundle of filled entries only
    bundle = "/api/v1/audit/" + format_tile_path(TilePath(None, first, 256))
    entries = f"/api/v1/audit/entries?start={first * 256}&end={first * 256 + 10}"
    for path in (entries, bundle):
        anonymous = c.get(path)
        assert anonymous.status_code == 401 and f"p{first * 256}" not in anonymous.text
        engineer = c.get(path, headers={"Authorization": f"Bearer {_token(GBR_ENGINEER)}"})
        assert engineer.status_code == 404 and f"p{first * 256}" not in engineer.text
        forged = c.get(path, headers={"Authorization": f"Bearer {_token()}x"})
        assert forged.status_code == 401
        for person in (GBR_AUDITOR, GBR_OFFICER):
            ok = c.get(path, headers={"Authorization": f"Bearer {_token(person)}"})
            assert ok.status_code == 200
    assert c.get(bundle, headers=AUDITOR).headers["cache-control"].startswith("private")
    public = [
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/proof/inclusion?index=3",
        "/api/v1/audit/proof/consistency?first=100",
        "/api/v1/audit/" + format_tile_path(TilePath(0, 0, 256)),
    ]
    for path in public:
        assert c.get(path).status_code == 200, path


def test_auditor_reads_only_entries_about_their_own_nation(
    client: tuple[TestClient, TransparencyLog],
) -> None:
    """The demo load registered people of every nation: a GBR auditor sees the bodies
    of the GBR ones, and the others only as index and leaf hash; an entry bundle
    mixing nations is not served to them at all."""
    c, log = client
    got = c.get("/api/v1/audit/entries", params={"start": 0, "end": 200}, headers=AUDITOR)
    items = got.json()["entries"]
    shown = [e["entry"]["payload"] for e in items if e["entry"] is not None]
    hidden = [e for e in items if e["entry"] is None]
    assert hidden and all(e["body"] is None and e["leaf_hash"] for e in hidden)
    people = {p.get("person_id") for p in shown if "person_id" in p}
    assert "gbr-eng-harper" in people
    assert not any(str(p).startswith(("jpn-", "usa-", "kor-")) for p in people)
    bundle = "/api/v1/audit/" + format_tile_path(TilePath(None, 0, 256))
    if log.size() >= 256:
        assert c.get(bundle, headers=AUDITOR).status_code == 404


def test_verify_over_http(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = create_database(_db_url(env))
    log = TransparencyLog(db)
    fill(log, 1200)
    main_db = create_database(f"sqlite:///{env / 'data' / 'relto.db'}")
    app = create_app(Settings(demo=True, data_dir=env / "data"), db=main_db, sink=log)
    _trust_test_idp(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        import httpx

        cp = env / "cp.txt"
        cp.write_text(httpx.get(url + "/api/v1/audit/checkpoint").text)
        vkey = parse_verifier((env / "data" / "audit" / "log.key.pub").read_text().strip())
        args = ["audit", "verify", "--checkpoint", str(cp), "--log", url, "--log-key", vkey.vkey]
        monkeypatch.delenv("RELTO_AUDIT_TOKEN", raising=False)
        assert main(args) != 0  # entry bodies need an auditor's token
        assert "RELTO_AUDIT_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("RELTO_AUDIT_TOKEN", _token())
        assert main(args) == 0
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_entry SET body = :b WHERE idx = 1100"), {"b": b"{}"})
        assert main(args) == 1
        assert "index 1100 (edited)" in capsys.readouterr().out
    finally:
        server.should_exit = True
        thread.join(5)
