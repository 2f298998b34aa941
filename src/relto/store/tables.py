"""Imports every module that defines tables, so Alembic and tests see them all.

A capability that adds tables adds its module here (one line each).
"""

import relto.store.audit
import relto.store.changes
import relto.store.documents
import relto.store.export_control
import relto.store.facts
import relto.store.federation
import relto.store.kas
import relto.store.meta
import relto.store.partnership
import relto.store.sessions
import relto.store.tracing
import relto.store.vetting  # noqa: F401
