"""``relto trace``: a leaked file traced on the node's own data folder, on the
authority of a person the directory records as a security officer or auditor."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from relto.cli.main import main
from relto.cli.trace import EXIT_NOBODY
from relto.config import Settings, load_settings
from relto.node import build_node
from relto.server import create_app


def chart() -> bytes:
    """A figure: a smooth random texture with a caption, as PNG."""
    rng = np.random.default_rng(3)
    base = rng.random((96, 96)) * 255
    img = cv2.resize(base, (768, 768), interpolation=cv2.INTER_CUBIC).clip(0, 255)
    img = img.astype(np.uint8)
    cv2.putText(img, "RANGE 41 KM", (60, 300), cv2.FONT_HERSHEY_SIMPLEX, 3, 0, 6)
    out = io.BytesIO()
    Image.fromarray(img).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trace-cli-template")
    app = create_app(Settings(demo=True, data_dir=folder))
    app.state.node.db.dispose()
    return folder


@pytest.fixture
def leaked(tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The demo node's data folder with a figure Ramirez downloaded; his copy, leaked."""
    folder = tmp_path / "data"
    shutil.copytree(template, folder)
    monkeypatch.setenv("RELTO_DATA_DIR", str(folder))
    monkeypatch.setenv("RELTO_DEMO", "true")
    monkeypatch.delenv("RELTO_DATABASE_URL", raising=False)
    node = build_node(load_settings())
    try:
        at = datetime.now(UTC)
        harper = node.directory.principal("gbr-eng-harper", via="node")
        ramirez = node.directory.principal("usa-eng-ramirez", via="node")
        assert harper is not None and ramirez is not None
        doc = node.documents.upload(
            harper, title="Range chart", project_id="hypersonic", classification="SECRET",
            rel_to=["USA"], filename="chart.png", media_type="image/png", data=chart(), at=at,
        )  # fmt: skip
        _, _, copy = node.documents.download(ramirez, doc.id, at)
        assert copy is not None and copy.media_type == "image/png"
    finally:
        node.db.dispose()
    path = tmp_path / "found-on-a-forum.png"
    path.write_bytes(copy.data)
    yield path


def relto(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_relto_trace_names_the_recipient_and_the_log_entry(
    leaked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = relto(capsys, "trace", str(leaked), "--actor", "gbr-aud-patel")
    assert code == 0, out
    assert out.startswith("Accused: usa-eng-ramirez.")
    assert "usa-eng-ramirez (USA) index 0" in out and "copy 1 at" in out
    assert "proven in checkpoint of size" in out and "false-accusation bound 0.001" in out
    code, out, _ = relto(capsys, "trace", str(leaked), "--actor", "gbr-so-whitfield", "--json")
    answer = json.loads(out)
    assert [a["person_id"] for a in answer["accused"]] == ["usa-eng-ramirez"]
    assert answer["accused"][0]["copies"][0]["inclusion_proof"]


def test_relto_trace_of_unrelated_file_accuses_nobody(
    leaked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "holiday.png"
    img = np.full((400, 600), 200, np.uint8)
    cv2.circle(img, (300, 200), 120, 30, -1)
    Image.fromarray(img).save(other, "PNG")
    code, out, _ = relto(capsys, "trace", str(other), "--actor", "gbr-so-whitfield")
    assert code == EXIT_NOBODY and "nobody is accused" in out


@pytest.mark.parametrize("actor", ["gbr-eng-harper", "usa-so-bennett"])
def test_relto_trace_by_unauthorised_person_refused(
    leaked: Path, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    code, out, err = relto(capsys, "trace", str(leaked), "--actor", actor)
    assert code == 1 and out == "" and "ramirez" not in (out + err).lower()
