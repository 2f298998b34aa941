"""Imports every module that defines tables, so Alembic and tests see them all.

A capability that adds tables adds its module here (one line each).
"""

import relto.store.meta  # noqa: F401
import relto.store.partnership  # noqa: F401
import relto.store.audit  # noqa: F401
import relto.store.vetting  # noqa: F401
