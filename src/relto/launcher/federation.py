"""Four federated demo nodes -- AUS, GBR, USA, JPN -- on loopback.

``relto federation demo`` (``make federation``) runs :func:`run`:

1. installs the pinned ``oidc-provider`` (:mod:`.idp`) and starts one provider per
   nation (ports 8201..8204), whose accounts are that nation's demo people;
2. prepares each node in ``<root>/<nation>/`` (default root ``./.relto-federation``):
   strong secrets generated once into ``secrets.env`` (mode 0600), the node's
   settings in ``node.env``, the nation's share of the demo partnership loaded
   (the partnership, its projects and admissions; that nation's people only, with a
   security and a vetting officer added where the demo names none; the sample
   documents its people own) by ``relto federation demo-load``, and its
   descriptor made by ``relto federation descriptor``;
3. has each nation's security officer pin the three other descriptors with
   ``relto federation trust FILE --fingerprint FP --actor <officer>`` (the launcher
   plays every nation's officer; the fingerprints are printed);
4. starts ``relto serve`` per nation -- never in demo mode: each node signs its
   people in at its own provider (``RELTO_OIDC_CLIENT_ID``) and accepts its access
   tokens (``RELTO_OIDC_ISSUERS``, audience = the node's URL) -- on ports 8101..8104;
5. prints the consoles and the sign-ins, and on Ctrl-C (SIGINT or SIGTERM) stops
   every process group it started (:func:`relto.launcher.processes.stop_all`).

**The launcher-only loading rule.** ``relto partnership load-demo`` refuses outside
demo mode, and still does. ``relto federation demo-load --root ROOT`` loads demo
people into a node that is *not* in demo mode, so it is refused unless all of:
``ROOT`` holds the launcher's marker file (:data:`MARKER`), the node's data folder
is exactly ``ROOT/<nation in lower case>``, and both ``RELTO_BIND`` and
``RELTO_PUBLIC_URL`` are loopback (:func:`check_launcher_node`).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from relto.config import Settings, is_loopback
from relto.demo import DemoData, DemoPerson, LoadReport, load_demo, load_demo_documents, read_demo
from relto.errors import ConfigError
from relto.launcher.idp import IdpPerson, ProviderSpec, ensure_installed, start_provider, wait_ready
from relto.launcher.processes import Child, start, stop_all

__all__ = [
    "DEFAULT_ROOT",
    "MARKER",
    "NATIONS",
    "NodePlan",
    "check_launcher_node",
    "load_share",
    "nation_share",
    "plan",
    "run",
]

#: The nations the launcher runs, in port order.
NATIONS = ("AUS", "GBR", "USA", "JPN")
DEFAULT_ROOT = Path(".relto-federation")
#: The file that marks a folder as the launcher's (the loading rule needs it).
MARKER = ".relto-federation-demo"
_SECRET_NAMES = ("RELTO_SECRET_KEY", "RELTO_KEYSTORE_PASSPHRASE", "RELTO_OIDC_CLIENT_SECRET")


@dataclass(frozen=True)
class NodePlan:
    """Where one nation's node and provider live."""

    nation: str
    folder: Path
    node_port: int
    idp_port: int

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.idp_port}"

    @property
    def client_id(self) -> str:
        return f"relto-{self.nation.lower()}-console"

    @property
    def cli_client_id(self) -> str:
        """The command line's public client (``relto login``; loopback redirect)."""
        return f"relto-{self.nation.lower()}-cli"


def plan(root: Path, *, node_base: int = 8101, idp_base: int = 8201) -> list[NodePlan]:
    root = root.resolve()
    return [
        NodePlan(n, root / n.lower(), node_base + i, idp_base + i) for i, n in enumerate(NATIONS)
    ]


# -- each node's share of the demo partnership --------------------------------------


#: Officers every node needs, and the id prefix of one added where the demo file
#: names none: a security officer pins the partners' descriptors (JPN has none), a
#: vetting officer suspends and reinstates clearances (only GBR has one).
_OFFICERS = (("security_officer", "so"), ("vetting_officer", "vo"))


def _officer(nation: str, role: str = "security_officer", short: str = "so") -> DemoPerson:
    """An officer for a nation the demo file names none for."""
    return DemoPerson(
        id=f"{nation.lower()}-{short}-federation",
        name=f"{nation} {role.replace('_', ' ')} (federation demo)",
        nationality=nation,
        organisation="Federation demo",
        roles=(role,),
        projects=(),
        clearances=(),
    )


