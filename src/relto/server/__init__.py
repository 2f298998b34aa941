"""The HTTP server: REST API, the KAS endpoints and the web console (FastAPI)."""

from relto.server.app import AppContext, create_app

__all__ = ["AppContext", "create_app"]
