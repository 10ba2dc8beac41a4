"""Binance forceOrder: every row of the DESIGN venue table, and the docs' examples."""

import pytest

from bot.core.models import Side
from bot.feeds.venues import binance
from bot.feeds.errors import UnknownInstrument
from bot.feeds.recording import control_error
from bot.feeds.synthetic import binance_coinm_exchange_info_body

# Response example of the USD-M "Liquidation Order Streams" page,
# developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Liquidation-Order-Streams
USDM_DOC_EXAMPLE = {
    "e": "forceOrder",
    "E": 1568014460893,
    "o": {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.014",
        "p": "9910",
        "ap": "9910",
        "X": "FILLED",
        "l": "0.014",
        "z": "0.014",
        "T": 1568014460893,
    },
}

# Response example of the COIN-M "Liquidation Order Streams" page,
# developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/Liquidation-Order-Streams
COINM_DOC_EXAMPLE = {
    "e": "forceOrder",
    "E": 1591154240950,
    "o": {
        "s": "BTCUSD_200925",
        "ps": "BTCUSD",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "1",
        "p": "9425.5",
        "ap": "9496.5",
        "X": "FILLED",
        "l": "1",
        "z": "1",
        "T": 1591154240949,
    },
}


def usdm_frame(symbol="BTCUSDT", side="SELL", p="64000", ap="65000", z="2", **extra):
    order = {
        "s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": z, "p": p, "ap": ap,
        "X": "FILLED", "l": z, "z": z, "T": 1742558400000, **extra,
    }
    return {"e": "forceOrder", "E": 1742558400005, "o": order}


def coinm_frame(symbol, z, ap="65000.1", side="SELL"):
    frame = usdm_frame(symbol, side=side, p="64000", ap=ap, z=z)
    frame["o"]["ps"] = symbol.split("_")[0]
    return frame


@pytest.fixture(scope="module")
def coinm_book():
    # Real response of GET /dapi/v1/exchangeInfo (2021-07-22).
    return binance.coinm_exchange_info_book(binance_coinm_exchange_info_body())


def test_usdm_doc_example_is_a_long_liquidation_of_138_usd():
    [event] = binance.parse(USDM_DOC_EXAMPLE, stream="usdm")
    assert event.liquidated is Side.LONG
    assert (event.venue, event.stream, event.instrument, event.asset) == ("binance", "usdm", "BTCUSDT", "BTC")
    assert event.quantity == 0.014
    assert event.notional_usd == 138.74  # 0.014 BTC x 9910
    assert event.at_ms == 1568014460893  # o.T, the trade time


def test_usdm_sell_order_liquidates_a_long_and_buy_a_short():
    [sold] = binance.parse(usdm_frame(side="SELL"), stream="usdm")
    [bought] = binance.parse(usdm_frame(side="BUY"), stream="usdm")
    assert sold.liquidated is Side.LONG
    assert bought.liquidated is Side.SHORT


def test_usdm_notional_is_filled_quantity_times_average_price_not_limit_price():
    frame = usdm_frame(p="60000", ap="65000.5", z="2")
    frame["o"]["q"] = "3"  # ordered 3, filled 2
    [event] = binance.parse(frame, stream="usdm")
    assert event.notional_usd == 130_001.0  # 2 x 65000.5, not 2 x 60000 nor 3 x ...
    assert event.price == 65000.5
    assert event.quantity == 2


def test_usdm_scaled_meme_contract_is_the_asset_with_price_times_quantity():
    [event] = binance.parse(usdm_frame("1000PEPEUSDT", p="0.0119", ap="0.012", z="1000000"), stream="usdm")
    assert event.asset == "PEPE"
    assert event.notional_usd == 12_000.0


def test_usdm_combined_stream_wrapping_is_unwrapped():
    wrapped = {"stream": "!forceOrder@arr", "data": USDM_DOC_EXAMPLE}
    assert binance.parse(wrapped, stream="usdm") == binance.parse(USDM_DOC_EXAMPLE, stream="usdm")


def test_undocumented_extra_fields_are_tolerated():
    [event] = binance.parse(usdm_frame(ps="BTCUSDT", st="LIQUIDATION"), stream="usdm")
    assert event.notional_usd == 130_000.0


def test_notional_is_rounded_to_the_cent():
    [event] = binance.parse(usdm_frame(ap="0.123456", z="3"), stream="usdm")
    assert event.notional_usd == 0.37


def test_coinm_btc_contract_is_100_usd_from_real_exchange_info(coinm_book):
    [event] = binance.parse(coinm_frame("BTCUSD_PERP", z="25"), coinm_book, stream="coinm")
    assert event.notional_usd == 2_500.0  # 25 contracts x 100 USD, whatever the price
    assert event.quantity == 25  # contracts
    assert (event.stream, event.asset, event.liquidated) == ("coinm", "BTC", Side.LONG)


def test_coinm_eth_contract_is_10_usd_from_real_exchange_info(coinm_book):
    [event] = binance.parse(coinm_frame("ETHUSD_PERP", z="25", ap="2000", side="BUY"), coinm_book, stream="coinm")
    assert event.notional_usd == 250.0
    assert event.liquidated is Side.SHORT
    assert event.asset == "ETH"


def test_coinm_doc_example_needs_the_contract_size_of_its_expired_future(coinm_book):
    # BTCUSD_200925 expired before the 2021 exchangeInfo was recorded.
    with pytest.raises(UnknownInstrument) as unknown:
        binance.parse(COINM_DOC_EXAMPLE, coinm_book, stream="coinm")
    assert unknown.value.instruments == ("BTCUSD_200925",)
    assert unknown.value.events == []
    assert unknown.value.unpriced_count == 1
    # Once exchangeInfo lists it (every BTC COIN-M contract is 100 USD), it prices.
    listed = coinm_book.merged(
        binance.coinm_exchange_info_book({"symbols": [{"symbol": "BTCUSD_200925", "contractSize": 100}]})
    )
    [event] = binance.parse(COINM_DOC_EXAMPLE, listed, stream="coinm")
    assert (event.liquidated, event.notional_usd, event.price, event.asset) == (Side.LONG, 100.0, 9496.5, "BTC")


def test_coinm_without_any_book_is_unpriced():
    with pytest.raises(UnknownInstrument):
        binance.parse(coinm_frame("BTCUSD_PERP", z="1"), stream="coinm")


@pytest.mark.parametrize(
    "frame",
    [
        {"result": None, "id": 1},
        {"error": {"code": 2, "msg": "Invalid request: unknown variant"}, "id": 1},
        {"code": 0, "msg": "Unknown property", "id": 1},
        "pong",
    ],
)
@pytest.mark.parametrize("stream", ["usdm", "coinm"])
def test_acks_and_errors_give_no_events(frame, stream):
    assert binance.parse(frame, stream=stream) == []


def test_error_frames_are_reported_for_the_log():
    assert control_error("binance", {"error": {"code": 2, "msg": "Invalid request"}, "id": 1}) == "error 2: 'Invalid request'"
    assert control_error("binance", {"code": 0, "msg": "Unknown property"}) == "error 0: 'Unknown property'"
    assert control_error("binance", {"result": None, "id": 1}) is None
    assert control_error("binance", USDM_DOC_EXAMPLE) is None


def test_unknown_stream_is_a_programming_error():
    with pytest.raises(ValueError, match="spot"):
        binance.parse(USDM_DOC_EXAMPLE, stream="spot")
