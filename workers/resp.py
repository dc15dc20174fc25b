"""Commands in the Redis protocol (RESP), for workers/commit.py: one ``bytes`` for a whole
transaction. Pure and compiled (workers/native.py): a rebuild packs several arguments per
event, and hiredis's packer, general-purpose, cost four times what projecting an event
costs.
"""

from __future__ import annotations

from collections.abc import Iterable

# A command: its name, key and arguments, text (sent as UTF-8) or bytes.
Command = tuple[str | bytes, ...]

_CRLF = b"\r\n"
# Headers for the usual sizes, made once.
_COUNTS = [f"*{n}\r\n".encode() for n in range(1024)]
_SIZES = [f"${n}\r\n".encode() for n in range(1024)]


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
