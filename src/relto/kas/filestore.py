"""A key store in one file, private keys sealed at rest.

``<folder>/keys.json`` (mode 0600, folder 0700) holds every key's public facts and
its private key sealed with AES-256-GCM under a key derived from the store
passphrase by scrypt (both from :mod:`relto.ztdf.hazmat`); the associated data
binds each sealed key to its id and algorithm, so a sealed key cannot be moved to
another id. A check value detects a wrong passphrase at open. Writes are atomic
(temporary file, fsync, rename) and serialised by a lock file; readers notice a
change made by another process (the CLI rotating a key while the server runs) by
the file's identity and reload it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from relto.kas.errors import KeyRetired, KeyStoreError, UnknownKey, UnwrapFailed
from relto.kas.keys import ALGORITHMS, Algorithm, KeyInfo, KeyState, new_kid
from relto.ztdf import hazmat
from relto.ztdf.errors import CryptoError

__all__ = ["FileKeyStore"]

_FILE = "keys.json"
_CHECK = b"relto-kas-keystore-check-v1"
_AAD_PREFIX = b"relto-kas-key-v1\x00"
_MIN_PASSPHRASE = 16
DEFAULT_SCRYPT_N = 2**15

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat()


def _public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "rsa:2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class FileKeyStore:
    """Keys in ``<folder>/keys.json``, sealed with a passphrase-derived key."""

    #: Unwrapping computes on keys held in memory (a ``stat`` notices another
    #: process's rotation): safe to call on an event loop.
    blocking = False

    def __init__(self, folder: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        if len(passphrase) < _MIN_PASSPHRASE:
            raise ValueError("the key store passphrase must have at least 16 characters")
        self.folder = Path(folder)
        self._path = self.folder / _FILE
        self._passphrase = passphrase.encode("utf-8")
        self._scrypt_n = scrypt_n
        self._lock = threading.RLock()
        self._stamp: tuple[int, int, int] | None = None
        self._doc: dict[str, Any] = {}
        self._sealer: hazmat.SealingCipher | None = None
        self._kdf_params: tuple[bytes, int, int, int] | None = None
        self._private: dict[str, PrivateKey] = {}
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            self.folder.chmod(0o700)
        with self._write_lock():
            if not self._path.exists():
                self._write(self._new_document())
        self._load()

    # -- file handling ----------------------------------------------------------

    def _new_document(self) -> dict[str, Any]:
        salt = os.urandom(16)
        sealer = self._derive(salt, self._scrypt_n, 8, 1)
        return {
            "format": "relto-kas-keystore/1",
            "kdf": {"name": "scrypt", "salt": _b64(salt), "n": self._scrypt_n, "r": 8, "p": 1},
            "check": _b64(sealer.seal(_CHECK, b"check")),
            "keys": [],
        }

    def _derive(self, salt: bytes, n: int, r: int, p: int) -> hazmat.SealingCipher:
        if self._kdf_params == (salt, n, r, p) and self._sealer is not None:
            return self._sealer
        key = hazmat.scrypt_key(self._passphrase, salt, n=n, r=r, p=p)
        self._sealer = hazmat.SealingCipher(key)
        self._kdf_params = (salt, n, r, p)
        return self._sealer

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        tmp = self.folder / f".{_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        dfd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _file_stamp(self) -> tuple[int, int, int]:
        st = os.stat(self._path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> None:
        with self._lock:
            try:
                stamp = self._file_stamp()
                if stamp == self._stamp:
                    return
                doc = json.loads(self._path.read_bytes())
                kdf = doc["kdf"]
                if kdf.get("name") != "scrypt":
                    raise KeyStoreError("the key store uses an unknown key derivation")
                sealer = self._derive(
                    _unb64(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
                )
                check = _unb64(doc["check"])
            except KeyStoreError:
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyStoreError(f"the key store at {self._path} is unreadable") from exc
            try:
                opened = sealer.unseal(check, b"check")
            except CryptoError:
                opened = b""
            if opened != _CHECK:
                raise KeyStoreError("the passphrase does not open the key store")
            self._doc = doc
            self._stamp = stamp

    def _entries(self) -> list[dict[str, Any]]:
        self._load()
        entries: list[dict[str, Any]] = self._doc["keys"]
        return entries

    @staticmethod
    def _info(entry: dict[str, Any]) -> KeyInfo:
        return KeyInfo(
            kid=entry["kid"],
            algorithm=entry["algorithm"],
            state=KeyState(entry["state"]),
            created_at=datetime.fromisoformat(entry["created_at"]),
            public_key_pem=entry["public_key_pem"],
            retired_at=datetime.fromisoformat(entry["retired_at"])
            if entry.get("retired_at")
            else None,
        )

    # -- KeyStore ---------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        return [self._info(e) for e in self._entries()]

    def get(self, kid: str) -> KeyInfo:
        for entry in self._entries():
            if entry["kid"] == kid:
                return self._info(entry)
        raise UnknownKey("no such key")

    def active(self, algorithm: Algorithm) -> KeyInfo:
        for entry in self._entries():
            if entry["algorithm"] == algorithm and entry["state"] == KeyState.ACTIVE:
                return self._info(entry)
        raise UnknownKey(f"no active {algorithm} key")

    def rotate(self, algorithm: Algorithm, *, at: datetime) -> KeyInfo:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        created = _iso(at)
        key = _generate(algorithm)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with self._lock, self._write_lock():
            self._stamp = None
            entries = self._entries()
            kid = new_kid(algorithm)
            while any(e["kid"] == kid for e in entries):  # pragma: no cover - 40 random bits
                kid = new_kid(algorithm)
            assert self._sealer is not None
            sealed = self._sealer.seal(der, self._aad(kid, algorithm))
            for entry in entries:
                if entry["algorithm"] == algorithm and entry["state"] == KeyState.ACTIVE:
                    entry["state"] = KeyState.ROTATED.value
            entry = {
                "kid": kid,
                "algorithm": algorithm,
                "state": KeyState.ACTIVE.value,
                "created_at": created,
                "retired_at": None,
                "public_key_pem": _public_pem(key),
                "sealed_private_key": _b64(sealed),
            }
            entries.append(entry)
            self._write(self._doc)
            self._stamp = None
            self._private[kid] = key
            return self._info(entry)

    def import_key(
        self,
        private_key_pem: bytes,
        *,
        kid: str,
        at: datetime,
        state: KeyState = KeyState.ROTATED,
    ) -> KeyInfo:
        """Seal an existing private key under ``kid`` (moving keys from another KAS).

        Imported keys are ``rotated`` by default: they open existing containers but
        are not handed out for new ones. ``state=ACTIVE`` makes it the active key.
        """
        if not kid or len(kid) > 64 or not kid.isprintable():
            raise ValueError("a key id must be 1 to 64 printable characters")
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise KeyStoreError("the private key does not parse (PEM, unencrypted)") from None
        algorithm: Algorithm
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048:
            algorithm = "rsa:2048"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            algorithm = "ec:secp256r1"
        else:
            raise KeyStoreError("only rsa:2048 and ec:secp256r1 keys can be imported")
        if state is KeyState.RETIRED:
            raise ValueError("import a key as active or rotated")
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with self._lock, self._write_lock():
            self._stamp = None
            entries = self._entries()
            if any(e["kid"] == kid for e in entries):
                raise KeyStoreError("a key with that id already exists")
            assert self._sealer is not None
            sealed = self._sealer.seal(der, self._aad(kid, algorithm))
            if state is KeyState.ACTIVE:
                for entry in entries:
                    if entry["algorithm"] == algorithm and entry["state"] == KeyState.ACTIVE:
                        entry["state"] = KeyState.ROTATED.value
            entry = {
                "kid": kid,
                "algorithm": algorithm,
                "state": state.value,
                "created_at": _iso(at),
                "retired_at": None,
                "public_key_pem": _public_pem(key),
                "sealed_private_key": _b64(sealed),
            }
            entries.append(entry)
            self._write(self._doc)
            self._stamp = None
            return self._info(entry)

    def retire(self, kid: str, *, at: datetime) -> KeyInfo:
        retired = _iso(at)
        with self._lock, self._write_lock():
            self._stamp = None
            for entry in self._entries():
                if entry["kid"] != kid:
                    continue
                if entry["state"] == KeyState.ACTIVE:
                    raise KeyStoreError("the active key cannot be retired: rotate first")
                if entry["state"] != KeyState.RETIRED:
                    entry["state"] = KeyState.RETIRED.value
                    entry["retired_at"] = retired
                    self._write(self._doc)
                    self._stamp = None
                self._private.pop(kid, None)
                return self._info(entry)
        raise UnknownKey("no such key")

    @staticmethod
    def _aad(kid: str, algorithm: str) -> bytes:
        return _AAD_PREFIX + kid.encode("utf-8") + b"\x00" + algorithm.encode("ascii")

    def _private_key(self, kid: str, algorithm: Algorithm) -> PrivateKey:
        with self._lock:
            entry = next((e for e in self._entries() if e["kid"] == kid), None)
            if entry is None:
                raise UnknownKey("no such key")
            if entry["state"] == KeyState.RETIRED:
                self._private.pop(kid, None)
                raise KeyRetired("the key is retired")
            if entry["algorithm"] != algorithm:
                raise UnwrapFailed("the key does not have the algorithm this key access needs")
            cached = self._private.get(kid)
            if cached is not None:
                return cached
            assert self._sealer is not None
            try:
                sealed = _unb64(entry["sealed_private_key"])
                der = self._sealer.unseal(sealed, self._aad(kid, algorithm))
                key = serialization.load_der_private_key(der, password=None)
            except (CryptoError, ValueError, KeyError) as exc:
                raise KeyStoreError("a sealed private key does not open") from exc
            if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise KeyStoreError("a sealed private key has an unexpected type")
            self._private[kid] = key
            return key

    def rsa_decrypt(self, kid: str, ciphertext: bytes) -> bytes:
        key = self._private_key(kid, "rsa:2048")
        assert isinstance(key, rsa.RSAPrivateKey)
        try:
            return key.decrypt(
                ciphertext,
                padding.OAEP(
                    mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303 - OpenTDF's wrap
                    algorithm=hashes.SHA1(),  # noqa: S303
                    label=None,
                ),
            )
        except ValueError as exc:
            raise UnwrapFailed("the wrapped key does not decrypt") from exc

    def ecdh(self, kid: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        key = self._private_key(kid, "ec:secp256r1")
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        if not isinstance(peer.curve, ec.SECP256R1):
            raise UnwrapFailed("the ephemeral key is not on secp256r1")
        try:
            return key.exchange(ec.ECDH(), peer)
        except ValueError as exc:  # pragma: no cover - invalid points are refused at load
            raise UnwrapFailed("ECDH failed") from exc
