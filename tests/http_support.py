"""Loopback servers for the HTTP layer's boundary tests.

* :class:`Silent` (fixture ``silent``): accepts connections, records what arrives, never
  answers. As a "foreign" host it proves that nothing reached it; as a vendor it hangs.
* :class:`RewritingFotoware`: the Fotoware simulator with byte replacements applied to its
  answers, to make it name links elsewhere (paging, descriptor, order hrefs).
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from ordersync_adapters.fotoware.simulator import FotowareSimulator


class Silent:
    """A TCP listener on loopback that counts connections and never says a word."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            while chunk := await reader.read(65536):
                self.received += chunk
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    async def stop(self) -> None:
        for writer in list(self._open):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent():
    """A running :class:`Silent` server, ``.base_url`` set."""
    server = Silent()
    server.base_url = await server.start()
    yield server
    await server.stop()


class RewritingFotoware(FotowareSimulator):
    """A Fotoware simulator whose answers have ``rewrites`` (old bytes -> new) applied."""

    def __init__(self, *, rewrites: list[tuple[bytes, bytes]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rewrites = list(rewrites or [])

    async def _answer(self, request: web.Request, handler) -> web.StreamResponse:
        response = await super()._answer(request, handler)
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            body = response.body
            for old, new in self.rewrites:
                body = body.replace(old, new)
            response.body = body
        return response
