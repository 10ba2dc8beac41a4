"""One venue of the registry alone, end to end: `LiveFeeds` running it against
loopback fakes of each of its streams (every other venue disabled), and a
recording replayed twice into a store; or both at once, the recording made by
`liqbot record` (`live_and_recorded`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.config import FeedsConfig
from bot.core.models import LiquidationEvent, Window
from bot.feeds.venues import BY_NAME
from bot.services.ingest import ReplayReport, replay
from bot.services.live import LiveFeeds
from bot.services.recorder import record
from bot.storage.store import Store
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest
from tests.fakes.venue_ws import FakeVenueServer, VirtualClock
from tests.support import until

EVERYTHING = Window(0, 4_000_000_000_000)


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


@dataclass
class RoundTrip:
    recording: Path
    servers: dict[str, FakeVenueServer]  # stream -> its fake (stopped)
    live: list[LiquidationEvent]  # what LiveFeeds stored
    live_bad_frames: int  # malformed frames the live runners counted (and skipped)
    replay_bad_lines: int  # the same, counted by the replay
    replayed: list[LiquidationEvent]  # what replaying the recording stored
    replayed_again: int  # events a second replay stored


async def stored_events(store: Store) -> list[LiquidationEvent]:
    return sorted(await store.largest(None, EVERYTHING, 1_000_000))


async def live_and_recorded(
    store: Store, tmp_path: Path, venue: str, frames: dict[str, list], expected_events: int,
    rest: FakeVenueRest | None = None,
) -> RoundTrip:
    """`venue` alone, LiveFeeds into `store` and `record` to a file at once (two
    connections per stream), `frames` (stream -> frames) broadcast to both; then
    the recording replayed into a fresh store, twice (the first replay must price
    everything it decodes). Returns once both clients of every stream also kept
    their connection alive as the venue asks (app-level pings, or answers to the
    venue's). A malformed frame among `frames` goes first: it is then counted
    before the events that end the wait."""
    clock = VirtualClock(100)
    rest = rest or FakeVenueRest()
    servers = {spec.name: FakeVenueServer(venue, spec.name) for spec in BY_NAME[venue].STREAMS}
    out = tmp_path / f"{venue}.jsonl"
    reports: list = []
    try:
        for server in servers.values():
            await server.start()
        async with rest.client() as http:
            config = only(venue, {name: server.url for name, server in servers.items()})
            feeds = LiveFeeds(config, store, http, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=0.5)
            tasks = [
                asyncio.create_task(feeds.run()),
                asyncio.create_task(record(config, out, None, http=http, now_ms=clock.now_ms, sleep=clock.sleep,
                                           tick_s=0.5, progress=reports.append)),
            ]
            try:
                for server in servers.values():
                    await server.wait_for(lambda s: s.subscribed_connections() == 2)
                for stream, stream_frames in frames.items():
                    for frame in stream_frames:
                        assert await servers[stream].broadcast(frame) == 2
                await until(lambda: feeds.ingest.stats.events_received == expected_events)
                await until(lambda: bool(reports) and reports[-1].events == expected_events)
                await until(lambda: all(server.app_pings >= 2 for server in servers.values()))
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            live_bad_frames = sum(status.bad_frames for status in feeds.statuses())
    finally:
        for server in servers.values():
            await server.stop()
    replayed_store = await Store.open(tmp_path / f"{venue}-replayed.sqlite")
    try:
        first = await replay(replayed_store, [out])
        assert first.decode.unpriced_events == 0
        second = await replay(replayed_store, [out])
        replayed = await stored_events(replayed_store)
    finally:
        await replayed_store.close()
    return RoundTrip(
        out, servers, await stored_events(store), live_bad_frames, first.decode.bad_lines, replayed, second.stored
    )
