"""The ``relto`` command line (Typer)."""
