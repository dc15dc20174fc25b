"""A Redis connection of the commit's own: packed commands out, hiredis replies in.

A commit sends a transaction of hundreds of commands in one write and reads as many
replies (workers/commit.py). redis-py's per-reply path costs ~7 us a reply, so this
connection packs with workers/resp.py and parses with hiredis itself.

It connects where the app's redis-py client does, with the same settings. redis-py has
already parsed them (the URL and the client's arguments): an unconnected connection made
by the client's pool (``ConnectionPool.make_connection``, public API) holds the result in
public attributes: host and port or unix socket path, the TLS context of a ``rediss://``
URL, username and password (or a credential provider), db, client name, timeouts. It is
made once per pool (redis-py's constructor costs ~0.7 ms, more than connecting). A
link released in a clean state waits for the next ``open`` (one per pool), so that a
worker's passes do not each connect anew (~0.5 ms, and a socket left in TIME_WAIT). Errors
are redis-py's, as its own connections raise them: ``TimeoutError`` for a timeout,
``ConnectionError`` for a lost or refused connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from weakref import WeakKeyDictionary

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers.resp import Command, pack

_NOT_YET = False  # what hiredis.Reader.gets() answers until a whole reply is in



class _Home:
    """What is kept per redis-py pool: an unconnected connection of it, read for its
    settings only, and the link released last."""

    def __init__(self, like: AbstractConnection) -> None:
        self.like = like
        self.idle: RedisLink | None = None


_HOMES: WeakKeyDictionary[ConnectionPool, _Home] = WeakKeyDictionary()


def _home(redis: Redis) -> _Home:
    pool = redis.connection_pool
    home = _HOMES.get(pool)
    if home is None:
        home = _HOMES[pool] = _Home(pool.make_connection())  # type: ignore[no-untyped-call]
    return home


class RedisLink:
    """One open connection; ``exchange`` at a time (not for concurrent use)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float | None) -> None:
        self._stream = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._timeout = timeout
        self._replies = hiredis.Reader()
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, redis: Redis) -> RedisLink:
        """A connection to ``redis``'s server, authenticated and on its db: the one
        released last if it is still open, else a new one."""
        home = _home(redis)
        idle, home.idle = home.idle, None
        if idle is not None and idle._loop is asyncio.get_running_loop():
            if idle._usable():
                return idle
            await idle.close()
        like = home.like
        connect_timeout = like.socket_connect_timeout or like.socket_timeout
        try:
            async with asyncio.timeout(connect_timeout):
                if isinstance(like, UnixDomainSocketConnection):
                    reader, writer = await asyncio.open_unix_connection(like.path)
                elif isinstance(like, Connection):
                    tls = like.ssl_context.get() if isinstance(like, SSLConnection) else None
                    reader, writer = await asyncio.open_connection(like.host, like.port, ssl=tls)
                else:
                    raise RedisConnectionError(f"cannot connect like a {type(like).__name__}")
        except TimeoutError as error:
            raise RedisTimeoutError("Timeout connecting to Redis") from error
        except OSError as error:
            raise RedisConnectionError(f"Error connecting to Redis: {error}") from error
        link = cls(reader, writer, like.socket_timeout)
        handshake: list[Command] = []
        if like.credential_provider is not None:
            handshake.append(("AUTH", *like.credential_provider.get_credentials()))
        elif like.password:
            handshake.append(("AUTH", *filter(None, (like.username, like.password))))
        if like.client_name:
            handshake.append(("CLIENT", "SETNAME", like.client_name))
        if like.db:
            handshake.append(("SELECT", str(like.db)))
        try:
            replies = await link.exchange(handshake) if handshake else []
            for command, reply in zip(handshake, replies, strict=True):
                if isinstance(reply, hiredis.ReplyError):
                    refused = AuthenticationError if command[0] == "AUTH" else ResponseError
                    raise refused(str(reply))
        except BaseException:
            await link.close()
            raise
        return link

    @property
    def closed(self) -> bool:
        return self._writer is None

    def _usable(self) -> bool:
        # A server that closed the connection meanwhile has been read as the stream's end.
        writer = self._writer
        return writer is not None and not writer.is_closing() and not self._stream.at_eof()

    async def release(self, redis: Redis) -> None:
        """Done with: kept for ``redis``'s next ``open`` if none is kept yet, else
        closed. Only a link between exchanges, watching nothing, may be released."""
        home = _home(redis)
        if home.idle is None and self._usable():
            home.idle = self
        else:
            await self.close()

    async def exchange(self, commands: list[Command]) -> list[Any]:
        """Send ``commands`` in one write and read one reply each (a refused command's
        reply is a ``hiredis.ReplyError``). An exchange that raised or was cancelled
        left the connection in an unknown state: it is closed then."""
        writer, stream = self._writer, self._stream
        if writer is None:
            raise RedisConnectionError("the Redis connection is closed")
        try:
            writer.write(pack(commands))
            async with asyncio.timeout(self._timeout):
                await writer.drain()
                replies: list[Any] = []
                reader = self._replies
                while len(replies) < len(commands):
                    reply = reader.gets()
                    if reply is _NOT_YET:
                        data = await stream.read(1 << 16)
                        if not data:
                            raise ConnectionError("Redis closed the connection")
                        reader.feed(data)
                        continue
                    replies.append(reply)
        except TimeoutError as error:  # as redis-py reports them, for its callers' sake
            self._drop()
            raise RedisTimeoutError("Timeout exchanging with Redis") from error
        except OSError as error:
            self._drop()
            raise RedisConnectionError(f"Error exchanging with Redis: {error}") from error
        except BaseException:  # cancelled, mostly
            self._drop()
            raise
        return replies

    def _drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._drop()
        with contextlib.suppress(OSError):  # already reset by the server: closed anyway
            await writer.wait_closed()
