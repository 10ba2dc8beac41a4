"""One venue of the registry alone, end to end: `LiveFeeds` running it against
loopback fakes of each of its streams (every other venue disabled), and a
recording replayed twice into a store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bot.config import FeedsConfig
from bot.feeds.venues import BY_NAME
from bot.services.ingest import ReplayReport, replay
from bot.services.live import LiveFeeds
from bot.storage.store import Store
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest
from tests.fakes.venue_ws import FakeVenueServer, VirtualClock


def only(venue: str, ws_urls: dict[str, str], rest_url: str = REST_BASE) -> FeedsConfig:
    """The default feeds config with only `venue` enabled: its streams at
    `ws_urls` (stream -> URL), each of its REST URLs at `rest_url`."""
    config = FeedsConfig()
    module = BY_NAME[venue]
    sections = {name: dataclasses.replace(getattr(config, name), enabled=False) for name in BY_NAME}
    urls = {spec.url_key: ws_urls[spec.name] for spec in module.STREAMS}
    urls.update({key: rest_url for key in module.REST_URLS})
    sections[venue] = dataclasses.replace(getattr(config, venue), enabled=True, **urls)
    return dataclasses.replace(config, **sections)


@contextlib.asynccontextmanager
async def running_alone(
    store: Store, venue: str, rest: FakeVenueRest, clock: VirtualClock, **server_options: object
) -> AsyncIterator[tuple[LiveFeeds, dict[str, FakeVenueServer]]]:
    """`LiveFeeds` of `venue` alone, one fake server per stream (name -> server);
    on exit the feeds are cancelled, which writes what is pending."""
    servers = {spec.name: FakeVenueServer(venue, spec.name, **server_options) for spec in BY_NAME[venue].STREAMS}
    async with contextlib.AsyncExitStack() as stack:
        for server in servers.values():
            await stack.enter_async_context(server)
        http = await stack.enter_async_context(rest.client())
        config = only(venue, {name: server.url for name, server in servers.items()})
        feeds = LiveFeeds(config, store, http, now_ms=clock.now_ms, sleep=clock.quiet_sleep, tick_s=0.5)
        task = asyncio.create_task(feeds.run())
        try:
            yield feeds, servers
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def replayed_twice(store: Store, tmp_path: Path, lines: Sequence[str]) -> tuple[ReplayReport, ReplayReport]:
    """The reports of replaying a recording of `lines` into `store`, twice."""
    recording = tmp_path / "recording.jsonl"
    recording.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return await replay(store, [recording]), await replay(store, [recording])
