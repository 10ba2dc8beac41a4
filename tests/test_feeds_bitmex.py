"""BitMEX `liquidation` table: inserts only, order side, inverse / linear / quanto sizes."""

import pytest

from bot.core.models import Side, Window
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import RecordingDecoder, control_error, frame_line, rest_line
from bot.feeds.venues import bitmex
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, VirtualClock
from tests.support import until

RECEIVED_MS = 1_742_558_400_123

# GET /api/v1/instrument/active, trimmed to the fields the book reads. XBTUSD's
# multipliers are the real ones (quoted on r/BitMEX); LTCUSDT's come from ccxt's
# copy of a real response; the rest follow BitMEX's contract specs.
INSTRUMENTS = [
    {"symbol": "XBTUSD", "typ": "FFWCSX", "quoteCurrency": "USD", "settlCurrency": "XBt",
     "multiplier": -100000000, "underlyingToPositionMultiplier": None,
     "underlyingToSettleMultiplier": -100000000, "quoteToSettleMultiplier": None,
     "isQuanto": False, "isInverse": True, "lotSize": 100, "markPrice": 65000.0},
    {"symbol": "XBTZ25", "typ": "FFCCSX", "quoteCurrency": "USD", "settlCurrency": "XBt",
     "multiplier": -100000000, "underlyingToPositionMultiplier": None,
     "underlyingToSettleMultiplier": -100000000, "isQuanto": False, "isInverse": True, "markPrice": 66000.0},
    {"symbol": "XBTUSDT", "typ": "FFWCSX", "quoteCurrency": "USDT", "settlCurrency": "USDt",
     "multiplier": 1, "underlyingToPositionMultiplier": 1000000, "underlyingToSettleMultiplier": None,
     "quoteToSettleMultiplier": 1000000, "isQuanto": False, "isInverse": False, "lotSize": 100},
    {"symbol": "LTCUSDT", "rootSymbol": "LTC", "typ": "FFWCSX", "quoteCurrency": "USDT", "settlCurrency": "USDt",
     "multiplier": 100, "underlyingToPositionMultiplier": 10000, "underlyingToSettleMultiplier": None,
     "quoteToSettleMultiplier": 1000000, "isQuanto": False, "isInverse": False, "lotSize": 1000},
    {"symbol": "ETHUSD", "typ": "FFWCSX", "quoteCurrency": "USD", "settlCurrency": "XBt", "multiplier": 100,
     "underlyingToPositionMultiplier": None, "underlyingToSettleMultiplier": None, "isQuanto": True,
     "isInverse": False},
    {"symbol": "SOLUSD", "typ": "FFWCSX", "quoteCurrency": "USD", "settlCurrency": "USDt", "multiplier": 1000,
     "isQuanto": True, "isInverse": False},
    {"symbol": "XBTEUR", "typ": "FFWCSX", "quoteCurrency": "EUR", "settlCurrency": "XBt",
     "multiplier": -100000000, "underlyingToSettleMultiplier": -100000000, "isQuanto": False, "isInverse": True},
    {"symbol": "TRXZ19", "typ": "FFCCSX", "quoteCurrency": "XBT", "settlCurrency": "XBt", "multiplier": 100000000,
     "underlyingToPositionMultiplier": None, "underlyingToSettleMultiplier": None,
     "isQuanto": False, "isInverse": False},
    {"symbol": ".BXBT", "typ": "MRCXXX", "quoteCurrency": "USD", "multiplier": None, "isQuanto": False,
     "isInverse": False},
]

# Published frames (BitMEX's docs print none for this table): r/BitMEX, 2020-11-04,
# one liquidation order's insert, update and delete.
REDDIT_INSERT = {"table": "liquidation", "action": "insert", "data": [
    {"orderID": "98ae1dad-6a3b-51c4-14bd-e076919e9e30", "symbol": "XBTUSD", "side": "Buy", "price": 13854.5,
     "leavesQty": 314930}]}
