"""Commands in the Redis protocol (RESP), for workers/commit.py: one ``bytes`` for a whole
transaction. Pure and compiled (hatch_build.py): a rebuild packs about five arguments
per event, and hiredis's general-purpose packer cost 5,200 instructions per event, this
one 2,300 (a projected event costs about 15,000).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# A command: its name, key and arguments, text (sent as UTF-8) or bytes.
Command = tuple[str | bytes, ...]

_CRLF: Final = b"\r\n"
# Headers for the usual sizes, made once. Final: compiled, each read is then a C
# variable, not a lookup in the module's dict.
_COUNTS: Final = [f"*{n}\r\n".encode() for n in range(1024)]
_SIZES: Final = [f"${n}\r\n".encode() for n in range(1024)]


def pack(commands: Iterable[Command]) -> bytes:
    out: list[bytes] = []
    for command in commands:
        count = len(command)
        out.append(_COUNTS[count] if count < 1024 else f"*{count}\r\n".encode())
        for arg in command:
            data = arg.encode() if isinstance(arg, str) else arg
            size = len(data)
            out.append(_SIZES[size] if size < 1024 else f"${size}\r\n".encode())
            out.append(data)
            out.append(_CRLF)
    return b"".join(out)
