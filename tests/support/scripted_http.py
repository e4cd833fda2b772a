"""A scripted HTTP server: answers each request with the next scripted response and records what it got.

Used only where a real server cannot be made to misbehave, or cannot be installed (InfluxDB 2.x).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web


@dataclass
class Reply:
    status: int = 204
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer this late
    release: asyncio.Event | None = None  # answer only once this is set: a server stalled until the test says


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ScriptedHttpServer:
    def __init__(self, replies: list[Reply], port: int = 0) -> None:
        self._replies = deque(replies)
        self.requests: list[Request] = []
        self._runner: web.AppRunner | None = None
        self.port = port  # 0: any free port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Request(request.method, request.path, dict(request.query), dict(request.headers), await request.read())
        )
        reply = self._replies.popleft() if self._replies else Reply(500, "script exhausted")
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.release is not None:
            await reply.release.wait()
        return web.Response(status=reply.status, text=reply.body or None, headers=reply.headers)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
