"""Upload bodies read as they arrive, never spooled in the clear.

Starlette's form parsing (``UploadFile``) spools a file above 1 MiB to a temporary
file: plaintext on disk, left there if the process dies. Upload routes therefore
parse the multipart body themselves, from the ASGI stream, with the same
``python-multipart`` parser Starlette uses underneath: form fields are kept in
memory (bounded), and the file part is handed chunk by chunk to an
:class:`relto.documents.Incoming`, which encrypts it at once. A chunk that would
complete a segment is written on a worker thread, so AES-GCM never runs on the
event loop; smaller ones are only copied into memory.

Size limits on the whole body are enforced before this runs (the console guard
refuses uploads without a length, or longer than the limit); the
:class:`~relto.documents.Incoming` refuses a file beyond the node's limit too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from relto.documents import Incoming
from relto.errors import InvalidInput

__all__ = ["UPLOAD_BODY", "InMemoryFile", "UploadForm", "read_upload"]

#: At most this many form fields besides the file, and this many bytes in all of them.
MAX_FIELDS: Final = 64
MAX_FIELD_BYTES: Final = 64 * 1024
_BAD = "the upload must be a multipart form with one file"

#: The OpenAPI description of an upload body (the route reads the stream itself).
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["title", "project_id", "classification", "file"],
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "project_id": {"type": "string", "maxLength": 63},
                    "classification": {"type": "string", "maxLength": 60},
                    "rel_to": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 3},
                        "maxItems": 50,
                    },
                    "custody": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 4},
                        "maxItems": 8,
                    },
                    "file": {"type": "string", "format": "binary"},
                },
            }
        }
    },
}


@dataclass
class UploadForm:
    """The form fields of an upload (the file went to the :class:`Incoming`)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str = ""
    content_type: str = ""
    has_file: bool = False

    def one(self, name: str, *, max_length: int, default: str | None = None) -> str:
        """The single value of ``name``; :class:`InvalidInput` when absent or too long."""
        values = self.fields.get(name)
        if not values:
            if default is not None:
                return default
            raise InvalidInput(f"the form lacks {name!r}")
        if len(values[0]) > max_length:
            raise InvalidInput(f"{name!r} is longer than {max_length} characters")
        return values[0]

    def many(self, name: str, *, max_items: int, max_length: int) -> list[str]:
        values = self.fields.get(name, [])
        if len(values) > max_items or any(len(v) > max_length for v in values):
            raise InvalidInput(f"{name!r}: at most {max_items} values of {max_length} characters")
        return values


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


class _Collector:
    """python-multipart callbacks: fields to memory, file bytes to ``pending``."""

    def __init__(self, form: UploadForm, file_field: str) -> None:
        self.form = form
        self.file_field = file_field
        self.part = _Part()
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.pending = bytearray()
        self.field_bytes = 0
        self.count = 0
        self.ended = False

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(
            self.part.headers.get(b"content-disposition", b"")
        )
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidInput(_BAD)
        self.part.name = options[b"name"].decode("utf-8", "replace")
        self.count += 1
        if self.count > MAX_FIELDS + 1:
            raise InvalidInput(f"at most {MAX_FIELDS} form fields")
        if b"filename" in options:
            if self.part.name != self.file_field or self.form.has_file:
                raise InvalidInput(_BAD)
            self.part.is_file = True
            self.form.has_file = True
            self.form.filename = options[b"filename"].decode("utf-8", "replace")[:400]
            self.form.content_type = self.part.headers.get(b"content-type", b"").decode("latin-1")[
                :100
            ]

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.pending += data[start:end]
            return
        self.field_bytes += end - start
        if self.field_bytes > MAX_FIELD_BYTES:
            raise InvalidInput(f"the form fields exceed {MAX_FIELD_BYTES} bytes")
        self.part.value += data[start:end]

    def on_part_end(self) -> None:
        if self.part.is_file:
            return
        try:
            value = self.part.value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{self.part.name[:40]!r} is not UTF-8") from None
        self.form.fields.setdefault(self.part.name, []).append(value)

    def on_end(self) -> None:
        self.ended = True


class InMemoryFile:
    """Where :func:`read_upload` puts a file that is not a document to protect (a
    leaked file to trace): memory, at most ``limit`` bytes, never disk."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()

    def room(self) -> int:
        return max(0, self._limit - len(self._data)) + 1

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if len(self._data) + len(chunk) > self._limit:
            raise InvalidInput(f"the file is larger than {self._limit} bytes")
        self._data += chunk

    def getvalue(self) -> bytes:
        return bytes(self._data)


async def read_upload(
    request: Request, incoming: Incoming | InMemoryFile, *, file_field: str = "file"
) -> UploadForm:
    """Parse ``request``'s multipart body as it arrives: fields into the returned
    form, the file's bytes into ``incoming`` (encrypted there at once, or kept in
    memory by an :class:`InMemoryFile`)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidInput(_BAD)
    form = UploadForm()
    collector = _Collector(form, file_field)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except FormParserError:
            raise InvalidInput(_BAD) from None
        if collector.pending:
            data, collector.pending = bytes(collector.pending), bytearray()
            if len(data) < incoming.room():
                incoming.write(data)  # a copy into memory: fine on the loop
            else:
                await run_in_threadpool(incoming.write, data)  # encrypts a segment
    try:
        parser.finalize()
    except FormParserError:
        raise InvalidInput(_BAD) from None
    if not collector.ended or not form.has_file:
        raise InvalidInput(_BAD)
    return form
