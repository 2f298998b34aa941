"""The demo partnership: a documented YAML file and its idempotent loader.

``relto serve --demo`` reads :data:`DEMO_FILE` (or the file named by
``RELTO_DEMO_FILE``) and loads it into the node's database on start. The file is
meant to be copied and edited; :func:`read_demo` checks it and says what is wrong
with it, line by line, before anything is written.
"""

from relto.demo.data import (
    DEMO_FILE,
    DemoClearance,
    DemoData,
    DemoDocument,
    DemoPerson,
    InvalidDemoFile,
    demo_file,
    parse_demo,
    read_demo,
)
from relto.demo.loader import LoadReport, load_demo, load_demo_documents

__all__ = [
    "DEMO_FILE",
    "DemoClearance",
    "DemoData",
    "DemoDocument",
    "DemoPerson",
    "InvalidDemoFile",
    "LoadReport",
    "demo_file",
    "load_demo",
    "load_demo_documents",
    "parse_demo",
    "read_demo",
]
