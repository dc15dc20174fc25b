"""The file ``forum backup`` writes and ``forum restore`` reads (events/backup.py).

One gzip stream: ``MAGIC``, then frames, each a kind byte, a 4-byte big-endian length and
that many bytes:

    M  the manifest (JSON, ``Manifest``): format, schema version, the tables (name,
       columns, rows) and the sequences
    T  a table's rows begin: its name
    D  its rows, in PostgreSQL's text COPY format (as pg_dump writes them); any number
    E  the table's rows end: how many there were
    Z  the end of the backup

Frames are bounded in size, so neither side holds more than one in memory. Every way a
file can be damaged (not gzip, truncated, a changed byte, frames out of order) is a
``BackupError`` that says what the file is; gzip's CRC is checked by reading to the end.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec

MAGIC = b"forum backup\n"
FORMAT = 1
_HEADER = struct.Struct(">cI")
_LIMITS = {b"M": 16 << 20, b"T": 256, b"D": 16 << 20, b"E": 32, b"Z": 0}
_CHUNK = 256 << 10  # rows are written in frames of about this many bytes

Progress = Callable[[int, int], None]  # rows done so far, out of how many


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why, for the operator."""


class TableInfo(msgspec.Struct, frozen=True):
    name: str
    columns: list[str]
    rows: int


class SequenceInfo(msgspec.Struct, frozen=True):
    name: str
    last_value: int
    is_called: bool


class Manifest(msgspec.Struct, frozen=True):
    format: int
    schema_version: int
    created_at: datetime
    server_version: str
    tables: list[TableInfo]
    sequences: list[SequenceInfo]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def count(self, table: str) -> int:
        return next((t.rows for t in self.tables if t.name == table), 0)


class Writer:
    """Frames into a gzip stream; COPY's rows gathered into frames of about _CHUNK bytes."""

    def __init__(self, out: gzip.GzipFile, on_rows: Progress, total: int) -> None:
        self._out = out
        self._on_rows = on_rows
        self._total = total
        self._rows = bytearray()
        self._done = 0
        self._out.write(MAGIC)

    def frame(self, kind: bytes, payload: bytes) -> None:
        self._out.write(_HEADER.pack(kind, len(payload)))
        self._out.write(payload)

    async def rows(self, chunk: bytes) -> None:
        self._rows += chunk
        # Text COPY escapes newlines inside values: one newline is one row.
        self._done += chunk.count(b"\n")
        if len(self._rows) >= _CHUNK:
            self._flush()

    def end_rows(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._rows:
            self.frame(b"D", bytes(self._rows))
            self._rows.clear()
            self._on_rows(self._done, self._total)


class Reader:
    """Frames read back from a backup file; every way a file can be damaged is a
    BackupError that says what the file is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ended = b""
        try:
            self._in = gzip.GzipFile(path, "rb")
        except OSError as error:
            raise BackupError(f"cannot read {path}: {error.strerror or error}") from error
        try:
            if self._read(len(MAGIC), first=True) != MAGIC:
                raise BackupError(f"{path} is not a forum backup")
            kind, payload = self.frame()
            if kind != b"M":
                raise BackupError(f"{path} is corrupt: it has no manifest")
            try:
                self.manifest = msgspec.json.decode(payload, type=Manifest)
            except msgspec.DecodeError as error:
                raise BackupError(f"{path} is corrupt: its manifest: {error}") from error
            if self.manifest.format != FORMAT:
                raise BackupError(f"{path} is a backup in format {self.manifest.format}; "
                                  f"this forum reads format {FORMAT}")
        except BaseException:
            self._in.close()
            raise

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._in.close()

    def frame(self) -> tuple[bytes, bytes]:
        kind, length = _HEADER.unpack(self._read(_HEADER.size))
        if kind not in _LIMITS or length > _LIMITS[kind]:
            raise BackupError(f"{self.path} is corrupt: an unknown or oversized frame")
        return kind, self._read(length)

    def expect_end(self) -> None:
        if self._read(1, end=True):  # reading on to the end checks gzip's CRC and length
            raise BackupError(f"{self.path} is corrupt: it goes on after its end")

    def _read(self, size: int, *, first: bool = False, end: bool = False) -> bytes:
        try:
            data = self._in.read(size)
        except gzip.BadGzipFile as error:
            what = "is not a forum backup" if first else "is corrupt"
            raise BackupError(f"{self.path} {what} ({error})") from error
        except EOFError as error:
            raise BackupError(f"{self.path} is truncated: it ends before the backup "
                              "does") from error
        except (zlib.error, OSError) as error:
            raise BackupError(f"{self.path} is corrupt ({error})") from error
        if len(data) < size and not end:
            raise BackupError(f"{self.path} is truncated: it ends before the backup does"
                              if not first else f"{self.path} is not a forum backup")
        return data


def read_manifest(path: Path) -> Manifest:
    """The backup's manifest (a first look at the file: is it a backup at all?)."""
    with Reader(path) as reader:
        return reader.manifest
