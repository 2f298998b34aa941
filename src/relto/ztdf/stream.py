"""Streaming protection: :class:`ContainerWriter` encrypts plaintext into a ZTDF
container *as it arrives* (an upload read chunk by chunk from the network), so the
plaintext is never written anywhere -- not even to a temporary file.

The container is the one :func:`relto.ztdf.protect` writes (same zip layout,
manifest, key split, policy binding, root signature and label assertion), except
that the payload entry's size is not known when its zip header goes out: the
header carries no sizes and the data descriptor and central directory carry the
real ones (the zip format's streaming mode; readers, ours and the Go SDK's, read
the central directory). The manifest code below mirrors ``protect()``'s; when the
reader work in :mod:`relto.ztdf.container` settles, ``protect()`` can be rebuilt on
this writer so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

from relto.errors import InvalidInput
from relto.ztdf import hazmat
from relto.ztdf._zip import ZipStreamWriter
from relto.ztdf.container import (
    DEFAULT_SEGMENT_SIZE,
    PAYLOAD_NAME,
    KasTarget,
    ProtectResult,
    _b64,
    _check_at,
    _check_protect_args,
    _key_access,
    _new_policy,
    _Pipeline,
    _write_manifest,
    log,
)
from relto.ztdf.manifest import (
    Assertion,
    Segment,
)

__all__ = ["ContainerWriter"]


class ContainerWriter:
    """Encrypt plaintext into a ZTDF container *as it arrives*: for uploads, where
    the plaintext must never be written anywhere, not even to a temporary file.

    ``write(chunk)`` as often as needed, then :meth:`finish` once; :meth:`close`
    (or leaving the ``with`` block) releases the worker threads either way. Only
    ciphertext reaches ``out``: each segment is encrypted from one in-memory
    buffer the moment it is full. Memory stays constant (one plaintext segment
    and three ciphertext slots) whatever the size.

    The DEK is drawn and split for ``kas`` at the start. The policy (attributes,
    dissemination), the label and the media type only go into the manifest,
    written last, so :meth:`finish` takes them: a label can be decided once the
    whole payload has arrived. So can the key access servers: :meth:`finish`
    may name other targets than ``kas`` (a joint custody read from the upload's
    form), and the DEK is then split afresh for them. The payload may be at most
    ``max_size`` bytes, and at most 4 GiB (the payload entry's size is not known
    when its zip header is written).
    """

    def __init__(
        self,
        out: BinaryIO,
        *,
        kas: Sequence[KasTarget],
        at: datetime,
        max_size: int,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        _check_at(at)
        self._order = _check_protect_args(kas, segment_size, None)
        max_segments = max(1, -(-max_size // segment_size))
        bound = max_size + max_segments * hazmat.SEGMENT_OVERHEAD
        if max_size < 0 or bound > 0xFFFFFFFE:
            raise ValueError("a streamed payload must be at most 4 GiB")
        self._kas = tuple(kas)
        self._max = max_size
        self._segment_size = segment_size
        self._dek, self._shares = hazmat.split_key(self._order)
        self._cipher = hazmat.SegmentCipher(self._dek)
        self._zw = ZipStreamWriter(out, at=at)
        self._zw.begin(PAYLOAD_NAME, bound, at_most=True)
        self._buf = memoryview(bytearray(segment_size))
        self._fill = 0
        self._size = 0
        self._segments: list[Segment] = []
        self._tags: list[bytes] = []
        zw = self._zw

        def write(view: memoryview) -> None:
            zw.write(view, crc_done=True)

        self._pipe: _Pipeline | None = _Pipeline(
            (zw.update_crc, write), (segment_size + hazmat.SEGMENT_OVERHEAD,)
        )
        self._done = False

    @property
    def size(self) -> int:
        """Plaintext bytes received so far."""
        return self._size

    def room(self) -> int:
        """Bytes that can be written before the current segment is sealed (a write
        of fewer only copies into memory; callers on an event loop use this to
        keep encryption off the loop)."""
        return self._segment_size - self._fill

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next plaintext bytes; raises :class:`InvalidInput` past ``max_size``."""
        if self._done or self._pipe is None:
            raise ValueError("the container is finished or closed")
        view = memoryview(data).cast("B")
        if self._size + len(view) > self._max:
            raise InvalidInput(f"the payload is larger than {self._max} bytes")
        self._size += len(view)
        while view:
            n = min(len(view), self._segment_size - self._fill)
            self._buf[self._fill : self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == self._segment_size:
                self._seal()

    def _seal(self) -> None:
        assert self._pipe is not None
        i = len(self._segments)
        (outview,) = self._pipe.slot(i)
        end = self._cipher.encrypt_into(self._buf[: self._fill], outview)
        tag = bytes(outview[end - hazmat.GCM_TAG_SIZE : end])
        self._pipe.submit(i, outview[:end])
        self._tags.append(tag)
        self._segments.append(
            Segment(hash=_b64(tag), segment_size=self._fill, encrypted_segment_size=end)
        )
        self._fill = 0

    def finish(
        self,
        *,
        attributes: Sequence[str] = (),
        dissem: Sequence[str] = (),
        label_xml: bytes | None = None,
        mime_type: str = "application/octet-stream",
        kas: Sequence[KasTarget] | None = None,
        assertions: Sequence[Assertion] = (),
        policy_uuid: str | None = None,
    ) -> ProtectResult:
        """Seal the last segment, bind the policy and label, write the manifest.
        ``kas``: the targets the key is split for, when not those given at the
        start (one share per distinct ``sid``, the same DEK). ``assertions``: more
        assertions (unbound; each is bound with the DEK like the label).
        ``policy_uuid``: the policy's UUID when it must be an existing object's (a
        re-protected copy is decided as that object). The caller flushes and syncs
        ``out``."""
        if self._done or self._pipe is None:
            raise ValueError("the container is finished or closed")
        if kas is not None:
            order = _check_protect_args(kas, self._segment_size, label_xml)
            self._kas, self._order = tuple(kas), order
            self._shares = hazmat.resplit_key(self._dek, order)
        _check_protect_args(self._kas, self._segment_size, label_xml)
        if self._fill or not self._segments:
            self._seal()  # an empty payload is one empty segment, as protect() writes it
        self._pipe.drain()
        self._done = True
        self.close()
        self._zw.end()
        policy, policy_b64 = _new_policy(attributes, dissem, policy_uuid)
        key_access = _key_access(self._kas, self._order, self._shares, policy_b64)
        manifest, container_size = _write_manifest(
            self._zw,
            dek=self._dek,
            policy_b64=policy_b64,
            key_access=key_access,
            segments=self._segments,
            tags=self._tags,
            segment_size=self._segment_size,
            label_xml=label_xml,
            mime_type=mime_type,
            extra=assertions,
        )
        log.info(
            "ztdf protect (streamed): %d bytes, %d segments, %d key access entries",
            self._size,
            len(self._segments),
            len(key_access),
        )
        return ProtectResult(
            manifest=manifest,
            policy=policy,
            container_size=container_size,
            plaintext_size=self._size,
        )

    def close(self) -> None:
        """Stop the worker threads (idempotent); the buffers are zeroed."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.__exit__(None, None, None)
            self._buf[:] = bytes(len(self._buf))
            self._fill = 0

    def __enter__(self) -> ContainerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
