"""The monitoring endpoint of `liqbot run`: `GET /healthz` and `GET /metrics` on
`[ops] http_host:http_port` (aiohttp, which discord.py already brings).

- `/healthz`: 200 when healthy, 503 when not, with a JSON body
  `{"healthy": true, "role": "leader", "detail": "healthy: the database answers; ..."}`
  (the rule is bot.services.health's `live_health`).
- `/metrics`: Prometheus text format, or OpenMetrics when the scraper asks for it
  (bot.services.metrics names every series).

Run it supervised: a port already taken is one error line and a retry, never a
reason for the bot itself to stop answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.services.health import Health
from bot.services.leadership import Leadership
from bot.services.metrics import Metrics

log = logging.getLogger(__name__)


class OpsServer:
    def __init__(
        self, host: str, port: int, health: Callable[[], Awaitable[Health]], leadership: Leadership, metrics: Metrics
    ) -> None:
        self._host = host
        self._port = port
        self._health = health
        self._leadership = leadership
        self._metrics = metrics

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def run(self) -> None:
        """Serve until cancelled."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None)  # a scrape every 15 s is not worth a log line
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
            log.info("ops: /healthz and /metrics on %s", self.url)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        health = await self._health()
        body = {"healthy": health.ok, "role": self._leadership.role, "detail": health.line}
        return web.json_response(body, status=200 if health.ok else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        try:
            await self._metrics.refresh()
        except Exception:  # the database is away: /healthz says so; the page still serves the rest
            log.warning("metrics: the outbox backlog could not be read", exc_info=True)
        body, content_type = self._metrics.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})
