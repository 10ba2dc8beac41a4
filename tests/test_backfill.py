"""Backfill from a venue's REST history of liquidations (OKX liquidation-orders):
the documented body through the stream's parser, gaps filled once and shown as
backfilled, recordings that replay the same orders, refusals that stop nothing,
and no alert for an old order."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest

from bot.config import FeedsConfig
from bot.core.alerts import AlertRule, EngineSettings, RuleKind
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Side, Window
from bot.feeds.backfill import HistoryFetcher
from bot.feeds.contract import HistoryPage
from bot.feeds.errors import FrameError
from bot.feeds.marketdata import VenueError
from bot.feeds.settings import BackfillConfig
from bot.feeds.synthetic import LiquidationSpec, frame_for, okx_swap_instruments_body
from bot.feeds.venues import BY_NAME, okx
from bot.replies.compose import status_reply
from bot.replies.render_plain import render_plain
from bot.services.alerts import AlertService
from bot.services.backfill import Backfiller
from bot.services.ingest import replay
from bot.services.live import LiveFeeds
from bot.services.queries import QueryService
from bot.services.recorder import Recorder
from bot.storage.store import Store
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, FakeVenueServer, VirtualClock
from tests.support import Sending, until

T = BASE_MS
PATH = okx.LIQUIDATION_ORDERS_PATH
EVERYTHING = Window(0, 4_000_000_000_000)
TRACKED = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "IOST-USDT-SWAP")


def book(instruments=TRACKED):
    body = okx_swap_instruments_body()
    return okx.instruments_book({**body, "data": [e for e in body["data"] if e["instId"] in instruments]})


# The docs' example order (the liquidation-orders stream's, which the REST endpoint
# returns under its envelope: code, msg, data).
DOC_BODY = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "details": [
                {"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short", "side": "buy", "sz": "13",
                 "ts": "1692266434010"}
            ],
            "instFamily": "IOST-USDT",
            "instId": "IOST-USDT-SWAP",
            "instType": "SWAP",
            "uly": "IOST-USDT",
        }
    ],
}


def test_a_history_page_is_read_by_the_stream_parser():
    page = okx.history_page(DOC_BODY, book())
    (event,) = page.events
    # 13 contracts x 1,000 IOST (ctVal) x 0.007831 USDT; a short was liquidated (buy order).
    assert (event.venue, event.stream, event.instrument, event.asset) == ("okx", "public", "IOST-USDT-SWAP", "IOST")
    assert event.liquidated is Side.SHORT and round(event.notional_usd, 2) == 101.80
    assert event.at_ms == 1692266434010
    frame = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": DOC_BODY["data"]}
    assert page.events == okx.parse_public(frame, book())  # the live row is the same row
    assert (page.oldest_ms, page.full, page.unpriced) == (1692266434010, False, 0)
    unpriced = okx.history_page(DOC_BODY, book(("BTC-USDT-SWAP",)))
    assert (unpriced.events, unpriced.unpriced, unpriced.oldest_ms) == ([], 1, 1692266434010)


def test_a_history_page_refuses_error_codes_and_what_is_not_a_rest_body():
    with pytest.raises(VenueError) as limited:
        okx.history_page({"code": "50011", "msg": "Too Many Requests", "data": []})
    assert limited.value.rate_limited
    with pytest.raises(VenueError) as refused:
        okx.history_page({"code": "51000", "msg": "Parameter instFamily error", "data": []})
    assert not refused.value.rate_limited
    for broken in ([], {"code": "0", "data": {}}, {"code": "0", "arg": {}, "data": []},
                   {"code": "0", "data": [{"instId": "BTC-USDT-SWAP", "details": [{"posSide": "long"}]}]}):
        with pytest.raises(FrameError):
            okx.history_page(broken, book())


def test_one_query_per_family_paged_back_with_after():
    queries = okx.history_queries(book(("BTC-USDT-SWAP", "BTC-USD-SWAP", "ETH-USDT-SWAP")))
    assert queries == [
        {"instType": "SWAP", "instFamily": family, "state": "filled", "limit": "100"}
        for family in ("BTC-USD", "BTC-USDT", "ETH-USDT")
    ]
    full = HistoryPage([], 0, 1_700_000_000_000, True)
    assert okx.older_history(queries[0], full) == {**queries[0], "after": "1700000000000"}
    assert okx.older_history(queries[0], dataclasses.replace(full, full=False)) is None


# -- a Backfiller over a store, against the fake REST history ------------------------


class Clock:
    """Virtual time: sleeps jump it and are recorded."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1000)
        await asyncio.sleep(0)


