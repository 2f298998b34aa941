"""The demo OpenID provider of one nation: ``oidc-provider`` from npm, pinned in
``tools/federation-idp/package-lock.json`` and installed with ``npm ci`` (never
by hand) into that folder's ``node_modules``.

:func:`ensure_installed` checks Node.js and npm (failing loudly without them) and
runs ``npm ci`` when the lock file changed since the last install or the
installed provider does not load (one process at a time: a file lock).
:func:`start_provider` writes the provider's configuration (people, clients,
audience; mode 0600, it holds the client secret) and starts ``node idp.mjs`` in
its own process group; :func:`wait_ready` polls its discovery document.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from relto.errors import ConfigError
from relto.launcher.processes import Child, start

__all__ = [
    "IDP_DIR",
    "IdpPerson",
    "ProviderSpec",
    "demo_sign_in",
    "ensure_installed",
    "start_provider",
    "wait_ready",
]

#: ``tools/federation-idp`` of this checkout.
IDP_DIR = Path(__file__).resolve().parents[3] / "tools" / "federation-idp"
#: Oldest Node.js major version the pinned provider was tested on (warns, works).
MIN_NODE_MAJOR = 20
_MARKER = ".relto-installed-lock"


@dataclass(frozen=True)
class IdpPerson:
    """An account of the provider: a person id (``sub``) of the node's directory."""

    sub: str
    name: str
    nationality: str


@dataclass(frozen=True)
class ProviderSpec:
    """One nation's provider: its issuer URL (loopback), the audience of its access
    tokens (the node), its people and the console's client registration."""

    issuer: str
    audience: str
    people: Sequence[IdpPerson]
    client_id: str
    client_secret: str
    redirect_uris: Sequence[str]
    extra_clients: Sequence[dict[str, object]] = field(default_factory=tuple)

    @property
    def port(self) -> int:
        return int(self.issuer.rsplit(":", 1)[1].split("/")[0])

    @property
    def jwks_url(self) -> str:
        return self.issuer.rstrip("/") + "/jwks"


def _node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise ConfigError(
            "Node.js and npm are needed for the demo OpenID providers (oidc-provider): "
            "install them (e.g. apt-get install nodejs npm) and try again"
        )
    out = subprocess.run(  # noqa: S603
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    try:
        major = int(out.lstrip("v").split(".")[0])
    except ValueError:
        raise ConfigError(f"cannot read the Node.js version ({out[:40]!r})") from None
    if major < MIN_NODE_MAJOR:
        raise ConfigError(f"Node.js {out} is too old: oidc-provider 9 needs {MIN_NODE_MAJOR}+")
    return node


def ensure_installed(idp_dir: Path = IDP_DIR, *, echo: Callable[[str], None] = print) -> str:
    """Install the pinned provider with ``npm ci`` unless this lock file is installed
    already; the path of ``node``. Raises ``ConfigError`` without Node.js or npm, or
    when the install fails."""
    node = _node()
    lock = idp_dir / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    marker = idp_dir / "node_modules" / _MARKER
    with open(idp_dir / ".install.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == digest and _loads(node, idp_dir):
            return node
        echo("installing the pinned oidc-provider (npm ci in tools/federation-idp) ...")
        npm = shutil.which("npm")
        assert npm is not None
        done = subprocess.run(  # noqa: S603
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=idp_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if done.returncode != 0:
            raise ConfigError(f"npm ci failed in {idp_dir}: {done.stderr.strip()[-500:]}")
        marker.write_text(digest + "\n")
    return node


def _loads(node: str, idp_dir: Path) -> bool:
    """Whether the installed provider actually loads (a copied or half-deleted
    ``node_modules`` can carry the marker of a complete install)."""
    done = subprocess.run(  # noqa: S603
        [node, "--input-type=module", "-e", "await import('oidc-provider')"],
        cwd=idp_dir,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return done.returncode == 0


def _private_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    tmp.replace(path)


def start_provider(
    spec: ProviderSpec, folder: Path, *, node: str, idp_dir: Path = IDP_DIR
) -> Child:
    """Write ``folder/people.json`` and ``folder/config.json`` and start the provider."""
    people = [{"sub": p.sub, "name": p.name, "nationality": p.nationality} for p in spec.people]
    _private_json(folder / "people.json", people)
    clients = [
        {
            "client_id": spec.client_id,
            "client_secret": spec.client_secret,
            "redirect_uris": list(spec.redirect_uris),
        },
        *spec.extra_clients,
    ]
    config = {
        "issuer": spec.issuer,
        "audience": spec.audience,
        "people": people,
        "clients": clients,
    }
    _private_json(folder / "config.json", config)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "development"}
    return start(
        f"idp:{spec.issuer}",
        [node, str(idp_dir / "idp.mjs"), str(folder / "config.json")],
        env=env,
        log=folder / "idp.log",
    )


def wait_ready(url: str, child: Child, *, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; ``ConfigError`` if ``child`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise ConfigError(f"{child.name} stopped while starting:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ConfigError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{child.tail()}")


_PROMPT = re.compile(r'name="prompt" value="(\w+)"')
_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def demo_sign_in(
    browser: httpx.Client,
    authorize_url: str,
    login: str,
    password: str = "any password",  # noqa: S107 - the demo form takes any
) -> str:
    """Play a browser at a demo provider: from the authorization URL through its
    sign-in and consent forms (devInteractions) to the redirect back to the
    client; that redirect's URL (``...callback?code=...&state=...``).

    ``browser`` keeps the provider's cookies (no redirects followed by itself).
    Raises ``ConfigError`` when the provider refuses (an unknown person).
    """
    issuer = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    url = authorize_url
    for _ in range(12):
        response = browser.get(url)
        if response.status_code == 200:
            prompt = _PROMPT.search(response.text)
            action = _ACTION.search(response.text)
            if prompt is None or action is None:
                raise ConfigError(f"the provider showed no sign-in form: {response.text[:200]}")
            form = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                form.update(login=login, password=password)
            response = browser.post(urljoin(issuer, action.group(1)), data=form)
        if response.status_code not in (302, 303):
            raise ConfigError(
                f"the provider answered {response.status_code}: {response.text[:200]}"
            )
        url = urljoin(issuer, response.headers["location"])
        if not url.startswith(issuer):
            return url
    raise ConfigError("the provider's sign-in did not finish")
