"""Deribit liquidation trades: taker/maker/both, inverse USD amounts, linear coin amounts."""

import copy
import json

import pytest

from bot.core.models import Side, Window
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import RecordingDecoder, control_error, frame_line, rest_line
from bot.feeds.venues import deribit
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import VirtualClock
from tests.support import until

# Response example of docs.deribit.com/api-reference/market-data/public-get_instruments.
DOC_INSTRUMENTS = {
    "jsonrpc": "2.0", "id": 1,
    "result": [
        {"tick_size": 2.5, "tick_size_steps": [], "taker_commission": 0.0005, "settlement_period": "month",
         "settlement_currency": "BTC", "quote_currency": "USD", "price_index": "btc_usd", "min_trade_amount": 10,
         "max_liquidation_commission": 0.0075, "max_leverage": 50, "maker_commission": 0, "kind": "future",
         "is_active": True, "instrument_name": "BTC-29SEP23", "instrument_id": 138583,
         "instrument_type": "reversed", "expiration_timestamp": 1695974400000, "creation_timestamp": 1664524802000,
         "counter_currency": "USD", "contract_size": 10, "block_trade_tick_size": 0.01,
         "block_trade_min_trade_amount": 200000, "block_trade_commission": 0.00025, "base_currency": "BTC"},
        {"tick_size": 0.5, "tick_size_steps": [], "taker_commission": 0.0005, "settlement_period": "perpetual",
         "settlement_currency": "BTC", "quote_currency": "USD", "price_index": "btc_usd", "min_trade_amount": 10,
         "max_liquidation_commission": 0.0075, "max_leverage": 50, "maker_commission": 0, "kind": "future",
         "is_active": True, "instrument_name": "BTC-PERPETUAL", "instrument_id": 124972,
         "instrument_type": "reversed", "expiration_timestamp": 32503708800000, "creation_timestamp": 1534167754000,
         "counter_currency": "USD", "contract_size": 10, "block_trade_tick_size": 0.01,
         "block_trade_min_trade_amount": 200000, "block_trade_commission": 0.00025, "base_currency": "BTC"},
    ],
}
# Built like the documented ones: the USDC-settled linear perpetuals (get_instruments?currency=USDC).
USDC_INSTRUMENTS = {
    "jsonrpc": "2.0", "id": 1,
    "result": [
        {"kind": "future", "instrument_name": name, "instrument_type": "linear", "quote_currency": "USDC",
         "counter_currency": "USDC", "settlement_currency": "USDC", "base_currency": name.split("_")[0],
         "contract_size": 0.001, "settlement_period": "perpetual", "is_active": True}
        for name in ("BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL")
    ] + [{"kind": "future", "instrument_name": "ETH-PERPETUAL", "future_type": "reversed", "quote_currency": "USD",
          "settlement_period": "perpetual"}],
}
# trades.(instrument_name).(interval) and trades.(kind).(currency).(interval) example
# payloads (docs.deribit.com/subscriptions/trades/...), ordinary trades.
DOC_PERPETUAL_TRADE = {"trade_seq": 30289442, "trade_id": "48079269", "timestamp": 1590484512188, "tick_direction": 2,
                       "price": 8950, "mark_price": 8948.9, "instrument_name": "BTC-PERPETUAL",
                       "index_price": 8955.88, "direction": "sell", "amount": 10}
DOC_OPTION_TRADE = {"trade_seq": 2, "trade_id": "48079289", "timestamp": 1590484589306, "tick_direction": 2,
                    "price": 0.0075, "mark_price": 0.01062686, "iv": 47.58, "instrument_name": "BTC-27MAY20-9000-C",
                    "index_price": 8956.17, "direction": "sell", "amount": 3}


