"""Bitget UTA `liquidation`: the documented frame, `buy` = a long position
liquidated, `amount` already in the quote coin (USDT, USD, USDC)."""

import json

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError
from bot.feeds.recording import control_error
from bot.feeds.venues import bitget
from tests.fakes.single_venue import live_and_recorded
from tests.fakes.venue_ws import BASE_MS

# https://www.bitget.com/api-doc/uta/websocket/public/Liquidation-Channel, "Push".
DOC_EXAMPLE = {
    "data": [{"symbol": "BTCUSDT", "side": "buy", "price": "89000", "amount": "37.722858", "ts": "1736371332162"}],
    "arg": {"instType": "usdt-futures", "topic": "liquidation"},
    "action": "update",
    "ts": 1736371332162,
}
# The same page, "Response".
DOC_SUBSCRIBE_ACK = {"event": "subscribe", "arg": {"instType": "usdt-futures", "topic": "liquidation"}, "connId": "xxxxxxxxxx"}


def frame(inst_type, *items):
    return {"data": list(items), "arg": {"instType": inst_type, "topic": "liquidation"}, "action": "update", "ts": 1742558400100}


def item(symbol, side, price, amount, ts="1742558400000"):
    return {"symbol": symbol, "side": side, "price": price, "amount": amount, "ts": ts}


def test_doc_example_is_a_long_of_37_72_usdt():
    [event] = bitget.parse(DOC_EXAMPLE, stream="usdt-futures")
    assert (event.venue, event.stream, event.instrument, event.asset) == ("bitget", "usdt-futures", "BTCUSDT", "BTC")
    assert event.liquidated is Side.LONG  # "buy: Long position liquidation"
    assert (event.price, event.quantity, event.notional_usd) == (89_000.0, 37.722858, 37.72)
    assert event.at_ms == 1736371332162


def test_side_is_the_position_side_buy_long_sell_short():
    long, short = bitget.parse(
        frame("usdt-futures", item("ETHUSDT", "buy", "2500", "5000"), item("ETHUSDT", "sell", "2500", "5000")),
        stream="usdt-futures",
    )
    assert (long.liquidated, short.liquidated) == (Side.LONG, Side.SHORT)


@pytest.mark.parametrize(
    ("inst_type", "symbol", "asset"),
    [("usdt-futures", "SOLUSDT", "SOL"), ("coin-futures", "BTCUSD", "BTC"), ("usdc-futures", "ETHPERP", "ETH")],
)
def test_amount_is_the_notional_in_the_quote_coin_on_every_product_type(inst_type, symbol, asset):
    [event] = bitget.parse(frame(inst_type, item(symbol, "sell", "140.25", "70125.004")), stream=inst_type)
    assert (event.stream, event.asset, event.liquidated) == (inst_type, asset, Side.SHORT)
    assert (event.quantity, event.notional_usd) == (70_125.004, 70_125.0)  # amount, to the cent


def test_product_types_arrive_on_their_own_stream_only():
    with pytest.raises(FrameError, match="instType 'coin-futures' on the usdt-futures stream"):
        bitget.parse(frame("coin-futures", item("BTCUSD", "buy", "90000", "100")), stream="usdt-futures")
    # Bitget's classic API writes product types in upper case: the same type.
    assert bitget.parse(frame("USDT-FUTURES", item("BTCUSDT", "buy", "90000", "100")), stream="usdt-futures")


@pytest.mark.parametrize(
    "control",
    ["pong", DOC_SUBSCRIBE_ACK, {"event": "error", "code": 30001, "msg": "instType:usdt-futures,topic:liquidations doesn't exist", "op": "subscribe"}],
)
def test_pongs_acks_and_errors_give_no_events(control):
    assert bitget.parse(control, stream="usdt-futures") == []