def order(instrument: str, at_ms: int, liquidated=Side.LONG, price=60_000.0, contracts=10.0) -> dict:
    """One order as the stream (and the REST history) carries it."""
    return frame_for(LiquidationSpec("okx", "public", instrument, liquidated, price, contracts, at_ms))["data"][0]


def backfiller(store, rest, clock, http, on_response=None, **settings):
    config = BackfillConfig(**settings)
    fetcher = HistoryFetcher("okx", okx.HISTORY, REST_BASE, http, config, clock.now_ms, clock.sleep,
                             rng=lambda: 0.0, on_response=on_response)
    return Backfiller(store, {("okx", "public"): fetcher}, lambda venue, stream: book(), config,
                      now_ms=clock.now_ms, sleep=clock.sleep)


async def okx_rows(store):
    return sorted((e.at_ms, e.instrument, e.liquidated, e.quantity, e.price, e.notional_usd)
                  for e in await store.largest(None, EVERYTHING, 10_000) if e.venue == "okx")


async def backfilled(store):
    return [(s.start_ms, s.end_ms) for s in await store.spans(EVERYTHING) if s.backfilled]


def scenario(store_rest: FakeVenueRest):
    """Live spans [T-3h, T-2h) and [T-1h, T); the history has both live orders,
    two in the gap and one from before liqbot started."""
    live = [order("BTC-USDT-SWAP", T - 150 * MINUTE_MS), order("ETH-USDT-SWAP", T - 30 * MINUTE_MS, Side.SHORT, 3_000.0)]
    gap = [order("BTC-USDT-SWAP", T - 90 * MINUTE_MS, contracts=7.0), order("IOST-USDT-SWAP", T - 72 * MINUTE_MS, price=0.01)]
    before = [order("ETH-USDT-SWAP", T - 10 * HOUR_MS)]
    store_rest.okx_liquidations += live + gap + before
    return live


async def record_live(store, live):
    await store.add_span("okx", "public", T - 3 * HOUR_MS, T - 2 * HOUR_MS)
    await store.add_span("okx", "public", T - HOUR_MS, T)
    for item in live:
        await store.add_events(okx.parse_public({"data": [item]}, book()))


async def test_a_gap_is_filled_once_deduplicated_against_live_rows_and_shown_as_backfilled(store):
    rest, clock = FakeVenueRest(), Clock(T)
    live = scenario(rest)
    await record_live(store, live)
    before = await QueryService(store).summary("BTC", Window(T - 3 * HOUR_MS, T))
    assert before.coverage.gaps == ((T - 2 * HOUR_MS, T - HOUR_MS),)
    async with rest.client() as http:
        filler = backfiller(store, rest, clock, http)
        assert await filler.fill("okx", "public", T) is True
        assert (filler.stats.stored, filler.stats.duplicates) == (3, 2)
        assert len(await okx_rows(store)) == 5
        # The history is complete back to its horizon: the day before liqbot started and the gap.
        assert await backfilled(store) == [(T - DAY_MS, T - 3 * HOUR_MS), (T - 2 * HOUR_MS, T - HOUR_MS)]
        requests = len(rest.requests)
        assert await filler.fill("okx", "public", T) is True  # nothing missing: nothing asked
        assert len(rest.requests) == requests and len(await okx_rows(store)) == 5
    queries = QueryService(store)
    after = await queries.summary("BTC", Window(T - 3 * HOUR_MS, T))
    assert after.coverage.gaps == () and after.coverage.complete
    assert after.total.events == 2  # the live order and the one from the gap
    report = await queries.status(T)
    (okx_stream,) = [s for s in report.streams if (s.venue, s.stream) == ("okx", "public")]
    assert okx_stream.gaps_last_day == ()
    assert okx_stream.backfilled_last_day == ((T - DAY_MS, T - 3 * HOUR_MS), (T - 2 * HOUR_MS, T - HOUR_MS))
    english = render_plain(status_reply(report, T, "en"))
    assert "Backfilled from the venue's history (24h)" in english and "OKX public: " in english
    assert "已从交易所历史补齐（24小时）" in render_plain(status_reply(report, T, "zh"))


async def test_the_recorded_pages_replay_into_the_same_orders_and_twice_into_nothing_new(store, tmp_path):
    rest, clock = FakeVenueRest(), Clock(T)
    await record_live(store, scenario(rest))
    recording = tmp_path / "backfill.jsonl"
    recorder = Recorder(recording, now_ms=clock.now_ms)
    # What the live stream's contract load writes before any backfill.
    await recorder.on_rest("okx", T - 1, f"{okx.INSTRUMENTS_PATH}?instType=SWAP", okx_swap_instruments_body())
    async with rest.client() as http:
        await backfiller(store, rest, clock, http, on_response=recorder.on_rest).fill("okx", "public", T)
    recorder.close()
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert {line["rest"]["path"].split("?")[0] for line in lines[1:]} == {PATH}
    replayed = await Store.open(tmp_path / "replayed.sqlite")
    try:
        first = await replay(replayed, [recording])
        assert (first.stored, first.duplicates, first.decode.bad_lines) == (5, 0, 0)
        assert await okx_rows(replayed) == await okx_rows(store)
        again = await replay(replayed, [recording])
        assert (again.stored, again.duplicates) == (0, 5)
        assert await okx_rows(replayed) == await okx_rows(store)
    finally:
        await replayed.close()


