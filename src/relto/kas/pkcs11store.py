"""A key store in a hardware security module, through PKCS#11 (python-pkcs11).

Key pairs are generated on the token (private keys sensitive and not
extractable); each object carries the key id in ``CKA_ID`` and its public
facts (algorithm, state, dates) as JSON in ``CKA_LABEL``, so the token alone is
the source of truth and several server processes see the same lifecycle.
RSA-OAEP decryption and ECDH derivation run inside the token.

The PKCS#11 library is opened lazily in each process (after a fork, a new
session is opened) and one session per process is used under a lock: PKCS#11
sessions are not thread-safe.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import KDF, MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from relto.kas.errors import KeyRetired, KeyStoreError, UnknownKey, UnwrapFailed
from relto.kas.keys import ALGORITHMS, Algorithm, KeyInfo, KeyState, new_kid

__all__ = ["Pkcs11KeyStore"]

_MARK = "relto-kas"


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat()


class Pkcs11KeyStore:
    """KAS keys on a PKCS#11 token."""

    #: Every operation is a call into the token: never on an event loop.
    blocking = True

    def __init__(self, library: str, token_label: str, pin: str) -> None:
        if not os.path.exists(library):
            raise KeyStoreError(f"PKCS#11 library not found at {library}")
        self._library = library
        self._token_label = token_label
        self._pin = pin
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._session: Any = None
        self._public_pem: dict[str, str] = {}
        self._session_or_open()

    # -- session ----------------------------------------------------------------

    def _session_or_open(self) -> Any:
        if self._session is not None and self._pid == os.getpid():
            return self._session
        try:
            lib = pkcs11.lib(self._library)
            token = lib.get_token(token_label=self._token_label)
            try:
                self._session = token.open(user_pin=self._pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # login is per process: the node's federation keys on the same token
                # (relto.federation.hsmkeys) logged this process in already
                self._session = token.open(rw=True)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot open PKCS#11 token {self._token_label!r}: {type(exc).__name__}"
            ) from None
        self._pid = os.getpid()
        return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                self._session.close()
            self._session = None

    # -- objects ----------------------------------------------------------------

    def _find(self, cls: ObjectClass, kid: str | None = None) -> list[Any]:
        attrs: dict[Attribute, Any] = {Attribute.CLASS: cls}
        if kid is not None:
            attrs[Attribute.ID] = kid.encode("utf-8")
        found = []
        for obj in self._session_or_open().get_objects(attrs):
            label = obj[Attribute.LABEL]
            if isinstance(label, str) and label.startswith('{"' + _MARK):
                found.append(obj)
        return found

    @staticmethod
    def _meta(obj: Any) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads(obj[Attribute.LABEL])[_MARK]
        return meta

    def _info(self, priv: Any) -> KeyInfo:
        meta = self._meta(priv)
        kid = bytes(priv[Attribute.ID]).decode("utf-8")
        pem = self._public_pem.get(kid)
        if pem is None:
            pubs = self._find(ObjectClass.PUBLIC_KEY, kid)
            if not pubs:
                raise KeyStoreError("a key pair on the token has lost its public key")
            pub = pubs[0]
            loaded: Any
            if meta["alg"] == "rsa:2048":
                loaded = rsa.RSAPublicNumbers(
                    int.from_bytes(bytes(pub[Attribute.PUBLIC_EXPONENT]), "big"),
                    int.from_bytes(bytes(pub[Attribute.MODULUS]), "big"),
                ).public_key()
            else:
                loaded = serialization.load_der_public_key(encode_ec_public_key(pub))
            pem = loaded.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
            self._public_pem[kid] = pem
        return KeyInfo(
            kid=kid,
            algorithm=meta["alg"],
            state=KeyState(meta["state"]),
            created_at=datetime.fromisoformat(meta["created"]),
            public_key_pem=pem,
            retired_at=datetime.fromisoformat(meta["retired"]) if meta.get("retired") else None,
        )

    @staticmethod
    def _label(alg: str, state: str, created: str, retired: str | None) -> str:
        body = {"alg": alg, "state": state, "created": created, "retired": retired}
        return json.dumps({_MARK: body}, separators=(",", ":"))

    def _set_state(self, kid: str, state: KeyState, retired: str | None) -> None:
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for obj in self._find(cls, kid):
                meta = self._meta(obj)
                obj[Attribute.LABEL] = self._label(
                    meta["alg"], state.value, meta["created"], retired
                )

    # -- KeyStore ---------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            keys = [self._info(o) for o in self._find(ObjectClass.PRIVATE_KEY)]
        return sorted(keys, key=lambda k: k.created_at)

    def get(self, kid: str) -> KeyInfo:
        with self._lock:
            found = self._find(ObjectClass.PRIVATE_KEY, kid)
            if not found:
                raise UnknownKey("no such key")
            return self._info(found[0])

    def active(self, algorithm: Algorithm) -> KeyInfo:
        for info in self.list_keys():
            if info.algorithm == algorithm and info.state is KeyState.ACTIVE:
                return info
        raise UnknownKey(f"no active {algorithm} key")

    def rotate(self, algorithm: Algorithm, *, at: datetime) -> KeyInfo:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        created = _iso(at)
        with self._lock:
            session = self._session_or_open()
            existing = {k.kid for k in self.list_keys()}
            kid = new_kid(algorithm)
            while kid in existing:  # pragma: no cover
                kid = new_kid(algorithm)
            label = self._label(algorithm, KeyState.ACTIVE.value, created, None)
            private_template = {
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
            }
            try:
                if algorithm == "rsa:2048":
                    session.generate_keypair(
                        KeyType.RSA,
                        2048,
                        id=kid.encode(),
                        label=label,
                        store=True,
                        private_template={**private_template, Attribute.DECRYPT: True},
                        public_template={Attribute.ENCRYPT: True},
                    )
                else:
                    params = session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                        local=True,
                    )
                    params.generate_keypair(
                        id=kid.encode(),
                        label=label,
                        store=True,
                        private_template={**private_template, Attribute.DERIVE: True},
                    )
            except pkcs11.exceptions.PKCS11Error as exc:
                raise KeyStoreError(
                    f"the token refused to generate a key: {type(exc).__name__}"
                ) from None
            for info in self.list_keys():
                if (
                    info.algorithm == algorithm
                    and info.state is KeyState.ACTIVE
                    and info.kid != kid
                ):
                    self._set_state(info.kid, KeyState.ROTATED, None)
            return self.get(kid)

    def retire(self, kid: str, *, at: datetime) -> KeyInfo:
        retired = _iso(at)
        with self._lock:
            info = self.get(kid)
            if info.state is KeyState.ACTIVE:
                raise KeyStoreError("the active key cannot be retired: rotate first")
            if info.state is not KeyState.RETIRED:
                self._set_state(kid, KeyState.RETIRED, retired)
            return self.get(kid)

    def destroy(self, kid: str, *, force: bool = False) -> None:
        """Delete a retired key pair from the token for good (``force``: any state)."""
        with self._lock:
            info = self.get(kid)
            if info.state is not KeyState.RETIRED and not force:
                raise KeyStoreError("only a retired key can be destroyed")
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in self._find(cls, kid):
                    obj.destroy()
            self._public_pem.pop(kid, None)

    def _usable_private(self, kid: str, algorithm: Algorithm) -> Any:
        found = self._find(ObjectClass.PRIVATE_KEY, kid)
        if not found:
            raise UnknownKey("no such key")
        meta = self._meta(found[0])
        if meta["state"] == KeyState.RETIRED:
            raise KeyRetired("the key is retired")
        if meta["alg"] != algorithm:
            raise UnwrapFailed("the key does not have the algorithm this key access needs")
        return found[0]

    def rsa_decrypt(self, kid: str, ciphertext: bytes) -> bytes:
        with self._lock:
            priv = self._usable_private(kid, "rsa:2048")
            try:
                return bytes(
                    priv.decrypt(
                        ciphertext,
                        mechanism=Mechanism.RSA_PKCS_OAEP,
                        mechanism_param=(Mechanism.SHA_1, MGF.SHA1, None),
                    )
                )
            except pkcs11.exceptions.PKCS11Error as exc:
                raise UnwrapFailed("the wrapped key does not decrypt") from exc

    def ecdh(self, kid: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        if not isinstance(peer.curve, ec.SECP256R1):
            raise UnwrapFailed("the ephemeral key is not on secp256r1")
        point = peer.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        with self._lock:
            priv = self._usable_private(kid, "ec:secp256r1")
            try:
                secret = priv.derive_key(
                    KeyType.GENERIC_SECRET,
                    256,
                    mechanism_param=(KDF.NULL, None, point),
                    template={
                        Attribute.SENSITIVE: False,
                        Attribute.EXTRACTABLE: True,
                        Attribute.TOKEN: False,
                    },
                )
                value = bytes(secret[Attribute.VALUE])
                secret.destroy()
                return value
            except pkcs11.exceptions.PKCS11Error as exc:
                raise UnwrapFailed("ECDH failed") from exc