REDDIT_UPDATE = {"table": "liquidation", "action": "update", "data": [
    {"orderID": "98ae1dad-6a3b-51c4-14bd-e076919e9e30", "leavesQty": 305515, "symbol": "XBTUSD"}]}
REDDIT_DELETE = {"table": "liquidation", "action": "delete", "data": [
    {"orderID": "98ae1dad-6a3b-51c4-14bd-e076919e9e30", "symbol": "XBTUSD"}]}
# The bitmex-liquidation 1.0 README on PyPI: an XBT-quoted future.
PYPI_INSERT = {"table": "liquidation", "action": "insert", "data": [
    {"orderID": "8b4a95db-815a-f93a-c9a2-ffbbabeddbac", "symbol": "TRXZ19", "side": "Buy", "price": 2.17e-06,
     "leavesQty": 5000}]}


def insert(*rows):
    return {"table": "liquidation", "action": "insert", "data": list(rows)}


def row(symbol, side, price, leaves_qty, order_id="6b9a5b4e-0000-4000-8000-000000000001"):
    return {"orderID": order_id, "symbol": symbol, "side": side, "price": price, "leavesQty": leaves_qty}


@pytest.fixture(scope="module")
def book():
    return bitmex.instruments_book(INSTRUMENTS)


def test_published_insert_is_a_short_of_314930_usd_dated_by_its_receive_time(book):
    [event] = bitmex.parse(REDDIT_INSERT, book, RECEIVED_MS)
    assert (event.venue, event.stream, event.instrument, event.asset) == ("bitmex", "realtime", "XBTUSD", "BTC")
    assert event.liquidated is Side.SHORT  # a Buy order closes a short
    assert (event.price, event.quantity, event.notional_usd) == (13854.5, 314930, 314_930.0)
    assert event.at_ms == RECEIVED_MS


def test_updates_and_deletes_of_the_same_order_add_nothing(book):
    assert bitmex.parse(REDDIT_UPDATE, book, RECEIVED_MS + 1) == []
    assert bitmex.parse(REDDIT_DELETE, book, RECEIVED_MS + 2) == []


def test_partial_on_subscribe_is_not_counted(book):
    partial = {"table": "liquidation", "action": "partial", "keys": ["orderID"],
               "types": {"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float",
                         "leavesQty": "long"},
               "filter": {}, "data": [row("XBTUSD", "Sell", 65000.0, 1000)]}
    assert bitmex.parse(partial, book, RECEIVED_MS) == []


def test_sell_order_liquidates_a_long(book):
    [long, short] = bitmex.parse(
        insert(row("XBTUSD", "Sell", 65000.5, 2000), row("XBTUSD", "Buy", 65010.0, 500)), book, RECEIVED_MS
    )
    assert (long.liquidated, long.notional_usd) == (Side.LONG, 2_000.0)  # 1 USD a contract, any price
    assert (short.liquidated, short.notional_usd) == (Side.SHORT, 500.0)


def test_inverse_future_is_one_usd_a_contract(book):
    [event] = bitmex.parse(insert(row("XBTZ25", "Sell", 70123.5, 12345)), book, RECEIVED_MS)
    assert (event.asset, event.notional_usd) == ("BTC", 12_345.0)


def test_linear_contracts_are_a_fraction_of_a_coin_times_price(book):
    [xbt, ltc] = bitmex.parse(
        insert(row("XBTUSDT", "Sell", 65000.5, 1500), row("LTCUSDT", "Buy", 144.36, 5000)), book, RECEIVED_MS
    )
    assert (xbt.asset, xbt.quantity, xbt.notional_usd) == ("BTC", 1500, 97.5)  # 1500 / 1e6 BTC x 65000.5
    assert (ltc.asset, ltc.notional_usd) == ("LTC", 72.18)  # 5000 / 1e4 LTC x 144.36


