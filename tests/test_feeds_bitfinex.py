"""Bitfinex `liq:global`: triggers only, signed position amount, priced where liquidated."""

import pytest

from bot.core.models import Side, Window
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.marketdata import VenueError
from bot.feeds.recording import RecordingDecoder, control_error, frame_line
from bot.feeds.venues import bitfinex
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import BITFINEX_CHANNEL_ID, VirtualClock
from tests.support import until

# "Liquidation feed updates" example of docs.bitfinex.com/reference/ws-public-status
# (its comments stripped): a market execution (IS_MATCH 1) of a short's liquidation.
DOC_UPDATE = [91684, [["pos", 142397657, 1574697680828.2002, None, "tBSVUSD", -2.62932, 91.583875238719, None, 1, 1,
                       None, 112.27]]]
DOC_RECORD = DOC_UPDATE[1][0]


def record(symbol="tBTCF0:USTF0", amount=0.5, base_price=60_000.0, is_match=0, liquidation_price=57_000.0,
           mts=1_750_000_000_000, pos_id=160000001):
    return ["pos", pos_id, mts, None, symbol, amount, base_price, None, is_match, 1, None, liquidation_price]


def update(*records, channel_id=91684):
    return [channel_id, list(records)]


def trigger_of(doc_record):
    return doc_record[:8] + [0] + doc_record[9:]


def test_documented_update_is_an_execution_and_adds_nothing():
    assert bitfinex.parse(DOC_UPDATE) == []


def test_trigger_of_the_documented_record_is_a_short_priced_where_it_was_liquidated():
    [event] = bitfinex.parse(update(trigger_of(DOC_RECORD)))
    assert (event.venue, event.stream, event.instrument, event.asset) == ("bitfinex", "public", "tBSVUSD", "BSV")
    assert event.liquidated is Side.SHORT  # negative AMOUNT: a short position
    assert (event.quantity, event.price) == (2.62932, 112.27)
    assert event.notional_usd == 295.19  # 2.62932 x 112.27; at BASE_PRICE (entry) it would be 240.80
    assert event.at_ms == 1574697680828  # fractional ms in the docs' example


def test_positive_amount_is_a_long():
    [event] = bitfinex.parse(update(record(amount=0.5)))
    assert (event.asset, event.liquidated, event.notional_usd) == ("BTC", Side.LONG, 28_500.0)


def test_without_a_liquidation_price_the_base_price_is_used():
    [null_price] = bitfinex.parse(update(record(liquidation_price=None)))
    [short_record] = bitfinex.parse(update(record()[:10]))  # an older, shorter record
    assert null_price.notional_usd == short_record.notional_usd == 30_000.0  # 0.5 x 60000


def test_several_records_and_appended_fields():
    frame = update(record(amount=-1.5, symbol="tETHF0:USTF0", liquidation_price=2_500.0) + ["new", 7],
                   record(amount=0.1, is_match=1), record(amount=2.0, symbol="tETHUSD", liquidation_price=2_400.0))
    events = bitfinex.parse(frame)
    assert [(e.instrument, e.asset, e.liquidated, e.notional_usd) for e in events] == [
        ("tETHF0:USTF0", "ETH", Side.SHORT, 3_750.0), ("tETHUSD", "ETH", Side.LONG, 4_800.0)]


def test_pairs_not_quoted_in_usd_are_counted_not_priced():
    frame = update(record(symbol="tETHBTC", liquidation_price=0.04), record(symbol="tBTCF0:EUTF0"), record())
    with pytest.raises(UnknownInstrument) as unknown:
        bitfinex.parse(frame)
    assert unknown.value.instruments == ("tETHBTC", "tBTCF0:EUTF0") and unknown.value.unpriced_count == 2
    assert [e.instrument for e in unknown.value.events] == ["tBTCF0:USTF0"]


@pytest.mark.parametrize(
    "control",
    [
        [91684, "hb"],
        {"event": "info", "version": 2, "serverId": "x", "platform": {"status": 1}},
        {"event": "subscribed", "channel": "status", "chanId": 91684, "key": "liq:global"},
        {"event": "pong", "ts": 1511545528111, "cid": 1},
        {"event": "info", "code": 20051, "msg": "Stopping. Please try to reconnect"},
        {"event": "error", "msg": "subscribe: dup", "code": 10301},
    ],
)
def test_heartbeats_acks_and_errors_give_no_events(control):
    assert bitfinex.parse(control) == []


def test_error_events_are_reported_for_the_log():
    assert control_error("bitfinex", {"event": "error", "msg": "subscribe: dup", "code": 10301}) == (
        "error 10301: 'subscribe: dup'")
    assert control_error("bitfinex", DOC_UPDATE) is None


