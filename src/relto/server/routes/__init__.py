"""Route modules. Each exposes ``mount(app, ctx)``; add yours to ``_MODULES``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from relto.server.app import AppContext

__all__ = ["mount_all"]

_MODULES: tuple[str, ...] = (
    # one line per capability, e.g. "relto.server.routes.vetting",
    "relto.server.routes.audit",
    "relto.server.routes.partnership",  # before kas: it provides the KAS's decider
    "relto.server.routes.kas",
    "relto.server.routes.console",
    "relto.server.routes.vetting",
)


def mount_all(app: FastAPI, ctx: AppContext) -> None:
    for name in _MODULES:
        importlib.import_module(name).mount(app, ctx)
