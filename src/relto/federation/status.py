"""Token Status List (draft-ietf-oauth-status-list-20): the ``lst`` encoding.

A status list packs one status of ``bits`` bits (1, 2, 4 or 8) per referenced
token, least significant bits first in each byte, compresses the bytes with
DEFLATE in the ZLIB format and encodes them base64url without padding. Values:
0 VALID, 1 INVALID, 2 SUSPENDED (``bits`` >= 2), 3 and 0x0C-0x0F
application-specific.

This module is the codec only; fetching and checking the Status List Token
(``typ`` ``statuslist+jwt``) is not built yet (docs/federation.md).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum

from relto.federation._keys import b64url_decode, b64url_encode
from relto.federation.errors import InvalidStatusList

__all__ = ["MAX_STATUS_LIST_BYTES", "StatusList", "TokenStatus"]

#: The largest decompressed list accepted (8 Mi statuses of 1 bit in 1 MiB).
MAX_STATUS_LIST_BYTES = 1 << 20
_BITS = (1, 2, 4, 8)


class TokenStatus(IntEnum):
    VALID = 0
    INVALID = 1
    SUSPENDED = 2


@dataclass(frozen=True)
class StatusList:
    """Statuses of ``bits`` bits each, packed as the draft says."""

    bits: int
    packed: bytes

    def __post_init__(self) -> None:
        if self.bits not in _BITS:
            raise ValueError("bits is 1, 2, 4 or 8")

    @classmethod
    def of(cls, statuses: list[int], bits: int = 1) -> StatusList:
        if bits not in _BITS:
            raise ValueError("bits is 1, 2, 4 or 8")
        per_byte = 8 // bits
        out = bytearray((len(statuses) + per_byte - 1) // per_byte)
        for i, status in enumerate(statuses):
            if not 0 <= status < 1 << bits:
                raise ValueError(f"status {status} does not fit in {bits} bits")
            out[i // per_byte] |= status << (bits * (i % per_byte))
        return cls(bits, bytes(out))

    def __len__(self) -> int:
        return len(self.packed) * (8 // self.bits)

    def status(self, idx: int) -> int:
        """The status at ``idx``; :class:`InvalidStatusList` when out of range."""
        if not 0 <= idx < len(self):
            raise InvalidStatusList(f"index {idx} is outside the status list ({len(self)})")
        per_byte = 8 // self.bits
        return (self.packed[idx // per_byte] >> (self.bits * (idx % per_byte))) & (
            (1 << self.bits) - 1
        )

    def encode(self) -> str:
        """The ``lst`` value: ZLIB (level 9), base64url without padding."""
        return b64url_encode(zlib.compress(self.packed, 9))

    @classmethod
    def decode(cls, lst: str, bits: int) -> StatusList:
        """Parse an ``lst`` value; :class:`InvalidStatusList` for anything malformed
        (including a list that decompresses beyond :data:`MAX_STATUS_LIST_BYTES`)."""
        if bits not in _BITS:
            raise InvalidStatusList("a status list's bits is 1, 2, 4 or 8")
        try:
            compressed = b64url_decode(lst)
        except ValueError:
            raise InvalidStatusList("a status list is not base64url") from None
        inflater = zlib.decompressobj()
        try:
            packed = inflater.decompress(compressed, MAX_STATUS_LIST_BYTES)
        except zlib.error:
            raise InvalidStatusList("a status list is not ZLIB-compressed") from None
        if inflater.unconsumed_tail:
            raise InvalidStatusList(f"a status list is larger than {MAX_STATUS_LIST_BYTES} bytes")
        if not inflater.eof or inflater.unused_data:
            raise InvalidStatusList("a status list's ZLIB stream is truncated or followed by data")
        return cls(bits, packed)
