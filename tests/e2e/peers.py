"""The in-process app reached from chosen client addresses (limits and bans count the TCP
peer, which Litestar's test client fixes at "testclient")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from service.app import create_app
from service.settings import Settings


class Board:
    """One running app; ``peer(address)`` is an HTTP client whose TCP peer is ``address``."""

    def __init__(self, app: Litestar, exits: AsyncExitStack) -> None:
        self.app = app
        self._exits = exits

    async def peer(self, address: str, **headers: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return await self._exits.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers))


@asynccontextmanager
async def board(settings: Settings, **changes: Any) -> AsyncIterator[Board]:
    """The app with ``changes`` to the test's settings (e.g. ``rate_limits="on"``)."""
    app = create_app(msgspec.structs.replace(settings, **changes))
    async with AsyncExitStack() as exits:
        # The lifespan on this test's own loop (the test client would run it on another).
        await exits.enter_async_context(app.lifespan())
        yield Board(app, exits)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"].strip(), body
    return body


def retry_after(response: httpx.Response) -> int:
    """The refusal's Retry-After, checked to be whole seconds."""
    problem(response, 429)
    value = response.headers["retry-after"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)