def test_quanto_is_multiplier_satoshis_per_point_converted_at_the_xbtusd_mark(book):
    [eth] = bitmex.parse(insert(row("ETHUSD", "Sell", 3000.5, 1000)), book, RECEIVED_MS)
    # 1000 contracts x 3000.5 x 100 XBt = 3.0005 XBT, at XBTUSD's mark of 65000
    assert (eth.asset, eth.liquidated, eth.notional_usd) == ("ETH", Side.LONG, 195_032.5)


def test_usdt_settled_quanto_needs_no_bitcoin_price(book):
    [sol] = bitmex.parse(insert(row("SOLUSD", "Buy", 150.5, 20)), book, RECEIVED_MS)
    assert sol.notional_usd == 3.01  # 20 x 150.5 x 1000 USDt (1e-6 USDT each)


def test_xbt_settled_quanto_is_unpriced_without_an_xbtusd_mark():
    book = bitmex.instruments_book([entry for entry in INSTRUMENTS if entry["symbol"] != "XBTUSD"])
    assert "ETHUSD" not in book and "SOLUSD" in book


def test_instruments_not_quoted_in_usd_are_counted_not_priced(book):
    with pytest.raises(UnknownInstrument) as unknown:
        bitmex.parse(PYPI_INSERT, book, RECEIVED_MS)
    assert unknown.value.instruments == ("TRXZ19",) and unknown.value.unpriced_count == 1
    mixed = insert(row("XBTEUR", "Sell", 60000.0, 100), row("XBTUSD", "Sell", 65000.0, 100))
    with pytest.raises(UnknownInstrument) as unknown:
        bitmex.parse(mixed, book, RECEIVED_MS)
    [priced] = unknown.value.events
    assert (unknown.value.instruments, priced.instrument, priced.notional_usd) == (("XBTEUR",), "XBTUSD", 100.0)
    assert ".BXBT" not in book


def test_extra_fields_are_ignored(book):
    frame = insert({**row("XBTUSD", "Sell", 65000.0, 100), "timestamp": "2026-12-02T12:00:00.000Z", "x": [1]})
    assert bitmex.parse({**frame, "filter": {}}, book, RECEIVED_MS)[0].notional_usd == 100.0


@pytest.mark.parametrize(
    "control",
    [
        "pong",
        {"info": "Welcome to the BitMEX Realtime API.", "version": "2020-10-09T21:10:34.000Z",
         "timestamp": "2020-10-12T16:46:20.255Z", "docs": "https://testnet.bitmex.com/app/wsAPI",
         "limit": {"remaining": 38}},
        {"success": True, "subscribe": "liquidation", "request": {"op": "subscribe", "args": "liquidation"}},
        {"status": 400, "error": "Unknown table: liquidations", "meta": {},
         "request": {"op": "subscribe", "args": "liquidations"}},
    ],
)
def test_welcome_acks_pongs_and_errors_give_no_events(control, book):
    assert bitmex.parse(control, book, RECEIVED_MS) == []