def changed(index, value):
    broken = record()
    broken[index] = value
    return update(broken)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"event": "surprise"}, "event"),
        ("pong", "CHANNEL_ID"),
        (["91684", []], "CHANNEL_ID"),
        ([91684], "CHANNEL_ID"),
        ([91684, {"pos": 1}], "payload"),
        (update(["trade", 1, 2]), "'pos'"),
        (update(record()[:8]), "'pos'"),
        (update("pos"), "'pos'"),
        (changed(8, 2), "IS_MATCH"),
        (changed(8, True), "IS_MATCH"),
        (changed(5, "0.5"), "AMOUNT"),
        (changed(5, 0), "AMOUNT"),
        (changed(5, float("nan")), "AMOUNT"),
        (changed(5, 1e13), "AMOUNT"),
        (changed(5, -(10**400)), "AMOUNT"),
        (changed(2, 10**400), "TIME_MS"),
        (changed(4, "fUSD"), "trading pair"),
        (changed(4, None), "SYMBOL"),
        (changed(2, "yesterday"), "TIME_MS"),
        (changed(2, float("inf")), "TIME_MS"),
        (changed(11, -5), "LIQUIDATION_PRICE"),
        (update(record(amount=0.0001, liquidation_price=5.0)), "cent"),  # $0.0005
    ],
)
def test_malformed_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        bitfinex.parse(frame)


def test_a_malformed_execution_record_is_still_malformed():
    with pytest.raises(FrameError, match="AMOUNT"):
        bitfinex.parse(update(record(amount="x", is_match=1)))


def test_subscribes_to_liq_global_and_pings_with_the_ping_event():
    spec = bitfinex.STREAMS[0]
    assert spec.subscribe(()) == ['{"event":"subscribe","channel":"status","key":"liq:global"}']
    assert spec.default_url == "wss://api-pub.bitfinex.com/ws/2" and not spec.metadata


def recording_lines():
    at = 1_750_000_000_500
    return [
        frame_line("bitfinex", "public", at, {"event": "subscribed", "channel": "status", "chanId": 91684,
                                              "key": "liq:global"}),
        frame_line("bitfinex", "public", at + 1, update(record(), record(is_match=1))),
        frame_line("bitfinex", "public", at + 2, [91684, "hb"]),
        frame_line("bitfinex", "public", at + 3, changed(8, 7)),
        frame_line("bitfinex", "public", at + 4, update(trigger_of(DOC_RECORD))),
    ]


def test_malformed_frames_are_counted_and_skipped():
    decoder = RecordingDecoder()
    events = [event for line in recording_lines() for event in decoder.feed(line)]
    assert [(e.instrument, e.notional_usd) for e in events] == [("tBTCF0:USTF0", 28_500.0), ("tBSVUSD", 295.19)]
    assert decoder.stats.bad_lines == 1


async def test_replaying_a_recording_twice_changes_nothing(store, tmp_path):
    first, second = await replayed_twice(store, tmp_path, recording_lines())
    assert (first.stored, second.stored) == (2, 0)
    assert (await store.stats()).events == 2


async def test_live_runner_records_the_stream(store):
    clock = VirtualClock(100)
    async with running_alone(store, "bitfinex", FakeVenueRest(), clock) as (feeds, servers):
        server = servers["public"]
        await server.wait_for(lambda s: s.subscribed_connections() == 1)
        assert server.subscribe_requests == [{"event": "subscribe", "channel": "status", "key": "liq:global"}]
        assert await server.broadcast([BITFINEX_CHANNEL_ID, "hb"]) == 1
        frame = update(record(mts=clock.now_ms()), record(mts=clock.now_ms(), is_match=1),
                       record(mts=clock.now_ms(), amount=-3.0, symbol="tETHF0:USTF0", liquidation_price=2_500.0))
        assert await server.broadcast(frame) == 1
        await until(lambda: feeds.ingest.stats.events_received == 2)
        await until(lambda: server.app_pings >= 1)  # {"event":"ping"} after a quiet ping interval
    stored = await store.largest(None, Window(0, 4_000_000_000_000), 10)
    assert sorted((e.asset, e.liquidated.value, e.notional_usd) for e in stored) == [
        ("BTC", "long", 28_500.0), ("ETH", "short", 7_500.0)]


# -- the REST history (backfill): the same records, one per item ---------------------


def test_a_history_page_reads_the_records_with_the_streams_rules():
    records = [DOC_RECORD, trigger_of(DOC_RECORD)]  # the execution adds nothing, the trigger counts
    page = bitfinex.history_page([[r] for r in records])  # liquidations/hist: [[record], ...]
    assert page.events == bitfinex.parse(update(*records)) and len(page.events) == 1
    assert (page.oldest_ms, page.full, page.unpriced) == (1574697680828, False, 0)
    full = bitfinex.history_page([[record(pos_id=n, mts=1_700_000_000_000 - n)] for n in range(500)])
    assert len(full.events) == 500 and full.full and full.oldest_ms == 1_700_000_000_000 - 499
    query = bitfinex.HISTORY.queries(None)[0]
    assert query == {"limit": "500", "sort": "-1"}
    assert bitfinex.HISTORY.older(query, full) == {**query, "end": str(1_700_000_000_000 - 499)}


def test_a_history_error_or_a_stream_frame_is_refused():
    with pytest.raises(VenueError) as limited:
        bitfinex.history_page(["error", 11010, "ratelimit: error"])
    assert limited.value.rate_limited
    for broken in ({}, [["pos"]], DOC_UPDATE, [[record(), record()]]):
        with pytest.raises(FrameError):
            bitfinex.history_page(broken)
