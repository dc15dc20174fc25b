"""uvicorn's httptools protocol with a bound on the request head: beyond 16 KiB in all the
request is refused with 431 and the connection closed.

uvicorn with httptools has no such limit: a 64 MiB header is read in full (httptools joins
its pieces with ``bytes +=``, quadratic copying) and grows the process by twice that. An
ASGI middleware is too late (the server has buffered the head before it calls the app),
and h11's ``h11_max_incomplete_event_size`` answers 400, not 431. So the check sits here,
in the two places that see the head: every chunk fed to the parser while a head is
incomplete is counted (the parser holds at most the limit plus one socket read), and a
head that completes within one chunk is measured exactly when its headers are complete.
Pipelined requests before the refused one are answered first, in order.
``forum serve`` runs uvicorn with this class (service/cli.py); the cost for an ordinary
request is a counter and a sum over its headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.errors import PROBLEM, Problem

MAX_HEAD_BYTES = 16 * 1024  # request line and header fields, as sent
# After the refusal the rest of what the client sends is read and dropped for a moment:
# closing a socket with unread data sends a reset, which can destroy the 431 on its way.
LINGER_SECONDS = 1.0

_BODY = msgspec.json.encode(Problem(
    type="https://forum.example/problems/request-header-fields-too-large",
    title="Request Header Fields Too Large", status=431,
    detail=f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes in all",
))


class _Refused(Exception):  # noqa: N818 - a signal out of the parser callback, not an error
    """Stops the parser in the middle of a chunk once the head is refused."""


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the parser is inside a request line or headers
        self._head_bytes = 0  # bytes fed while in the head, from chunks after its first
        self._began_here = False  # a request began in the chunk being fed
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: drop what the client still sends
        self._began_here = False
        # HttpToolsProtocol.data_received, except that our own stop is not an invalid
        # request (no warning, no 400 after the 431).
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self._refused:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if not self._in_head:
            return
        # Still inside a head: count this chunk, unless the head began in it (then part of
        # it belonged to the request before; the exact check below still applies).
        if not self._began_here:
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._began_here = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        # "Name: value\r\n" per field, the request line with method and version, and the
        # blank line: the head as sent, to within a few bytes.
        size = len(self.url) + 16 + sum(len(name) + len(value) + 4
                                        for name, value in self.headers)
        if size > MAX_HEAD_BYTES or self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()
            raise _Refused  # httptools stops parsing this chunk
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refused and self._answered_before():
            self._send_431()

    def _answered_before(self) -> bool:
        """Whether every request before the refused one has its response (pipelining)."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _refuse(self) -> None:
        self._refused = True
        if self._answered_before():
            self._send_431()
        else:  # answer in order: after the requests before it (on_response_complete)
            self.flow.pause_reading()

    def _send_431(self) -> None:
        self._unset_keepalive_if_required()
        if self.transport.is_closing():
            return
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([
            b"content-type: ", PROBLEM.encode(), b"\r\n",
            b"content-length: ", str(len(_BODY)).encode(), b"\r\n",
            b"connection: close\r\n\r\n", _BODY,
        ])
        transport = self.transport
        transport.write(b"".join(content))
        if transport.can_write_eof():
            transport.write_eof()
            loop = asyncio.get_running_loop()
            loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()
