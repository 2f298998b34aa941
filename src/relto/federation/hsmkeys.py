"""The node key and the attestation key in a hardware security module (PKCS#11).

With ``RELTO_FEDERATION_KEYSTORE=pkcs11`` the two keys a node signs with --
descriptors with the node key, attestations and status lists with the
attestation key -- are EC P-256 key pairs generated on the token named by the
KAS's PKCS#11 settings (``RELTO_KAS_PKCS11_LIBRARY``, ``_TOKEN``, ``_PIN``),
private halves sensitive and not extractable, found again by label
(``relto-federation-node``, ``relto-federation-attestation``). Signing is
``CKM_ECDSA`` inside the token over the SHA-256 of the JWS signing input; its
``r || s`` output is the JWS ES256 signature as it is (RFC 7518 section 3.4).

The PKCS#11 library is opened lazily per process (a fork opens a new session),
one session per process under a lock: sessions are not thread-safe.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from relto.errors import ConfigError
from relto.federation._keys import PublicJwk, SigningKey

__all__ = ["ATTESTATION_LABEL", "NODE_LABEL", "Pkcs11SigningKey"]

NODE_LABEL = "relto-federation-node"
ATTESTATION_LABEL = "relto-federation-attestation"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uncompressed_point(ec_point: bytes) -> bytes:
    """``04 || X || Y`` of a P-256 CKA_EC_POINT (a DER OCTET STRING around it, as
    PKCS#11 2.40 says, or the bare point as some tokens give it)."""
    if len(ec_point) == 67 and ec_point[:2] == b"\x04\x41":
        ec_point = ec_point[2:]
    if len(ec_point) != 65 or ec_point[0] != 4:
        raise ConfigError("the PKCS#11 token returned a public key that is not a P-256 point")
    return ec_point


class _Token:
    """One PKCS#11 session per process on a token, under a lock."""

    def __init__(self, library: str, token_label: str, pin: str) -> None:
        if not os.path.exists(library):
            raise ConfigError(f"PKCS#11 library not found at {library}")
        self.library, self.token_label, self._pin = library, token_label, pin
        self.lock = threading.RLock()
        self._pid: int | None = None
        self._session: Any = None

    def session(self) -> Any:
        if self._session is not None and self._pid == os.getpid():
            return self._session
        try:
            token = pkcs11.lib(self.library).get_token(token_label=self.token_label)
            try:
                self._session = token.open(user_pin=self._pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # login is per process: another session of this process (the KAS key
                # store, the other federation key) logged in already
                self._session = token.open(rw=True)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise ConfigError(
                f"cannot open PKCS#11 token {self.token_label!r}: {type(exc).__name__}"
            ) from None
        self._pid = os.getpid()
        return self._session


class Pkcs11SigningKey(SigningKey):
    """A P-256 signing key whose private half never leaves the token.

    It is made on the token the first time ``label`` is asked for; afterwards the
    same key is found by its label. :meth:`private_jwk` is refused.
    """

    def __init__(self, library: str, token_label: str, pin: str, label: str) -> None:
        # deliberately not SigningKey.__init__: there is no private key in memory
        self._token = _Token(library, token_label, pin)
        self._label = label
        with self._token.lock:
            private, public = self._find_or_make()
            self._private = private
            point = _uncompressed_point(bytes(public[Attribute.EC_POINT]))
        self.public = PublicJwk.from_dict(
            {"kty": "EC", "crv": "P-256", "x": _b64(point[1:33]), "y": _b64(point[33:65])}
        )

    def _find_or_make(self) -> tuple[Any, Any]:
        session = self._token.session()
        try:
            privs = list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: self._label}
                )
            )
            pubs = list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: self._label}
                )
            )
            if len(privs) == 1 and len(pubs) == 1:
                return privs[0], pubs[0]
            if privs or pubs:
                raise ConfigError(
                    f"the PKCS#11 token holds {len(privs)} private and {len(pubs)} public "
                    f"objects labelled {self._label!r}: expected one of each"
                )
            params = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            pub, priv = params.generate_keypair(
                label=self._label,
                store=True,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SIGN: True,
                },
                public_template={Attribute.VERIFY: True},
            )
            return priv, pub
        except pkcs11.exceptions.PKCS11Error as exc:
            raise ConfigError(
                f"the PKCS#11 token refused the {self._label!r} key: {type(exc).__name__}"
            ) from None

    def private_jwk(self) -> dict[str, Any]:
        raise ConfigError("this key lives in an HSM: its private half cannot be exported")

    @property
    def alg(self) -> str:
        return "ES256"

    def sign(self, header: Mapping[str, Any], payload: bytes) -> str:
        protected = {"alg": "ES256", **header}
        encoded = _b64(json.dumps(protected, separators=(",", ":")).encode("utf-8"))
        signing_input = f"{encoded}.{_b64(payload)}".encode("ascii")
        digest = hashlib.sha256(signing_input).digest()
        with self._token.lock:
            if self._token._pid != os.getpid():  # a forked worker: a new session, found again
                self._private, _ = self._find_or_make()
            try:
                signature = self._private.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise ConfigError(
                    f"the PKCS#11 token refused to sign with {self._label!r}: {type(exc).__name__}"
                ) from None
        if len(signature) != 64:
            raise ConfigError("the PKCS#11 token returned a malformed ECDSA signature")
        return f"{signing_input.decode('ascii')}.{_b64(bytes(signature))}"

    def __repr__(self) -> str:
        return f"Pkcs11SigningKey({self._label}, {self.fingerprint})"
