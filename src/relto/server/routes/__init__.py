"""REST API and KAS adapters. Each module exposes ``mount(app, edge)``; the app
factory (:func:`relto.server.app.create_app`) mounts them all, in any order."""