async def test_a_429_is_waited_out_and_a_broken_page_marks_nothing_until_a_retry_completes(store):
    rest, clock = FakeVenueRest(), Clock(T)
    await record_live(store, scenario(rest))
    rest.scripted[PATH] = [
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        httpx.Response(200, json={"code": "50011", "msg": "Too Many Requests", "data": []}),
        httpx.Response(200, content=b"<html>gateway</html>"),  # the next family: given up on
    ]
    async with rest.client() as http:
        filler = backfiller(store, rest, clock, http, retries=3, backoff_base_s=2.0)
        assert await filler.fill("okx", "public", T) is False
        assert 7.0 in clock.sleeps  # Retry-After, not the shorter backoff
        assert await backfilled(store) == []  # one family unread: no stretch is claimed
        assert len(await okx_rows(store)) > 2  # what the other families gave is kept
        retried_at = clock.now  # the venue keeps a day before each request, not before T
        assert await filler.fill("okx", "public", T) is True  # the retry reads everything
    assert await backfilled(store) == [(retried_at - DAY_MS, T - 3 * HOUR_MS), (T - 2 * HOUR_MS, T - HOUR_MS)]
    assert len(await okx_rows(store)) == 5


async def test_deep_history_is_paged_back_and_a_cursor_that_does_not_move_ends_it(store, tmp_path):
    rest, clock = FakeVenueRest(), Clock(T)
    rest.okx_liquidations += [order("BTC-USDT-SWAP", T - 5 * HOUR_MS + n * 1000) for n in range(250)]
    async with rest.client() as http:
        assert await backfiller(store, rest, clock, http).fill("okx", "public", T) is True
    assert len(await okx_rows(store)) == 250
    assert rest.count(PATH, instFamily="BTC-USDT") == 3  # 100 + 100 + 50, older and older
    ignoring = FakeVenueRest()  # a venue that ignores `after`: the same full page every time
    ignoring.okx_liquidations += [order("BTC-USDT-SWAP", T - 30 * MINUTE_MS + n * 1000) for n in range(100)]
    ignoring.bodies[PATH] = lambda params: ignoring._okx_liquidation_orders(
        {key: value for key, value in params.items() if key != "after"}
    )
    other = await Store.open(tmp_path / "other.sqlite")
    try:
        async with ignoring.client() as http:
            assert await backfiller(other, ignoring, Clock(T), http).fill("okx", "public", T) is True
        assert ignoring.count(PATH, instFamily="BTC-USDT") == 2
        # Complete only from the oldest order read, not from the venue's horizon.
        assert await backfilled(other) == [(T - 30 * MINUTE_MS, T)]
    finally:
        await other.close()


# -- through LiveFeeds: the stream connects, the gap before it is filled -------------


class Inbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_key, reply) -> None:
        self.sent.append((chat_key, render_plain(reply)))


def okx_only(server) -> FeedsConfig:
    config = FeedsConfig()
    others = {venue: dataclasses.replace(getattr(config, venue), enabled=False) for venue in BY_NAME if venue != "okx"}
    return dataclasses.replace(
        config, okx=dataclasses.replace(config.okx, ws_url=server.url, rest_url=REST_BASE), **others
    )


