"""OKX v5 liquidation-orders: hedge and net mode, contracts x ctVal from the real instruments."""

import pytest

from bot.core.models import Side
from bot.feeds.venues import okx
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import control_error
from bot.feeds.synthetic import okx_futures_instruments_body, okx_swap_instruments_body

# Response example of www.okx.com/docs-v5/en/#public-data-websocket-liquidation-orders-channel
DOC_EXAMPLE = {
    "id": "1512",
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [
        {
            "details": [
                {
                    "bkLoss": "0",
                    "bkPx": "0.007831",
                    "ccy": "",
                    "posSide": "short",
                    "side": "buy",
                    "sz": "13",
                    "ts": "1692266434010",
                }
            ],
            "instFamily": "IOST-USDT",
            "instId": "IOST-USDT-SWAP",
            "instType": "SWAP",
            "uly": "IOST-USDT",
        }
    ],
}


def detail(pos_side, side, sz, bk_px, ts="1742558400000"):
    return {"bkLoss": "0", "bkPx": bk_px, "ccy": "", "posSide": pos_side, "side": side, "sz": sz, "ts": ts}


def frame(inst_id, *details, inst_type="SWAP"):
    uly = "-".join(inst_id.split("-")[:2])
    return {
        "arg": {"channel": "liquidation-orders", "instType": inst_type},
        "data": [{"details": list(details), "instFamily": uly, "instId": inst_id, "instType": inst_type, "uly": uly}],
    }


@pytest.fixture(scope="module")
def book():
    # Real GET /api/v5/public/instruments?instType=SWAP (2022-05-13), plus two
    # futures sized like their swaps.
    swaps = okx.instruments_book(okx_swap_instruments_body())
    futures = okx.instruments_book(okx_futures_instruments_body(["BTC-USD-250328", "BTC-USDT-250328"]))
    return swaps.merged(futures)


def test_doc_example_is_a_short_of_13_contracts_of_1000_iost(book):
    [event] = okx.parse(DOC_EXAMPLE, book)
    assert event.liquidated is Side.SHORT
    assert (event.venue, event.stream, event.instrument, event.asset) == ("okx", "public", "IOST-USDT-SWAP", "IOST")
    assert event.quantity == 13  # contracts
    assert event.notional_usd == 101.8  # 13 x 1000 IOST x 0.007831
    assert event.at_ms == 1692266434010


def test_hedge_mode_pos_side_names_the_liquidated_position(book):
    [long, short] = okx.parse(
        frame("BTC-USDT-SWAP", detail("long", "sell", "2", "65000"), detail("short", "buy", "2", "65000")), book
    )
    assert long.liquidated is Side.LONG
    assert short.liquidated is Side.SHORT


def test_net_mode_sell_order_liquidates_a_long_and_buy_a_short(book):
    [sold, bought] = okx.parse(
        frame("BTC-USDT-SWAP", detail("net", "sell", "2", "65000"), detail("net", "buy", "2", "65000")), book
    )
    assert sold.liquidated is Side.LONG
    assert bought.liquidated is Side.SHORT


def test_linear_swap_notional_is_contracts_times_ctval_0_01_btc_times_price(book):
    [event] = okx.parse(frame("BTC-USDT-SWAP", detail("long", "sell", "150", "65000.5")), book)
    assert event.quantity == 150
    assert event.notional_usd == 97_500.75  # 150 x 0.01 BTC x 65000.5
    assert event.price == 65000.5


def test_inverse_swap_notional_is_contracts_times_ctval_100_usd(book):
    [event] = okx.parse(frame("BTC-USD-SWAP", detail("short", "buy", "150", "65000.5")), book)
    assert event.notional_usd == 15_000.0  # 150 x 100 USD, whatever the price
    assert (event.asset, event.liquidated) == ("BTC", Side.SHORT)


def test_futures_are_priced_like_their_swaps(book):
    futures = {
        "arg": {"channel": "liquidation-orders", "instType": "FUTURES"},
        "data": [
            frame("BTC-USD-250328", detail("net", "sell", "10", "90000"), inst_type="FUTURES")["data"][0],
            frame("BTC-USDT-250328", detail("net", "buy", "10", "90000"), inst_type="FUTURES")["data"][0],
        ],
    }
    [inverse, linear] = okx.parse(futures, book)
    assert (inverse.asset, inverse.liquidated, inverse.notional_usd) == ("BTC", Side.LONG, 1_000.0)
    assert (linear.asset, linear.liquidated, linear.notional_usd) == ("BTC", Side.SHORT, 9_000.0)


def test_unknown_instrument_keeps_the_priced_events_of_the_frame(book):
    mixed = {
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [
            frame("BTC-USDT-SWAP", detail("long", "sell", "100", "65000"))["data"][0],
            frame("NEWCOIN-USDT-SWAP", detail("long", "sell", "5", "1"), detail("short", "buy", "5", "1"))["data"][0],
        ],
    }
    with pytest.raises(UnknownInstrument) as unknown:
        okx.parse(mixed, book)
    assert unknown.value.instruments == ("NEWCOIN-USDT-SWAP",)
    assert unknown.value.unpriced_count == 2
    [priced] = unknown.value.events
    assert (priced.instrument, priced.notional_usd) == ("BTC-USDT-SWAP", 65_000.0)
    assert isinstance(unknown.value, FrameError)  # callers that only know FrameError still catch it


def test_without_a_book_nothing_is_priced():
    with pytest.raises(UnknownInstrument) as unknown:
        okx.parse(DOC_EXAMPLE)
    assert unknown.value.events == [] and unknown.value.instruments == ("IOST-USDT-SWAP",)


@pytest.mark.parametrize(
    "control",
    [
        "pong",
        {"id": "1512", "event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "connId": "a4d3ae55"},
        {"event": "error", "code": "60012", "msg": "Invalid request: {\"op\": \"subscribe\"}", "connId": "a4d3ae55"},
        {"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service upgrade.", "connId": "a4d3ae55"},
    ],
)
def test_acks_pongs_notices_and_errors_give_no_events(control, book):
    assert okx.parse(control, book) == []


def test_error_frames_are_reported_for_the_log():
    error = {"event": "error", "code": "60012", "msg": "Invalid request", "connId": "a4d3ae55"}
    assert control_error("okx", error) == "error '60012': 'Invalid request'"
    assert control_error("okx", {"event": "subscribe", "arg": {}}) is None
    assert control_error("okx", DOC_EXAMPLE) is None


def test_other_channels_and_inst_types_are_rejected(book):
    with pytest.raises(FrameError, match="channel"):
        okx.parse({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": []}, book)
    with pytest.raises(FrameError, match="instType"):
        okx.parse(frame("BTC-USDT", detail("net", "sell", "1", "65000"), inst_type="MARGIN"), book)