def nation_share(data: DemoData, nation: str) -> DemoData:
    """What ``nation``'s node holds of the demo: the partnership, its projects and
    admissions (shared by every member); ``nation``'s people only (personnel data
    stays at home), with a security and a vetting officer added where the file names
    none; the sample documents its own people own."""
    people = tuple(p for p in data.people if p.nationality == nation)
    for role, short in _OFFICERS:
        if not any(role in p.roles for p in people):
            people = (*people, _officer(nation, role, short))
    ids = {p.id for p in people}
    documents = tuple(d for d in data.documents if d.owner in ids)
    return replace(data, people=people, documents=documents)


def security_officer(share: DemoData) -> str:
    """The person id who pins partners on the node holding ``share``."""
    return next(p.id for p in share.people if "security_officer" in p.roles)


def check_launcher_node(settings: Settings, root: Path) -> None:
    """The launcher-only loading rule (module docstring); ``ConfigError`` otherwise."""
    root = root.resolve()
    if not (root / MARKER).is_file():
        raise ConfigError(
            f"{root} is not a folder made by `relto federation demo` (no {MARKER}): demo "
            "people are loaded outside demo mode only into the launcher's own nodes"
        )
    if settings.data_dir.resolve() != root / settings.nation.lower():
        raise ConfigError(
            f"RELTO_DATA_DIR must be {root / settings.nation.lower()} for the "
            f"{settings.nation} node of the federation demo"
        )
    host = urlsplit(settings.public_url or "").hostname or ""
    if not is_loopback(settings.bind) or not is_loopback(host):
        raise ConfigError(
            "the federation demo's nodes listen on loopback only (RELTO_BIND and "
            "RELTO_PUBLIC_URL): demo people must never reach a node others can use"
        )


def load_share(settings: Settings, root: Path) -> LoadReport:
    """Load the node's share of the demo (refused unless :func:`check_launcher_node`
    passes), through the services, into the node's own database and log."""
    from relto.node import build_node

    check_launcher_node(settings, root)
    share = nation_share(read_demo(), settings.nation)
    node = build_node(settings)
    at = datetime.now(UTC)
    try:
        with node.db.exclusive("demo-load"):
            report = load_demo(node.db, node.sink, share, at=at)
            load_demo_documents(node.documents, node.directory, share, report, at=at)
    finally:
        node.db.dispose()
    return report


# -- the node's settings and secrets ------------------------------------------------


def _private_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(path)