def notification(*trades, channel="trades.future.BTC.100ms"):
    return {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": list(trades)}}


def liquidation(trade, parties, **changes):
    return {**trade, **changes, "liquidation": parties}


@pytest.fixture(scope="module")
def book():
    return deribit.instruments_book(DOC_INSTRUMENTS).merged(deribit.instruments_book(USDC_INSTRUMENTS))


def test_documented_trades_are_not_liquidations(book):
    assert deribit.parse(notification(DOC_PERPETUAL_TRADE), book) == []
    assert deribit.parse(notification(DOC_OPTION_TRADE, channel="trades.option.BTC.raw"), book) == []


def test_taker_liquidated_selling_is_a_long_of_amount_usd(book):
    [event] = deribit.parse(notification(liquidation(DOC_PERPETUAL_TRADE, "T")), book)
    assert (event.venue, event.stream, event.instrument, event.asset) == ("deribit", "public", "BTC-PERPETUAL", "BTC")
    assert (event.liquidated, event.price, event.quantity, event.notional_usd) == (Side.LONG, 8950, 10, 10.0)
    assert event.at_ms == 1590484512188


def test_maker_liquidated_is_on_the_other_side_of_the_taker(book):
    [sold_into] = deribit.parse(notification(liquidation(DOC_PERPETUAL_TRADE, "M")), book)
    assert sold_into.liquidated is Side.SHORT  # the taker sold: the liquidated maker bought, closing a short
    [bought_from] = deribit.parse(notification(liquidation(DOC_PERPETUAL_TRADE, "M", direction="buy")), book)
    assert bought_from.liquidated is Side.LONG


def test_both_sides_liquidated_is_a_long_and_a_short_of_the_trade_size(book):
    events = deribit.parse(notification(liquidation(DOC_PERPETUAL_TRADE, "MT", amount=25_000)), book)
    assert sorted((e.liquidated.value, e.notional_usd) for e in events) == [("long", 25_000.0), ("short", 25_000.0)]


def test_inverse_future_amount_is_usd_whatever_the_price(book):
    [event] = deribit.parse(
        notification(liquidation(DOC_PERPETUAL_TRADE, "T", instrument_name="BTC-29SEP23", price=27_000.5,
                                 amount=123_450)), book)
    assert event.notional_usd == 123_450.0


def test_linear_amount_is_coin_times_price(book):
    trade = liquidation(DOC_PERPETUAL_TRADE, "T", instrument_name="BTC_USDC-PERPETUAL", direction="buy",
                        price=64_000.4, amount=0.25)
    [event] = deribit.parse(notification(trade, channel="trades.future.USDC.100ms"), book)
    assert (event.asset, event.liquidated, event.quantity, event.notional_usd) == ("BTC", Side.SHORT, 0.25, 16_000.1)


def test_deprecated_future_type_still_names_the_kind(book):
    [event] = deribit.parse(
        notification(liquidation(DOC_PERPETUAL_TRADE, "T", instrument_name="ETH-PERPETUAL", amount=500)), book)
    assert (event.asset, event.notional_usd) == ("ETH", 500.0)


def test_instruments_missing_from_the_book_are_counted_not_priced(book):
    frame = notification(liquidation(DOC_OPTION_TRADE, "MT"), liquidation(DOC_PERPETUAL_TRADE, "T"))
    with pytest.raises(UnknownInstrument) as unknown:
        deribit.parse(frame, book)
    assert unknown.value.instruments == ("BTC-27MAY20-9000-C",) and unknown.value.unpriced_count == 2
    [priced] = unknown.value.events
    assert priced.instrument == "BTC-PERPETUAL"


def test_extra_fields_are_ignored(book):
    trade = {**liquidation(DOC_PERPETUAL_TRADE, "T"), "contracts": 1.0, "block_trade_id": "x", "new": {"a": 1}}
    assert deribit.parse({**notification(trade), "usIn": 1}, book)[0].notional_usd == 10.0


@pytest.mark.parametrize(
    "control",
    [
        {"jsonrpc": "2.0", "id": 1, "result": ["trades.future.BTC.100ms"]},
        {"jsonrpc": "2.0", "id": 8212, "result": {"version": "1.2.26"}},
        {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}},
        {"jsonrpc": "2.0", "id": 5, "error": {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"},
         "usIn": 1, "usOut": 2, "usDiff": 1},
    ],
)
def test_replies_heartbeats_and_errors_give_no_events(control, book):
    assert deribit.parse(control, book) == []


def test_error_replies_are_reported_for_the_log():
    error = {"jsonrpc": "2.0", "error": {"code": 10009, "message": "invalid_argument",
                                        "data": {"reason": "invalid instrument_name", "param": "instrument_name"}},
             "usIn": 1704153600000000, "usOut": 1704153600001234, "usDiff": 1234, "id": 42}
    assert control_error("deribit", error) == "error 10009: 'invalid_argument'"
    assert control_error("deribit", notification(DOC_PERPETUAL_TRADE)) is None


def broken(**changes):
    trade = liquidation(DOC_PERPETUAL_TRADE, "T")
    for key, value in changes.items():
        if value is None:
            del trade[key]
        else:
            trade[key] = value
    return notification(trade)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (broken(liquidation="X"), "M/T/MT"),
        (broken(liquidation=1), "M/T/MT"),
        (broken(direction="short"), "buy/sell"),
        (broken(direction=None), "direction"),
        (broken(amount=None), "amount"),
        (broken(amount=-10), "amount"),
        (broken(amount="1e13"), "amount"),
        (broken(amount=10**400), "amount"),
        (broken(price=0), "price"),
        (broken(timestamp="yesterday"), "timestamp"),
        (broken(instrument_name=7), "instrument_name"),
        ({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "book.BTC-PERPETUAL.100ms", "data": []}},
         "channel"),
        ({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "trades.future.BTC.100ms", "data": {}}},
         "list"),
        ({"jsonrpc": "2.0", "method": "subscription", "params": []}, "params"),
        ({"jsonrpc": "2.0", "method": "surprise"}, "unexpected"),
        (notification("x"), "object"),
        ("pong", "object"),
        (broken(instrument_name="BTC_USDC-PERPETUAL", amount=0.0001, price=20), "cent"),  # $0.002
    ],
)
def test_malformed_frames_raise_frame_error(frame, message, book):
    with pytest.raises(FrameError, match=message):
        deribit.parse(frame, book)


