"""The zip layer of a ZTDF container: a streaming stored-entry writer and a strict reader.

Writer: laid out as OpenTDF's Go SDK archive writer does -- for each entry a local
file header with general purpose flag 0x08 (sizes follow in a data descriptor), the
stored (uncompressed) bytes, a data descriptor; then the central directory and the
end records. An archive is zip64 when an entry is larger than 4 GiB (or on request):
then every local header carries a zip64 extra with the sizes, every data descriptor
has 8-byte sizes, every central directory entry a zip64 extra with sizes and offset,
and a zip64 end record and locator precede the classic end record.

Reader: refuses anything a ZTDF container has no business containing -- more than
:data:`MAX_ENTRIES` entries, duplicate names, names other than the two expected,
compressed or encrypted entries, sizes that disagree, entries overlapping each
other or the central directory, multi-disk archives, trailing junk after the end
record. Every defect raises :class:`InvalidContainer` with a precise ``reason``.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

from relto.ztdf.errors import InvalidContainer

__all__ = ["MAX_ENTRIES", "ZipEntry", "ZipStreamWriter", "read_zip_index"]

MAX_ENTRIES: Final = 8
_LOCAL_SIG: Final = 0x04034B50
_CD_SIG: Final = 0x02014B50
_EOCD_SIG: Final = 0x06054B50
_Z64_EOCD_SIG: Final = 0x06064B50
_Z64_LOC_SIG: Final = 0x07064B50
_DD_SIG: Final = 0x08074B50
_Z64_MAGIC: Final = 0xFFFFFFFF
_FLAG_DATA_DESCRIPTOR: Final = 0x08
_VERSION_20: Final = 20
_VERSION_45: Final = 45

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_CD = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
_Z64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_Z64_LOC = struct.Struct("<IIQI")  # 20 bytes


def _dos_time(at: datetime) -> tuple[int, int]:
    year = min(max(at.year, 1980), 2107)
    return (
        (at.hour << 11) | (at.minute << 5) | (at.second // 2),
        ((year - 1980) << 9) | (at.month << 5) | at.day,
    )


@dataclass(slots=True)
class _Written:
    name: bytes
    offset: int
    size: int
    crc: int


class ZipStreamWriter:
    """Write stored entries with data descriptors to a forward-only stream.

    Usage: ``begin(name, size)``, ``write(...)`` exactly ``size`` bytes, ``end()``;
    after the last entry ``finish()``. The declared size decides zip64 up front,
    as the Go SDK's writer does, so nothing ever has to seek back.

    ``begin(name, bound, at_most=True)`` opens an entry whose size is only known to
    be at most ``bound`` (a payload still arriving): its local header carries no
    sizes (the data descriptor and central directory do), so the bound must fit a
    classic entry.
    """

    def __init__(self, out: BinaryIO, *, at: datetime, force_zip64: bool = False) -> None:
        self._out = out
        self._time, self._date = _dos_time(at)
        self._zip64 = force_zip64
        self._offset = 0
        self._entries: list[_Written] = []
        self._current: _Written | None = None
        self._declared = 0
        self._at_most = False
        self._crc = 0
        self._written = 0

    @property
    def zip64(self) -> bool:
        return self._zip64

    @property
    def offset(self) -> int:
        """Bytes written so far."""
        return self._offset

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self._out.write(data)
        self._offset += len(data)

    def begin(self, name: str, size: int, *, at_most: bool = False) -> None:
        if self._current is not None:
            raise ValueError("an entry is already open")
        if size < 0:
            raise ValueError("negative entry size")
        if size > 0xFFFFFFFE or self._offset > 0xFFFFFFFE:
            self._zip64 = True
        if at_most and self._zip64:
            raise ValueError("an entry of unknown size must fit a classic (non-zip64) entry")
        self._at_most = at_most
        raw = name.encode("ascii")
        self._current = _Written(raw, self._offset, size, 0)
        self._declared = size
        self._crc = 0
        self._written = 0
        version = _VERSION_45 if self._zip64 else _VERSION_20
        size_field = _Z64_MAGIC if self._zip64 else 0
        extra = struct.pack("<HHQQ", 1, 16, size, size) if self._zip64 else b""
        self._emit(
            _LOCAL.pack(
                _LOCAL_SIG,
                version,
                _FLAG_DATA_DESCRIPTOR,
                0,
                self._time,
                self._date,
                0,
                size_field,
                size_field,
                len(raw),
                len(extra),
            )
        )
        self._emit(raw)
        if extra:
            self._emit(extra)

    def write(self, data: bytes | bytearray | memoryview, *, crc_done: bool = False) -> None:
        """Append entry bytes; ``crc_done`` if :meth:`update_crc` already saw them."""
        if self._current is None:
            raise ValueError("no entry is open")
        if self._written + len(data) > self._declared:
            raise ValueError("more data than the declared entry size")
        if not crc_done:
            self._crc = zlib.crc32(data, self._crc)
        self._written += len(data)
        self._emit(data)

    def update_crc(self, data: bytes | bytearray | memoryview) -> None:
        """Fold ``data`` into the entry CRC ahead of writing it (another thread writes).

        Callers must pass the same bytes, in the same order, to :meth:`write` with
        ``crc_done=True``.
        """
        self._crc = zlib.crc32(data, self._crc)

    def end(self) -> None:
        cur = self._current
        if cur is None:
            raise ValueError("no entry is open")
        if self._at_most:
            cur.size = self._written
        elif self._written != self._declared:
            raise ValueError("entry shorter than declared")
        cur.crc = self._crc
        if self._zip64:
            self._emit(struct.pack("<IIQQ", _DD_SIG, cur.crc, cur.size, cur.size))
        else:
            self._emit(struct.pack("<IIII", _DD_SIG, cur.crc, cur.size, cur.size))
        self._entries.append(cur)
        self._current = None

    def finish(self) -> int:
        """Write the central directory and end records; returns the archive size."""
        if self._current is not None:
            raise ValueError("an entry is still open")
        cd_start = self._offset
        if cd_start > 0xFFFFFFFE:
            self._zip64 = True
        version = _VERSION_45 if self._zip64 else _VERSION_20
        for e in self._entries:
            if self._zip64:
                extra = struct.pack("<HHQQQ", 1, 24, e.size, e.size, e.offset)
                size_field = offset_field = _Z64_MAGIC
            else:
                extra = b""
                size_field, offset_field = e.size, e.offset
            self._emit(
                _CD.pack(
                    _CD_SIG,
                    version,
                    version,
                    _FLAG_DATA_DESCRIPTOR,
                    0,
                    self._time,
                    self._date,
                    e.crc,
                    size_field,
                    size_field,
                    len(e.name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    offset_field,
                )
            )
            self._emit(e.name)
            if extra:
                self._emit(extra)
        cd_size = self._offset - cd_start
        count = len(self._entries)
        if self._zip64:
            z64_at = self._offset
            self._emit(
                _Z64_EOCD.pack(
                    _Z64_EOCD_SIG,
                    44,
                    _VERSION_45,
                    _VERSION_45,
                    0,
                    0,
                    count,
                    count,
                    cd_size,
                    cd_start,
                )
            )
            self._emit(_Z64_LOC.pack(_Z64_LOC_SIG, 0, z64_at, 1))
        self._emit(
            _EOCD.pack(
                _EOCD_SIG,
                0,
                0,
                count,
                count,
                cd_size if not self._zip64 else min(cd_size, _Z64_MAGIC),
                _Z64_MAGIC if self._zip64 else cd_start,
                0,
            )
        )
        return self._offset


# ---------------------------------------------------------------------- reader


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """Where one stored entry's bytes lie in the archive."""

    name: str
    data_offset: int
    size: int
    crc: int