def test_error_frames_are_reported_for_the_log():
    error = {"status": 400, "error": "Unknown table: liquidations", "meta": {}, "request": {}}
    assert control_error("bitmex", error) == "error 400: 'Unknown table: liquidations'"
    assert control_error("bitmex", REDDIT_INSERT) is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"table": "trade", "action": "insert", "data": []}, "table"),
        ({"table": "liquidation", "action": "upsert", "data": []}, "action"),
        ({"table": "liquidation", "action": "insert", "data": {}}, "list"),
        ({"action": "insert", "data": []}, "table"),
        (insert("x"), "object"),
        (insert(row("XBTUSD", "SELL", 65000.0, 100)), "Buy/Sell"),
        (insert({k: v for k, v in row("XBTUSD", "Sell", 65000.0, 100).items() if k != "orderID"}), "orderID"),
        (insert({k: v for k, v in row("XBTUSD", "Sell", 65000.0, 100).items() if k != "price"}), "price"),
        (insert(row("XBTUSD", "Sell", 65000.0, 0)), "leavesQty"),
        (insert(row("XBTUSD", "Sell", 65000.0, "many")), "leavesQty"),
        (insert(row("XBTUSD", "Sell", -1, 100)), "price"),
        (insert(row("", "Sell", 65000.0, 100)), "symbol"),
        (insert(row("XBTUSDT", "Sell", 5.0, 1)), "cent"),  # 1e-6 BTC at $5: a unit mix-up
        (insert(row("XBTUSD", "Sell", 65000.0, 10**400)), "leavesQty"),
        ([REDDIT_INSERT], "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, message, book):
    with pytest.raises(FrameError, match=message):
        bitmex.parse(frame, book, RECEIVED_MS)


def test_an_insert_without_a_receive_time_is_refused(book):
    with pytest.raises(FrameError, match="receive time"):
        bitmex.parse(REDDIT_INSERT, book)


@pytest.mark.parametrize("body", [{"symbol": "XBTUSD"}, ["XBTUSD"], None])
def test_malformed_instrument_bodies_raise_frame_error(body):
    with pytest.raises(FrameError):
        bitmex.instruments_book(body)


def test_an_instrument_with_absurd_multipliers_is_left_out():
    huge = [{**INSTRUMENTS[0], "multiplier": -(10**400)}, {**INSTRUMENTS[3], "underlyingToPositionMultiplier": 10**400}]
    assert len(bitmex.instruments_book(huge)) == 0


def recording_lines():
    at = RECEIVED_MS
    return [
        rest_line("bitmex", at, bitmex.INSTRUMENTS_PATH, INSTRUMENTS),
        frame_line("bitmex", "realtime", at + 1, REDDIT_INSERT),
        frame_line("bitmex", "realtime", at + 2, REDDIT_UPDATE),
        frame_line("bitmex", "realtime", at + 3, insert(row("ETHUSD", "Sell", 3000.5, 1000))),
        frame_line("bitmex", "realtime", at + 4, REDDIT_DELETE),
        frame_line("bitmex", "realtime", at + 5, insert(row("XBTUSD", "SELL", 1.0, 1))),
        frame_line("bitmex", "realtime", at + 6, "pong"),
    ]


def test_malformed_frames_are_counted_and_skipped():
    decoder = RecordingDecoder()
    events = [event for line in recording_lines() for event in decoder.feed(line)]
    assert [(e.at_ms, e.notional_usd) for e in events] == [(RECEIVED_MS + 1, 314_930.0), (RECEIVED_MS + 3, 195_032.5)]
    assert decoder.stats.bad_lines == 1 and decoder.stats.rest_responses == 1


async def test_replaying_a_recording_twice_changes_nothing(store, tmp_path):
    first, second = await replayed_twice(store, tmp_path, recording_lines())
    assert (first.stored, second.stored) == (2, 0)
    assert (await store.stats()).events == 2


async def test_live_runner_records_the_stream_with_receive_times_and_pings(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    rest.bodies[bitmex.INSTRUMENTS_PATH] = lambda params: INSTRUMENTS
    async with running_alone(store, "bitmex", rest, clock) as (feeds, servers):
        server = servers["realtime"]
        await server.wait_for(lambda s: s.subscribed_connections() == 1)
        for frame in (REDDIT_INSERT, REDDIT_UPDATE, REDDIT_DELETE, insert(row("LTCUSDT", "Buy", 144.36, 5000))):
            assert await server.broadcast(frame) == 1
        await until(lambda: feeds.ingest.stats.events_received == 2)
        sent_ms = clock.now_ms()
        await until(lambda: server.app_pings >= 1)  # "ping" after 5 s of silence, answered "pong"
    stored = await store.largest(None, Window(0, 4_000_000_000_000), 10)
    assert sorted((e.instrument, e.liquidated, e.notional_usd) for e in stored) == [
        ("LTCUSDT", Side.SHORT, 72.18), ("XBTUSD", Side.SHORT, 314_930.0)]
    assert all(BASE_MS <= e.at_ms <= sent_ms for e in stored)  # dated on receipt
    assert server.received.count("ping") == server.app_pings  # text pings, as documented