def _read_env(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and key and not key.startswith("#"):
                values[key] = value
    return values


def node_secrets(node: NodePlan) -> dict[str, str]:
    """The node's secrets, generated once into ``secrets.env`` (mode 0600) and kept
    across restarts (the key store is sealed with the passphrase)."""
    path = node.folder / "secrets.env"
    values = _read_env(path)
    missing = [n for n in _SECRET_NAMES if not values.get(n)]
    if missing:
        for name in missing:
            values[name] = secrets.token_urlsafe(32)
        _private_write(path, "".join(f"{k}={values[k]}\n" for k in _SECRET_NAMES))
    os.chmod(path, 0o600)
    return {k: values[k] for k in _SECRET_NAMES}


def node_settings(node: NodePlan, *, replicate_seconds: int = 30) -> dict[str, str]:
    """The node's non-secret settings (also written to ``node.env``);
    ``replicate_seconds``: how often it offers partnership changes to the others."""
    issuers = {
        node.issuer: {
            "nation": node.nation,
            "jwks_url": node.issuer + "/jwks",
            "audience": node.public_url,
        }
    }
    values = {
        "RELTO_NATION": node.nation,
        "RELTO_DATA_DIR": str(node.folder),
        "RELTO_BIND": "127.0.0.1",
        "RELTO_PORT": str(node.node_port),
        "RELTO_PUBLIC_URL": node.public_url,
        "RELTO_DEMO": "false",
        "RELTO_OIDC_ISSUERS": json.dumps(issuers, separators=(",", ":")),
        "RELTO_OIDC_CLIENT_ID": node.client_id,
        "RELTO_LOG_LEVEL": "INFO",
        "RELTO_FEDERATION_CHANGES_PUSH_SECONDS": str(replicate_seconds),
        # the demo's logs are small: a row edited by hand shows on the partners'
        # consoles within a minute (a production node keeps the default, 600)
        "RELTO_AUDIT_SELF_CHECK_SECONDS": "60",
    }
    text = "# settings of the federation demo's node (secrets: secrets.env)\n"
    (node.folder / "node.env").write_text(
        text + "".join(f"{k}='{v}'\n" for k, v in values.items()), encoding="utf-8"
    )
    return values


def _child_env(values: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``RELTO_*`` (a ``make`` exports
    ``RELTO_DATA_DIR``), plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env.update(values)
    return env


def _relto() -> list[str]:
    script = Path(sys.executable).with_name("relto")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from relto.cli.main import main; sys.exit(main())"]


# -- running ------------------------------------------------------------------------


@dataclass
class _Prepared:
    node: NodePlan
    env: dict[str, str]
    share: DemoData
    officer: str
    fingerprint: str = ""
    #: The node had data before this run (it may pin partners already).
    existed: bool = False


def _cli(env: Mapping[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI, no shell
        [*_relto(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(f"relto {' '.join(args[:3])} failed: {(detail or ['?'])[-1]}")
    return done.stdout


def _prepare(p: _Prepared, root: Path) -> None:
    _cli(p.env, "federation", "demo-load", "--root", str(root))
    out = _cli(p.env, "federation", "descriptor", "--out", str(p.node.folder / "descriptor.jwt"))
    p.fingerprint = next(
        line.split(None, 1)[1] for line in out.splitlines() if line.startswith("fingerprint ")
    )


def _pin_partners(p: _Prepared, everyone: list[_Prepared], echo: Callable[[str], None]) -> None:
    pinned: dict[str, str] = {}
    if p.existed:
        pinned = {
            row["nation"]: row["fingerprint"]
            for row in json.loads(_cli(p.env, "federation", "list"))
        }
    for other in everyone:
        if other is p:
            continue
        if pinned.get(other.node.nation) == other.fingerprint:
            echo(f"  {p.node.nation} already pins {other.node.nation}  {other.fingerprint}")
            continue
        if other.node.nation in pinned:
            _cli(p.env, "federation", "untrust", other.node.nation, "--actor", p.officer)
        _cli(
            p.env,
            "federation",
            "trust",
            str(other.node.folder / "descriptor.jwt"),
            "--fingerprint",
            other.fingerprint,
            "--actor",
            p.officer,
        )
        echo(f"  {p.node.nation} ({p.officer}) pinned {other.node.nation}  {other.fingerprint}")


class _Stop:
    """Set by SIGINT / SIGTERM; the launcher then stops everything."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def run(
    root: Path = DEFAULT_ROOT,
    *,
    node_base: int = 8101,
    idp_base: int = 8201,
    replicate_seconds: int = 30,
    echo: Callable[[str], None] = print,
) -> int:
    """Start the four nodes and their providers; block until Ctrl-C; stop them all.
    Returns the exit code (0 after Ctrl-C, 1 when something failed to start)."""
    stop = _Stop()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    started = time.monotonic()
    try:
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text("made by `relto federation demo`; delete the folder to reset\n")
        nodes = plan(root, node_base=node_base, idp_base=idp_base)
        node_binary = ensure_installed(echo=echo)
        data = read_demo()
        prepared = []
        for n in nodes:
            n.folder.mkdir(parents=True, exist_ok=True)
            share = nation_share(data, n.nation)
            settings = node_settings(n, replicate_seconds=replicate_seconds)
            env = _child_env({**settings, **node_secrets(n)})
            existed = (n.folder / "relto.db").exists()
            prepared.append(_Prepared(n, env, share, security_officer(share), existed=existed))
        # the providers need nothing from the nodes: start them first
        providers = {}
        for p in prepared:
            spec = ProviderSpec(
                issuer=p.node.issuer,
                audience=p.node.public_url,
                people=[IdpPerson(x.id, x.name, x.nationality) for x in p.share.people],
                client_id=p.node.client_id,
                client_secret=p.env["RELTO_OIDC_CLIENT_SECRET"],
                redirect_uris=[p.node.public_url + "/login/oidc/callback"],
                extra_clients=[
                    {
                        "client_id": p.node.cli_client_id,
                        "application_type": "native",  # loopback redirect, any port
                        "redirect_uris": ["http://127.0.0.1/callback"],
                        "token_endpoint_auth_method": "none",
                    }
                ],
            )
            child = start_provider(spec, p.node.folder / "idp", node=node_binary)
            children.append(child)
            providers[p.node.nation] = child
        phases = {"install": time.monotonic() - started}
        echo("preparing the nodes (data, keys, descriptors) ...")
        with ThreadPoolExecutor(len(prepared)) as pool:
            list(pool.map(lambda p: _prepare(p, root), prepared))
        phases["prepare"] = time.monotonic() - started - sum(phases.values())
        if stop.event.is_set():
            return 0
        # pins are read on every request: the nodes may start while officers pin
        servers = {}
        for p in prepared:
            child = start(
                f"relto {p.node.nation} node",
                [*_relto(), "serve"],
                env=p.env,
                log=p.node.folder / "node.log",
            )
            children.append(child)
            servers[p.node.nation] = child
        echo("each nation's security officer pins the other three (fingerprints):")
        with ThreadPoolExecutor(len(prepared)) as pool:
            list(pool.map(lambda p: _pin_partners(p, prepared, echo), prepared))
        phases["pin (nodes starting meanwhile)"] = time.monotonic() - started - sum(phases.values())
        if stop.event.is_set():
            return 0
        for p in prepared:
            wait_ready(
                p.node.issuer + "/.well-known/openid-configuration", providers[p.node.nation]
            )
            wait_ready(p.node.public_url + "/healthz", servers[p.node.nation], timeout=90)
        phases["nodes ready"] = time.monotonic() - started - sum(phases.values())
        _summary(prepared, root, phases, echo)
        for p in prepared:
            echo(f"{p.node.nation} node pid {servers[p.node.nation].pid}")
        echo(
            "Stop one node (kill its pid) to see the others carry on, call it silent and "
            "catch it up when it is back; the launcher says how to bring it back."
        )
        gone: set[str] = set()
        while not stop.event.wait(0.5):
            nodes_down = [n for n, c in servers.items() if not c.alive() and n not in gone]
            for nation in nodes_down:
                gone.add(nation)
                echo(_node_stopped(nation, root, servers[nation]))
            dead = [c for c in children if not c.alive() and c not in servers.values()]
            if dead or len(gone) == len(servers):
                down = dead[0] if dead else servers[sorted(gone)[0]]
                echo(f"{down.name} stopped; stopping the others:\n{down.tail()}")
                return 1
        echo("stopping the nodes and providers ...")
        return 0
    except ConfigError as exc:
        echo(f"relto federation demo: {exc}")
        return 1
    finally:
        stop_all(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
        if children:
            echo("stopped: every node and provider")


def _node_stopped(nation: str, root: Path, child: Child) -> str:
    """What to say when one node stops: the others keep running, and how to start it
    again by hand on its own folder (it then catches up with its partners)."""
    folder = (root / nation.lower()).resolve()
    serve = shlex.join([*_relto(), "serve"])
    return (
        f"{nation} node stopped (exit {child.process.returncode}); the other nodes keep "
        f"running and will show it silent. Bring it back in another terminal:\n"
        f"  (set -a; . {folder}/node.env; . {folder}/secrets.env; set +a; {serve})\n"
        f"Its last output:\n{child.tail(5)}"
    )


def _summary(
    prepared: list[_Prepared], root: Path, phases: dict[str, float], echo: Callable[[str], None]
) -> None:
    echo("")
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
    echo(f"four nodes ready in {sum(phases.values()):.1f} s ({steps}); data under {root}")
    echo("")
    for p in prepared:
        n = p.node
        echo(f"{n.nation}  console {n.public_url}/   identity provider {n.issuer}")
        for person in p.share.people:
            roles = ", ".join(person.roles).replace("_", " ")
            echo(f"       sign in as {person.id:<24} {person.name} ({roles})")
    echo("")
    echo(
        "Sign in at a nation's console with a person of that nation: the provider's form "
        "takes the person id as login and accepts ANY password (oidc-provider "
        "devInteractions, demo only). A person of another nation is refused: people sign "
        "in at home."
    )
    usa = next(p.node for p in prepared if p.node.nation == "USA")
    echo(
        "From the command line, as a person (relto.client): relto login --node "
        f"{usa.public_url} --issuer {usa.issuer} --client-id {usa.cli_client_id}; "
        "then relto remote objects | decide | open."
    )
    echo(
        "Commands against a node: set -a; . "
        f"{root / 'gbr' / 'node.env'}; . {root / 'gbr' / 'secrets.env'}; set +a; "
        "relto federation list"
    )
    echo("Ctrl-C stops every node and provider.")
