"""Run the server with uvicorn, printing the address; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os

import uvicorn

from relto.config import Settings
from relto.server.logging import configure_logging

__all__ = ["app_from_env", "run_server"]


def app_from_env() -> object:
    """Uvicorn factory for worker processes: settings come from the environment."""
    from relto.config import load_settings
    from relto.server.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def run_server(settings: Settings, *, workers: int = 1) -> None:
    """Start relto and block until interrupted."""
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_demo_secrets()
    settings.check_secrets()
    # Worker processes rebuild the app from the environment: pass overrides along.
    os.environ["RELTO_DEMO"] = "true" if settings.demo else "false"
    os.environ["RELTO_BIND"] = settings.bind
    os.environ["RELTO_PORT"] = str(settings.port)
    os.environ["RELTO_DATA_DIR"] = str(settings.data_dir)
    host = f"[{settings.bind}]" if ":" in settings.bind else settings.bind
    print(
        f"relto {'(demo) ' if settings.demo else ''}listening on http://{host}:{settings.port}",
        flush=True,
    )
    if workers == 1:
        from relto.server.app import create_app

        app = create_app(settings)
        uvicorn.run(
            app,
            host=settings.bind,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
    else:
        uvicorn.run(
            "relto.server.run:app_from_env",
            factory=True,
            host=settings.bind,
            port=settings.port,
            workers=workers,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