async def test_backfilled_orders_raise_no_alert_while_a_live_order_does(store, tmp_path):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    old = order("BTC-USDT-SWAP", clock.now_ms() - 20 * MINUTE_MS, contracts=5_000.0)  # $3M, an hour's news
    rest.okx_liquidations.append(old)
    inbox = Inbox()
    notifier = Sending(store, {"telegram": inbox}, now_ms=clock.now_ms)
    alerts = AlertService(store, notifier.outbox, settings=EngineSettings(group_ms=2_000), now_ms=clock.now_ms,
                          sleep=clock.quiet_sleep, tick_s=0.5)
    await alerts.start()
    await alerts.create_rule(AlertRule(0, "telegram:42", "telegram:42", RuleKind.BIG, "BTC", 1_000_000.0),
                             clock.now_ms())
    recorder = Recorder(tmp_path / "live.jsonl", now_ms=clock.now_ms)
    async with FakeVenueServer("okx", "public") as server, rest.client() as http:
        feeds = LiveFeeds(okx_only(server), store, http, extra_sinks=[alerts, recorder],
                          now_ms=clock.now_ms, sleep=clock.quiet_sleep, tick_s=0.5)
        tasks = [asyncio.create_task(feeds.run()), asyncio.create_task(alerts.run()),
                 asyncio.create_task(notifier.run())]
        try:
            await until(lambda: feeds.backfiller.stats.completed == 1)
            assert feeds.backfiller.stats.stored == 1
            assert (await store.spans(EVERYTHING))[0].backfilled  # the day before the first connect
            live_at = clock.now_ms()
            await server.broadcast({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                                    "data": [order("BTC-USDT-SWAP", live_at, contracts=2_000.0)]})
            await until(lambda: len(inbox.sent) == 1)
            passed = clock.now_ms() + 10_000  # well past the 2 s grouping of big orders
            await until(lambda: clock.now_ms() > passed)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            recorder.close()
    ((chat, text),) = inbox.sent  # the live order only: the backfilled $3M one raised nothing
    assert chat == "telegram:42" and "$1.2" in text and "$3" not in text
    await notifier.close()
    assert sum(1 for line in (tmp_path / "live.jsonl").read_text().splitlines() if PATH in line) >= 1


async def test_bitfinex_history_is_paged_with_end_within_three_requests_a_minute(store):
    from bot.feeds.venues import bitfinex

    triggers = [["pos", n, T - 2 * HOUR_MS + n * 1000, None, "tBTCF0:USTF0", 0.1, 60_000.0, None, 0, 1, None, 59_000.0]
                for n in range(600)]
    rest, clock, asked_at = FakeVenueRest(), Clock(T), []

    def page(params):
        asked_at.append(clock.now)
        end = int(params.get("end", T))
        newest_first = sorted((r for r in triggers if r[2] <= end), key=lambda r: -r[2])
        return [[r] for r in newest_first[: int(params["limit"])]]

    rest.bodies[bitfinex.LIQUIDATIONS_PATH] = page
    config = BackfillConfig()
    async with rest.client() as http:
        fetcher = HistoryFetcher("bitfinex", bitfinex.HISTORY, REST_BASE, http, config, clock.now_ms, clock.sleep)
        filler = Backfiller(store, {("bitfinex", "public"): fetcher}, lambda venue, stream: None, config,
                            now_ms=clock.now_ms, sleep=clock.sleep)
        assert await filler.fill("bitfinex", "public", T) is True
    assert len(asked_at) == 2 and asked_at[1] - asked_at[0] >= 40_000  # 1.5 requests a minute at most
    assert (filler.stats.stored, filler.stats.duplicates) == (600, 1)  # `end` is inclusive: one read twice
    assert await backfilled(store) == [(T - DAY_MS, T)]


async def test_a_disconnect_gap_is_filled_after_the_reconnect_and_the_overlap_stored_once(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    async with FakeVenueServer("okx", "public") as server, rest.client() as http:
        feeds = LiveFeeds(okx_only(server), store, http, now_ms=clock.now_ms, sleep=clock.quiet_sleep, tick_s=0.5)
        task = asyncio.create_task(feeds.run())
        try:
            await until(lambda: feeds.backfiller.stats.completed == 1)  # the day before: nothing
            live = order("BTC-USDT-SWAP", clock.now_ms(), contracts=30.0)
            await server.broadcast({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [live]})
            await until(lambda: feeds.ingest.stats.events_stored == 1)
            server.refusals = [(503, {}), (503, {})]  # two refused reconnects: a gap of a minute or more
            await server.drop()
            missed = order("ETH-USDT-SWAP", clock.now_ms() + 5_000, Side.SHORT, 3_000.0, 40.0)
            rest.okx_liquidations += [live, missed]  # the history has the live order too
            await until(lambda: server.connections == 2, timeout=15)
            await until(lambda: feeds.backfiller.stats.completed == 2, timeout=15)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert feeds.backfiller.stats.stored == 1 and feeds.backfiller.stats.duplicates == 1
    assert [row[1] for row in await okx_rows(store)] == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    live_spans = [(s.start_ms, s.end_ms) for s in await store.spans(EVERYTHING) if not s.backfilled]
    (first, second) = live_spans
    # The gap between the two connections, exactly, is now backfilled.
    assert (first[1], second[0]) in await backfilled(store)
    report = await QueryService(store, feeds.live_states).status(clock.now_ms())
    (okx_stream,) = [s for s in report.streams if s.venue == "okx"]
    assert okx_stream.gaps_last_day == () and (first[1], second[0]) in okx_stream.backfilled_last_day
