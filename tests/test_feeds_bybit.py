"""Bybit v5 allLiquidation: S is the POSITION side; linear v*p, inverse v USD."""

import pytest

from bot.core.models import Side
from bot.feeds.venues import bybit
from bot.feeds.errors import FrameError
from bot.feeds.recording import control_error

# Message example of bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation
DOC_EXAMPLE = {
    "topic": "allLiquidation.ROSEUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}],
}


def frame(symbol, *items):
    return {
        "topic": f"allLiquidation.{symbol}",
        "type": "snapshot",
        "ts": 1742558400500,
        "data": [{"T": 1742558400000, "s": symbol, "S": side, "v": v, "p": p} for side, v, p in items],
    }


def test_doc_example_sell_is_a_short_position_liquidated():
    [event] = bybit.parse(DOC_EXAMPLE, stream="linear")
    assert event.liquidated is Side.SHORT
    assert (event.venue, event.stream, event.instrument, event.asset) == ("bybit", "linear", "ROSEUSDT", "ROSE")
    assert event.notional_usd == 899.8  # 20000 ROSE x 0.04499
    assert event.at_ms == 1739502302929  # the item's T, not the frame's ts


def test_linear_buy_means_a_long_was_liquidated_and_notional_is_v_times_p():
    # The opposite of Binance, where BUY (the order side) closes a short.
    [event] = bybit.parse(frame("BTCUSDT", ("Buy", "0.5", "65000")), stream="linear")
    assert event.liquidated is Side.LONG
    assert event.quantity == 0.5  # BTC
    assert event.notional_usd == 32_500.0


def test_inverse_quantity_is_usd_and_is_the_notional():
    [long, short] = bybit.parse(frame("BTCUSD", ("Buy", "12000", "65000"), ("Sell", "300", "66000")), stream="inverse")
    assert (long.liquidated, long.quantity, long.notional_usd, long.price) == (Side.LONG, 12000, 12_000.0, 65000)
    assert (short.liquidated, short.notional_usd) == (Side.SHORT, 300.0)
    assert long.stream == "inverse" and long.asset == "BTC"


def test_inverse_futures_and_usdc_contracts_name_their_asset():
    [future] = bybit.parse(frame("BTCUSDZ25", ("Buy", "1000", "90000")), stream="inverse")
    [usdc_perp] = bybit.parse(frame("ETHPERP", ("Sell", "2", "3000")), stream="linear")
    assert (future.asset, future.notional_usd) == ("BTC", 1000.0)
    assert (usdc_perp.asset, usdc_perp.notional_usd, usdc_perp.liquidated) == ("ETH", 6000.0, Side.SHORT)


def test_scaled_meme_contract_is_the_asset_with_price_times_quantity():
    [event] = bybit.parse(frame("1000PEPEUSDT", ("Buy", "500000", "0.012")), stream="linear")
    assert (event.asset, event.notional_usd) == ("PEPE", 6000.0)


def test_a_frame_with_one_bad_item_is_rejected_whole():
    with pytest.raises(FrameError, match="Buy/Sell"):
        bybit.parse(frame("BTCUSDT", ("Buy", "1", "65000"), ("Long", "1", "65000")), stream="linear")


@pytest.mark.parametrize(
    "control",
    [
        {"success": True, "ret_msg": "", "conn_id": "c1", "req_id": "", "op": "subscribe"},
        {"success": True, "ret_msg": "pong", "conn_id": "c1", "req_id": "", "op": "ping"},
        {"op": "pong", "args": ["1742558400000"], "conn_id": "c1"},
        {"success": False, "ret_msg": "error:handler not found", "conn_id": "c1", "op": "subscribe"},
        "pong",
    ],
)
@pytest.mark.parametrize("stream", ["linear", "inverse"])
def test_acks_pongs_and_errors_give_no_events(control, stream):
    assert bybit.parse(control, stream=stream) == []


def test_error_frames_are_reported_for_the_log():
    failed = {"success": False, "ret_msg": "error:handler not found", "conn_id": "c1", "op": "subscribe"}
    assert control_error("bybit", failed) == "'subscribe' failed: 'error:handler not found'"
    assert control_error("bybit", {"success": True, "ret_msg": "pong", "op": "ping"}) is None
    assert control_error("bybit", DOC_EXAMPLE) is None


def test_other_topics_are_not_liquidations():
    legacy = {"topic": "liquidation.BTCUSDT", "type": "snapshot", "ts": 1, "data": {"symbol": "BTCUSDT"}}
    with pytest.raises(FrameError, match="topic"):
        bybit.parse(legacy, stream="linear")