def test_error_frames_are_reported_for_the_log():
    error = {"event": "error", "code": 30001, "msg": "doesn't exist", "op": "subscribe"}
    assert control_error("bitget", error) == "error 30001: \"doesn't exist\""
    assert control_error("bitget", DOC_SUBSCRIBE_ACK) is None
    assert control_error("bitget", DOC_EXAMPLE) is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (frame("usdt-futures", item("BTCUSDT", "long", "1", "1")), "buy/sell"),
        (frame("usdt-futures", item("BTCUSDT", "Buy", "1", "1")), "buy/sell"),
        (frame("usdt-futures", item("BTCUSDT", "buy", "1", "0")), "amount"),
        (frame("usdt-futures", item("BTCUSDT", "buy", "1", "0.004")), "cent"),
        (frame("usdt-futures", item("BTCUSDT", "buy", "1", "1e11")), "amount"),
        (frame("usdt-futures", item("BTCUSDT", "buy", "-1", "1")), "price"),
        (frame("usdt-futures", item("BTCUSDT", "buy", "1", "1", ts="1736371332")), "ts"),
        (frame("usdt-futures", {"symbol": "BTCUSDT", "side": "buy", "price": "1"}), "amount"),
        (frame("usdt-futures", "BTCUSDT"), "object"),
        ({"arg": {"instType": "usdt-futures", "topic": "ticker"}, "data": []}, "topic"),
        ({"arg": {"instType": "usdt-futures", "topic": "liquidation"}, "data": {}}, "list"),
        ({"data": []}, "arg"),
        (["pong"], "object"),
    ],
)
def test_malformed_frames_raise_frame_error(bad, message):
    with pytest.raises(FrameError, match=message):
        bitget.parse(bad, stream="usdt-futures")


def test_each_stream_subscribes_its_product_type_and_pings_with_text():
    messages = {spec.name: spec.subscribe(()) for spec in bitget.STREAMS}
    assert {name: [json.loads(m) for m in sent] for name, sent in messages.items()} == {
        inst_type: [{"op": "subscribe", "args": [{"instType": inst_type, "topic": "liquidation"}]}]
        for inst_type in ("usdt-futures", "coin-futures", "usdc-futures")
    }
    assert bitget.HEARTBEAT_MESSAGE == "ping"


async def test_liqbot_records_every_bitget_stream_skips_a_bad_frame_and_a_replay_stores_it_once(store, tmp_path):
    at = BASE_MS - 5_000
    frames = {
        "usdt-futures": [
            frame("usdt-futures", item("BTCUSDT", "long", "97000.5", "1", str(at))),  # not Bitget's vocabulary
            frame("usdt-futures", item("BTCUSDT", "buy", "97000.5", "48500.25", str(at)),
                  item("BTCUSDT", "sell", "97010", "9701", str(at + 1))),
        ],
        "coin-futures": [frame("coin-futures", item("BTCUSD", "sell", "96990", "25000", str(at + 2)))],
        "usdc-futures": [frame("usdc-futures", item("ETHUSDC", "buy", "2500", "1250.5", str(at + 3)))],
    }
    trip = await live_and_recorded(store, tmp_path, "bitget", frames, expected_events=4)
    assert [(e.stream, e.instrument, e.liquidated, e.notional_usd) for e in sorted(trip.live, key=lambda e: e.at_ms)] == [
        ("usdt-futures", "BTCUSDT", Side.LONG, 48_500.25),
        ("usdt-futures", "BTCUSDT", Side.SHORT, 9_701.0),
        ("coin-futures", "BTCUSD", Side.SHORT, 25_000.0),
        ("usdc-futures", "ETHUSDC", Side.LONG, 1_250.5),
    ]
    assert trip.replayed == trip.live and trip.replayed_again == 0
    assert trip.live_bad_frames == trip.replay_bad_lines == 1  # counted live and on replay, skipped
    for name, server in trip.servers.items():
        # Each client subscribed its own product type, and kept it alive with text pings.
        assert server.subscribe_requests == 2 * [{"op": "subscribe", "args": [{"instType": name, "topic": "liquidation"}]}]
        assert server.received.count("ping") == server.app_pings >= 2