def _fail(reason: str) -> InvalidContainer:
    return InvalidContainer(f"zip: {reason}")


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise _fail("truncated")
    return data


def _zip64_extra(extra: bytes, need: list[str]) -> dict[str, int]:
    """Parse the zip64 extended information field for the fields marked 0xFFFFFFFF."""
    pos = 0
    while pos + 4 <= len(extra):
        hid, hlen = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + hlen]
        if len(body) != hlen:
            raise _fail("malformed extra field")
        if hid == 1:
            out: dict[str, int] = {}
            if len(body) < 8 * len(need):
                raise _fail("zip64 extra field too short")
            for i, key in enumerate(need):
                out[key] = struct.unpack_from("<Q", body, 8 * i)[0]
            return out
        pos += 4 + hlen
    if pos != len(extra):
        raise _fail("malformed extra field")
    if need:
        raise _fail("zip64 extra field missing")
    return {}


def read_zip_index(
    f: BinaryIO, *, expected: frozenset[str], max_sizes: dict[str, int]
) -> dict[str, ZipEntry]:
    """Index a container's entries strictly; :class:`InvalidContainer` on any defect.

    ``expected`` are the only names allowed (each exactly once); ``max_sizes``
    bounds each entry's size before anything of it is read.
    """
    f.seek(0, 2)
    file_size = f.tell()
    if file_size < _EOCD.size:
        raise _fail("too small to be a zip")
    # A ZTDF writer never adds an archive comment: the end record is the last 22 bytes.
    eocd = _read_at(f, file_size - _EOCD.size, _EOCD.size)
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _EOCD.unpack(eocd)
    if sig != _EOCD_SIG or comment_len != 0:
        raise _fail("end of central directory not at the end of the file")
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise _fail("multi-disk archives are not supported")
    end_of_cd = file_size - _EOCD.size
    if cd_offset == _Z64_MAGIC or n_total == 0xFFFF or cd_size == _Z64_MAGIC:
        if end_of_cd < _Z64_LOC.size + _Z64_EOCD.size:
            raise _fail("zip64 locator missing")
        loc_sig, loc_disk, z64_at, disks = _Z64_LOC.unpack(
            _read_at(f, end_of_cd - _Z64_LOC.size, _Z64_LOC.size)
        )
        if loc_sig != _Z64_LOC_SIG or loc_disk != 0 or disks != 1:
            raise _fail("bad zip64 locator")
        if z64_at != end_of_cd - _Z64_LOC.size - _Z64_EOCD.size:
            raise _fail("zip64 end record not where expected")
        rec = _Z64_EOCD.unpack(_read_at(f, z64_at, _Z64_EOCD.size))
        if rec[0] != _Z64_EOCD_SIG or rec[4] != 0 or rec[5] != 0 or rec[6] != rec[7]:
            raise _fail("bad zip64 end record")
        n_total, cd_size, cd_offset = rec[7], rec[8], rec[9]
        end_of_cd = z64_at
    if n_total > MAX_ENTRIES:
        raise _fail("too many entries")
    if cd_offset + cd_size != end_of_cd:
        raise _fail("central directory size or offset inconsistent")
    if cd_size > 64 * 1024:
        raise _fail("central directory too large")
    cd = _read_at(f, cd_offset, cd_size)
    entries: dict[str, ZipEntry] = {}
    spans: list[tuple[int, int]] = []
    pos = 0
    for _ in range(n_total):
        if pos + _CD.size > len(cd):
            raise _fail("central directory truncated")
        (
            sig,
            _made,
            _need,
            flags,
            method,
            _t,
            _d,
            crc,
            csize,
            usize,
            nlen,
            xlen,
            clen,
            disk_start,
            _ia,
            _ea,
            loffset,
        ) = _CD.unpack_from(cd, pos)
        if sig != _CD_SIG:
            raise _fail("bad central directory signature")
        pos += _CD.size
        raw_name = cd[pos : pos + nlen]
        extra = cd[pos + nlen : pos + nlen + xlen]
        pos += nlen + xlen + clen
        if pos > len(cd):
            raise _fail("central directory truncated")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise _fail("non-ASCII entry name") from None
        if name not in expected:
            raise _fail(f"unexpected entry {name!r}")
        if name in entries:
            raise _fail(f"duplicate entry {name!r}")
        if method != 0:
            raise _fail("compressed entry (only stored entries are allowed)")
        if flags & 0x01 or flags & 0x40:
            raise _fail("encrypted zip entry")
        if disk_start != 0:
            raise _fail("multi-disk archives are not supported")
        need = [
            k
            for k, v in (("usize", usize), ("csize", csize), ("loffset", loffset))
            if v == _Z64_MAGIC
        ]
        z64 = _zip64_extra(extra, need)
        usize = z64.get("usize", usize)
        csize = z64.get("csize", csize)
        loffset = z64.get("loffset", loffset)
        if csize != usize:
            raise _fail("stored entry sizes disagree")
        if usize > max_sizes.get(name, 0):
            raise _fail(f"entry {name!r} too large")
        local = _read_at(f, loffset, _LOCAL.size)
        lsig, _v, lflags, lmethod, _lt, _ld, _lcrc, _lcs, _lus, lnlen, lxlen = _LOCAL.unpack(local)
        if lsig != _LOCAL_SIG or lmethod != 0 or (lflags & 0x41):
            raise _fail("bad local file header")
        if _read_at(f, loffset + _LOCAL.size, lnlen) != raw_name:
            raise _fail("local and central names differ")
        data_offset = loffset + _LOCAL.size + lnlen + lxlen
        data_end = data_offset + usize
        if data_end > cd_offset:
            raise _fail("entry data overlaps the central directory")
        spans.append((loffset, data_end))
        entries[name] = ZipEntry(name=name, data_offset=data_offset, size=usize, crc=crc)
    if pos != len(cd):
        raise _fail("junk in the central directory")
    spans.sort()
    for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
        if b0 < a1:
            raise _fail("overlapping entries")
    if set(entries) != expected:
        raise _fail("missing entries")
    return entries
