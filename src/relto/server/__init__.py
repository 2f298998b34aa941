"""The HTTP server: REST API, the KAS endpoints and the web console (FastAPI).

Adapters only: every route parses, calls one service of the node
(:class:`relto.node.Node`), and renders.
"""

from relto.server.app import create_app

__all__ = ["create_app"]