@pytest.mark.parametrize("body", [[], {"jsonrpc": "2.0", "result": {}},
                                  {"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}},
                                  {"jsonrpc": "2.0", "result": ["BTC-PERPETUAL"]}])
def test_malformed_instrument_bodies_raise_frame_error(body):
    with pytest.raises(FrameError):
        deribit.instruments_book(body)


def test_subscribes_to_the_100ms_future_trades_of_every_currency_then_sets_heartbeats():
    *subscribes, heartbeat = deribit.STREAMS[0].subscribe(())
    assert subscribes[0] == '{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["trades.future.BTC.100ms"]}}'
    assert [json.loads(m)["params"]["channels"] for m in subscribes] == [
        [f"trades.future.{c}.100ms"] for c in ("BTC", "ETH", "USDC", "USDT")]
    assert json.loads(heartbeat) == {"jsonrpc": "2.0", "id": 0, "method": "public/set_heartbeat",
                                     "params": {"interval": 30}}


def test_test_requests_are_answered_with_public_test_and_nothing_else_is():
    answer = deribit.STREAMS[0].answer
    assert json.loads(answer({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})) == {
        "jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}}
    assert answer({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}) is None
    assert answer(notification(liquidation(DOC_PERPETUAL_TRADE, "T"))) is None
    assert [r.recorded_path for r in deribit.STREAMS[0].metadata] == [
        f"/api/v2/public/get_instruments?currency={c}&kind=future" for c in ("BTC", "ETH", "USDC", "USDT")]


def recording_lines():
    at = 1_750_000_000_000
    path = "/api/v2/public/get_instruments"
    return [
        rest_line("deribit", at, f"{path}?currency=BTC&kind=future", DOC_INSTRUMENTS),
        rest_line("deribit", at, f"{path}?currency=USDC&kind=future", USDC_INSTRUMENTS),
        frame_line("deribit", "public", at + 1, {"jsonrpc": "2.0", "id": 1, "result": ["trades.future.BTC.100ms"]}),
        frame_line("deribit", "public", at + 2, notification(DOC_PERPETUAL_TRADE, liquidation(DOC_PERPETUAL_TRADE, "MT"))),
        frame_line("deribit", "public", at + 3, broken(liquidation="X")),
        frame_line("deribit", "public", at + 4, notification(
            liquidation(DOC_PERPETUAL_TRADE, "T", instrument_name="ETH_USDC-PERPETUAL", price=2500.0, amount=4.0))),
    ]


def test_malformed_frames_are_counted_and_skipped():
    decoder = RecordingDecoder()
    events = [event for line in recording_lines() for event in decoder.feed(line)]
    assert sorted((e.instrument, e.liquidated.value, e.notional_usd) for e in events) == [
        ("BTC-PERPETUAL", "long", 10.0), ("BTC-PERPETUAL", "short", 10.0), ("ETH_USDC-PERPETUAL", "long", 10_000.0)]
    assert decoder.stats.bad_lines == 1 and decoder.stats.rest_responses == 2


async def test_replaying_a_recording_twice_changes_nothing(store, tmp_path):
    first, second = await replayed_twice(store, tmp_path, recording_lines())
    assert (first.stored, second.stored) == (3, 0)
    assert (await store.stats()).events == 3


async def test_live_runner_records_the_stream(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    bodies = {"BTC": DOC_INSTRUMENTS, "USDC": USDC_INSTRUMENTS}
    rest.bodies[deribit.INSTRUMENTS_PATH] = lambda params: bodies.get(params["currency"], {"jsonrpc": "2.0", "result": []})
    async with running_alone(store, "deribit", rest, clock) as (feeds, servers):
        server = servers["public"]
        await server.wait_for(lambda s: len(s.subscribe_requests) == 4)
        await until(lambda: any("public/set_heartbeat" in message for message in server.received))
        trades = [liquidation(DOC_PERPETUAL_TRADE, "MT", timestamp=clock.now_ms(), amount=1_000)]
        assert await server.broadcast(notification(*trades)) == 1
        linear = liquidation(DOC_PERPETUAL_TRADE, "M", timestamp=clock.now_ms(), instrument_name="ETH_USDC-PERPETUAL",
                             price=2500.0, amount=2.0)
        assert await server.broadcast(notification(linear, channel="trades.future.USDC.100ms")) == 1
        assert await server.broadcast(notification(copy.deepcopy(DOC_PERPETUAL_TRADE))) == 1
        await until(lambda: feeds.ingest.stats.events_received == 3)
        await server.send_raw('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
        await until(lambda: server.app_pings == 1)  # answered with public/test
    stored = await store.largest(None, Window(0, 4_000_000_000_000), 10)
    assert sorted((e.instrument, e.liquidated.value, e.notional_usd) for e in stored) == [
        ("BTC-PERPETUAL", "long", 1_000.0), ("BTC-PERPETUAL", "short", 1_000.0),
        ("ETH_USDC-PERPETUAL", "short", 5_000.0)]
    assert {(p, q["currency"]) for p, q in rest.requests} >= {(deribit.INSTRUMENTS_PATH, c) for c in ("BTC", "USDC")}
