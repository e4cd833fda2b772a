"""The operator's HTTP surface: Prometheus ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness).

==========  ===========================================================================================
GET path    answer
==========  ===========================================================================================
/metrics    the registry in the Prometheus text format
/healthz    200 ``{"status": "alive", "loops": {...}}``; 503 ``{"status": "stale", ...}`` when a loop hangs
/readyz     200 with :meth:`Health.snapshot`; 503 with the same JSON while a check is failing
(extra)     each ``extra_routes`` callable's result as JSON; 500 ``{"error": "<exception type> ..."}`` if it raises
==========  ===========================================================================================

It listens on 127.0.0.1 unless told otherwise: nothing here is authenticated. Requests are not access-logged
(a scraper every few seconds would drown the log).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edgegen.gateway.health import Health

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
BUILTIN_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})

Route = Callable[[], Awaitable[object] | object]

_dumps = partial(json.dumps, default=str)  # datetimes, paths, ... as text rather than a 500


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


class OperatorServer:
    """An aiohttp server for the operator endpoints; ``await start()`` ... ``await stop()`` or ``async with``."""

    def __init__(
        self,
        health: Health,
        registry: CollectorRegistry,
        host: str = DEFAULT_HOST,
        port: int = 0,
        extra_routes: Mapping[str, Route] | None = None,
    ) -> None:
        extra_routes = dict(extra_routes or {})
        for path in extra_routes:
            if not path.startswith("/"):
                raise ValueError(f"route {path!r} must start with '/'")
            if path in BUILTIN_PATHS:
                raise ValueError(f"route {path} is built in")
        self.health = health
        self.registry = registry
        self.host = host
        self._requested_port = port
        self._extra_routes = extra_routes
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port bound (the one picked when constructed with port 0); only while started."""
        if self._port is None:
            raise RuntimeError("the operator server is not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        for path, route in self._extra_routes.items():
            app.router.add_get(path, partial(self._extra, path, route))
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the operator server is already started")
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("operator endpoints on %s (/metrics, /healthz, /readyz)", self.url)

    async def stop(self) -> None:
        """Close the listener and finish in-flight requests; a no-op when not started."""
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OperatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers ----------------------------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        # content_type= refuses a charset parameter; CONTENT_TYPE_LATEST carries one.
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health.liveness()
        return _json(report, 200 if report["status"] == "alive" else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        report = self.health.snapshot()
        return _json(report, 200 if report["status"] == "ready" else 503)

    async def _extra(self, path: str, route: Route, request: web.Request) -> web.Response:
        try:
            result: Any = route()
            if inspect.isawaitable(result):
                result = await result
            return _json(result)
        except Exception as exc:
            log.exception("operator route %s failed", path)
            # the type only: an exception's text may carry what the log's redaction would have caught
            return _json({"error": f"{type(exc).__name__} (details in the gateway log)"}, 500)
