"""What :mod:`relto.client` raises: one class per thing a caller acts on.

::

    ClientError
    ├── NodeUnreachable          the node (its API) cannot be reached or answers nonsense
    │   └── KasUnreachable       its key access service cannot be reached
    ├── NotAuthenticated         the node refused the credential (code: why)
    ├── NotFound                 no such object -- or one the caller may not know of
    ├── AccessDenied             the decision said no; ``reasons`` say why
    ├── RequestRefused           any other refusal (bad input, limits), with the node's code
    └── ProofRejected            what a node sent does not verify against the keys the
                                 caller trusts (a checkpoint, a cosignature, a proof)

Messages name the node by nation when it is known ("GBR key access service
unreachable") and carry what the node said, never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from relto.errors import ReltoError

__all__ = [
    "AccessDenied",
    "ClientError",
    "KasUnreachable",
    "NodeUnreachable",
    "NotAuthenticated",
    "NotFound",
    "ProofRejected",
    "Reason",
    "RequestRefused",
]


@dataclass(frozen=True)
class Reason:
    """One reason of a decision: a stable code and a sentence for people."""

    code: str
    sentence: str


class ClientError(ReltoError):
    """Base of every error of the client."""

    code = "client_error"

    def __init__(self, message: str, *, node: str = "", status: int | None = None) -> None:
        super().__init__(message)
        #: The nation (or base URL) of the node that answered, when known.
        self.node = node
        #: The HTTP status, when there was an answer.
        self.status = status


class NodeUnreachable(ClientError):
    code = "node_unreachable"


class KasUnreachable(NodeUnreachable):
    code = "kas_unreachable"


class NotAuthenticated(ClientError):
    code = "unauthenticated"

    def __init__(
        self, message: str, *, node: str = "", reason: str = "", status: int = 401
    ) -> None:
        super().__init__(message, node=node, status=status)
        #: The node's code for why (``attestation_expired``, ``dpop_replayed``, ...).
        self.reason = reason


class NotFound(ClientError):
    code = "not_found"


class AccessDenied(ClientError):
    code = "access_denied"

    def __init__(
        self, message: str, *, node: str = "", reasons: tuple[Reason, ...] = (), status: int = 403
    ) -> None:
        super().__init__(message, node=node, status=status)
        self.reasons = reasons


class RequestRefused(ClientError):
    code = "request_refused"

    def __init__(
        self, message: str, *, node: str = "", reason: str = "", status: int = 400
    ) -> None:
        super().__init__(message, node=node, status=status)
        self.reason = reason


class ProofRejected(ClientError):
    """The node's answer does not verify: nothing in it is to be believed.
    ``reason``: what failed (``checkpoint_signature``, ``no_cosignature``,
    ``inclusion``, ``not_concerned``, ...); ``index``: the log entry, if one."""

    code = "proof_rejected"

    def __init__(
        self, message: str, *, node: str = "", reason: str = "", index: int | None = None
    ) -> None:
        super().__init__(message, node=node)
        self.reason = reason
        self.index = index
