"""Two-step changes in the console: a preview shows what a change would do, and
carries a confirm form whose parameters are signed here, so the change made is
the one previewed.

A token is ``<expiry>.<HMAC-SHA256>`` over the action name, its parameters
(canonical JSON) and the expiry, keyed from the node's secret key (its own
derivation: a token is never a session cookie or CSRF token). It proves that this
node rendered a preview of exactly these parameters less than
:data:`CONFIRM_SECONDS` ago; the confirm form carries the session's CSRF token
as well, and the change is then authorised and decided again as usual.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping

from relto.config import Settings

__all__ = ["CONFIRM_SECONDS", "ConfirmTokens", "confirm_tokens"]

#: How long a preview may be confirmed.
CONFIRM_SECONDS = 15 * 60
_MAX_TOKEN = 120


class ConfirmTokens:
    """Issues and checks the signature of a previewed change."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"relto-console-confirm\0" + secret.encode()).digest()
        self._clock = clock

    def _mac(self, action: str, params: Mapping[str, str], expiry: int) -> str:
        body = json.dumps(
            [action, dict(sorted(params.items())), expiry],
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode()
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def issue(self, action: str, params: Mapping[str, str]) -> str:
        expiry = int(self._clock()) + CONFIRM_SECONDS
        return f"{expiry}.{self._mac(action, params, expiry)}"

    def check(self, action: str, params: Mapping[str, str], token: str) -> bool:
        if not token or len(token) > _MAX_TOKEN or "." not in token:
            return False
        expiry_text, _, mac = token.partition(".")
        if not expiry_text.isdigit():
            return False
        expiry = int(expiry_text)
        if expiry < self._clock():
            return False
        return hmac.compare_digest(self._mac(action, params, expiry), mac)


def confirm_tokens(settings: Settings) -> ConfirmTokens:
    """The node's token signer (the same secret as its sessions, another key)."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not secret:
        raise ValueError("the console needs a secret key to sign confirm forms")
    return ConfirmTokens(secret)
