"""The root of relto's error tree.

Every capability keeps its own ``errors.py`` whose classes derive from these, so
that a caller can catch one capability's failures or all of relto's::

    ReltoError
    ├── ConfigError              settings missing, malformed or unsafe (refuse to start)
    ├── StorageError             the database or blob store failed or refused a write
    │   ├── StorageUnavailable   the storage did not answer, or failed (an object store
    │   │                        down, timing out, refusing the credentials): 503, retry
    │   └── NotFound             no such record (never says whether it exists elsewhere)
    ├── InvalidInput             external data that is malformed (bad XML, bad marking...)
    ├── AccessDenied             the decision engine said no (one opaque error outward)
    └── <capability errors>      relto.labels.errors, relto.vetting.errors, ...

Bad external data raises a domain error (a subclass of ``ReltoError``); a caller's
misuse of an API raises ``ValueError`` or ``TypeError`` as usual.

Messages are written for the person who will read them and never carry secrets:
no keys, no tokens, no passwords, no plaintext.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "ConfigError",
    "InvalidInput",
    "NotFound",
    "ReltoError",
    "StorageError",
    "StorageUnavailable",
]


class ReltoError(Exception):
    """Base of every error relto raises on purpose."""

    #: A short stable machine-readable code, used in API error bodies.
    code: str = "error"


class ConfigError(ReltoError):
    """The configuration is missing, malformed or unsafe; relto refuses to start."""

    code = "config_error"


class StorageError(ReltoError):
    """The database or blob store failed, or refused a write."""

    code = "storage_error"


class StorageUnavailable(StorageError):
    """The storage is down or failing (not refusing this one write): try again later.
    The message says which store and which operation, never an address or a secret."""

    code = "storage_unavailable"


class NotFound(StorageError):
    """No such record, or one the caller may not know exists."""

    code = "not_found"


class InvalidInput(ReltoError):
    """External input is malformed; nothing was changed."""

    code = "invalid_input"


class AccessDenied(ReltoError):
    """The decision engine denied the request.

    Outward this is opaque; the reasons go to the audit log and to those entitled
    to see them.
    """

    code = "access_denied"
