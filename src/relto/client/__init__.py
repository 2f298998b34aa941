"""``relto.client``: a typed Python client for relto nodes and their key access
services, across nations.

A person signs in at their home node (an access token of their nation's
identity provider, bound to their DPoP key) and works on any pinned partner node
with an attestation their home node issues for that key::

    from relto.client import DpopKey, HomeSession, Partner

    key = DpopKey.generate()            # get the access token with proofs of this key
    with HomeSession("https://relto.usa.example", token=token, dpop=key, nation="USA",
                     partners=(Partner("GBR", "https://relto.gbr.example"),)) as me:
        gbr = me.partner("https://relto.gbr.example")
        for obj in gbr.objects():       # what GBR releases to USA (metadata)
            print(obj.banner, obj.title)
        data = me.open(gbr, obj.id)     # the key from GBR's KAS, decided by GBR

Errors are typed (:mod:`relto.client.errors`): :class:`NodeUnreachable` and
:class:`KasUnreachable` name the node ("GBR key access service unreachable"),
:class:`AccessDenied` carries the holding node's reasons. More in docs/client.md.
"""

from relto.client._dpop import DpopKey
from relto.client.errors import (
    AccessDenied,
    ClientError,
    KasUnreachable,
    NodeUnreachable,
    NotAuthenticated,
    NotFound,
    ProofRejected,
    Reason,
    RequestRefused,
)
from relto.client.node import (
    Attestation,
    Credential,
    Decision,
    NodeClient,
    ObjectInfo,
    Partner,
)
from relto.client.session import AttestationCache, HomeSession, open_with
from relto.client.signin import SavedSession, SignInResult, sign_in

__all__ = [
    "AccessDenied",
    "Attestation",
    "AttestationCache",
    "ClientError",
    "Credential",
    "Decision",
    "DpopKey",
    "HomeSession",
    "KasUnreachable",
    "NodeClient",
    "NodeUnreachable",
    "NotAuthenticated",
    "NotFound",
    "ObjectInfo",
    "Partner",
    "ProofRejected",
    "Reason",
    "RequestRefused",
    "SavedSession",
    "SignInResult",
    "open_with",
    "sign_in",
]
