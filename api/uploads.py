"""Streaming multipart uploads with a hard size cap.

FastAPI's ``UploadFile`` parses the whole body before the handler runs, so a cap
checked there comes too late: a client could send gigabytes first. Here the raw
body is read chunk by chunk, fed to python-multipart's push parser, and the file
part goes straight to disk. The moment the body passes the cap the upload stops
with 413; memory stays bounded by one chunk whatever the size.
"""

from __future__ import annotations

import asyncio
import errno
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request, status
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from api.deps import OUT_OF_SPACE, RETRY_LATER

_MAX_FIELD_BYTES = 4096  # plain form fields (dataset_name, scene_name) are short
_MAX_BOUNDARY = 70  # RFC 2046: a boundary is 1 to 70 characters
_MAX_PARTS = 8  # the file plus a few text fields; more is not a client of this API


def multipart_openapi(**text_fields: str) -> dict:
    """OpenAPI ``requestBody`` of a streamed upload: the ZIP in ``file`` plus text fields
    (name -> default). The route reads the raw body itself, so FastAPI cannot infer it."""
    properties: dict = {"file": {"type": "string", "format": "binary"}}
    for name, default in text_fields.items():
        properties[name] = {"type": "string", "default": default}
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


@dataclass
class ParsedUpload:
    """The file part written to ``path`` plus the plain text fields."""

    path: Path | None = None
    filename: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _Collector:
    """python-multipart callbacks: one file part to disk, small fields to memory."""

    def __init__(self, file_field: str, spool_dir: Path) -> None:
        self.file_field = file_field
        self.spool_dir = spool_dir
        self.result = ParsedUpload()
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._fh = None
        self._parts = 0

    # -- header parsing
    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "too many form fields")
        self._headers = {}
        self._header_field = b""
        self._name, self._is_file, self._value = None, False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self._header_field.lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self._header_field = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        self._is_file = b"filename" in params and name == self.file_field
        if self._is_file:
            if self.result.path is not None:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "send exactly one file")
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.spool_dir)
            self._fh = os.fdopen(fd, "wb")
            self.result.path = Path(tmp)
            self.result.filename = params[b"filename"].decode("utf-8", "replace")

    # -- body
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file and self._fh is not None:
            self._fh.write(chunk)
            self.result.size += len(chunk)
        else:
            self._value += chunk
            if len(self._value) > _MAX_FIELD_BYTES:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"field {self._name!r} too long")

    def on_part_end(self) -> None:
        if self._is_file and self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self._name:
            self.result.fields[self._name] = self._value.decode("utf-8", "replace")

    def callbacks(self) -> dict:
        names = (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
        return {name: getattr(self, name) for name in names}

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"upload exceeds the limit of {limit} bytes",
    )


def storage_error(exc: OSError) -> HTTPException:
    """The server's disk, not the client's body: 507 for a full disk or quota, else 503."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, OUT_OF_SPACE, RETRY_LATER)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, "the upload could not be stored", RETRY_LATER
    )


async def _chunks(request: Request, read_timeout: float) -> AsyncIterator[bytes]:
    """The body's chunks; 408 when the client sends nothing for ``read_timeout`` seconds
    (a client that declares megabytes and goes silent must not hold its socket and spool
    file for ever)."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), read_timeout)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise HTTPException(
                status.HTTP_408_REQUEST_TIMEOUT,
                f"the upload stalled: no data for {read_timeout:g} s",
                {"Connection": "close"},
            ) from None
        yield chunk


async def receive_upload(
    request: Request,
    spool_dir: Path,
    max_bytes: int,
    file_field: str = "file",
    read_timeout: float = 30.0,
) -> ParsedUpload:
    """Stream a ``multipart/form-data`` body to ``spool_dir``; 413 past ``max_bytes``, 408
    when the body stalls for ``read_timeout`` seconds, 507 when the disk is full.

    The cap counts the whole body, so it holds however the parts are arranged.
    On any error the partial file is removed.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "expected multipart/form-data")
    if not 0 < len(params[b"boundary"]) <= _MAX_BOUNDARY:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"malformed multipart boundary (1 to {_MAX_BOUNDARY} characters)",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)  # refused before reading a byte
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc) from exc
    collector = _Collector(file_field, spool_dir)
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    received = 0
    try:
        async for chunk in _chunks(request, read_timeout):
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except HTTPException:
        collector.close()
        collector.result.discard()
        raise
    except OSError as exc:  # writing the spool file: the server's fault, not the body's
        collector.close()
        collector.result.discard()
        raise storage_error(exc) from exc
    except Exception as exc:  # malformed multipart bodies from python-multipart
        collector.close()
        collector.result.discard()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "malformed multipart body") from exc
    collector.close()
    if collector.result.path is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"missing file field {file_field!r}")
    return collector.result
