"""Every malformed frame raises FrameError (never another exception, never an event)."""

import copy
import re
import random

import pytest

from bot.feeds.venues import binance, bitget, bybit, dydx, gate, htx, kraken, okx
from bot.feeds.errors import FrameError
from bot.feeds.recording import decode
from bot.feeds.synthetic import reference_books
from tests.fakes.venue_rest import kraken_instruments_body

BOOKS = reference_books()

BINANCE = {
    "e": "forceOrder",
    "E": 1742558400005,
    "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "2", "p": "64000",
          "ap": "65000", "X": "FILLED", "l": "2", "z": "2", "T": 1742558400000},
}
BYBIT = {
    "topic": "allLiquidation.BTCUSDT",
    "type": "snapshot",
    "ts": 1742558400500,
    "data": [{"T": 1742558400000, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "65000"}],
}
OKX = {
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [{"instId": "BTC-USDT-SWAP", "instType": "SWAP",
              "details": [{"bkLoss": "0", "bkPx": "65000", "ccy": "", "posSide": "long",
                           "side": "sell", "sz": "10", "ts": "1742558400000"}]}],
}

GATE = {
    "channel": "futures.public_liquidates", "event": "update", "time": 1742558400, "time_ms": 1742558400123,
    "result": [{"price": "65000", "size": "-10", "time": 1742558400000, "contract": "BTC_USDT"}],
}
GATE_BOOK = gate.contracts_book([{"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001"}])
KRAKEN = {"feed": "trade", "product_id": "PF_XBTUSD", "uid": "u1", "side": "sell", "type": "liquidation",
          "seq": 1, "time": 1742558400000, "qty": 0.5, "price": 65000}
KRAKEN_BOOK = kraken.instruments_book(kraken_instruments_body())
DYDX = {"type": "channel_data", "id": "BTC-USD", "channel": "v4_trades", "version": "1.1.0",
        "contents": {"trades": [{"id": "t1", "size": "0.5", "price": "65000", "side": "SELL",
                                 "createdAt": "2025-03-21T12:00:00.000Z", "type": "LIQUIDATED"}]}}
BITGET = {
    "data": [{"symbol": "BTCUSDT", "side": "buy", "price": "65000", "amount": "6500", "ts": "1742558400000"}],
    "arg": {"instType": "usdt-futures", "topic": "liquidation"}, "action": "update", "ts": 1742558400100,
}
HTX = {
    "op": "notify", "topic": "public.BTC-USDT.liquidation_orders", "ts": 1742558400100,
    "data": [{"symbol": "BTC", "contract_code": "BTC-USDT", "direction": "sell", "offset": "close", "volume": 100,
              "price": 65000, "created_at": 1742558400000, "amount": 0.1, "trade_turnover": 6500,
              "contract_type": "swap", "pair": "BTC-USDT", "business_type": "swap"}],
}


def parse_binance(frame):
    return binance.parse(frame, stream="usdm")


def parse_bybit(frame):
    return bybit.parse(frame, stream="linear")


def parse_okx(frame):
    return okx.parse(frame, BOOKS["okx"])


def parse_gate(frame):
    return gate.parse(frame, GATE_BOOK, stream="usdt")


def parse_kraken(frame):
    return kraken.parse(frame, KRAKEN_BOOK)


def parse_bitget(frame):
    return bitget.parse(frame, stream="usdt-futures")


def parse_htx(frame):
    return htx.parse(frame, stream="linear-swap")


def changed(base, path, value):
    """A deep copy of `base` with the item at `path` replaced (or deleted if value is DELETE)."""
    frame = copy.deepcopy(base)
    *parents, last = path
    target = frame
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return frame


DELETE = object()

# (what is wrong, field path, bad value)
BAD_VALUES = [
    ("missing", DELETE),
    ("object where a number belongs", {"value": 1}),
    ("list where a number belongs", [1]),
    ("non-numeric string", "abc"),
    ("empty string", ""),
    ("NaN", "NaN"),
    ("NaN float", float("nan")),
    ("infinity", "inf"),
    ("zero", "0"),
    ("negative", "-5"),
    ("absurdly large", "1e13"),
    ("an integer above 1.8e308 (stdlib json makes these)", 10**400),
    ("an integer too long to print in an error message", 10**5000),
    ("boolean", True),
    ("null", None),
]
NUMBER_FIELDS = {
    "binance": (parse_binance, BINANCE, [("o", "ap"), ("o", "z")]),
    "bybit": (parse_bybit, BYBIT, [("data", 0, "v"), ("data", 0, "p")]),
    "okx": (parse_okx, OKX, [("data", 0, "details", 0, "sz"), ("data", 0, "details", 0, "bkPx")]),
    "gate": (parse_gate, GATE, [("result", 0, "price")]),  # a negative size is a valid long
    "bitget": (parse_bitget, BITGET, [("data", 0, "amount"), ("data", 0, "price")]),
    "kraken": (parse_kraken, KRAKEN, [("qty",), ("price",)]),
    "htx": (parse_htx, HTX, [("data", 0, "volume"), ("data", 0, "price"), ("data", 0, "trade_turnover")]),
    "dydx": (dydx.parse, DYDX, [("contents", "trades", 0, "size"), ("contents", "trades", 0, "price")]),
}


@pytest.mark.parametrize("venue", NUMBER_FIELDS)
@pytest.mark.parametrize(("problem", "value"), BAD_VALUES, ids=[problem for problem, _ in BAD_VALUES])
def test_bad_numbers_raise_frame_error(venue, problem, value):
    parse, base, paths = NUMBER_FIELDS[venue]
    assert parse(base), "the unmodified frame parses"
    for path in paths:
        with pytest.raises(FrameError):
            parse(changed(base, path, value))


@pytest.mark.parametrize(
    ("parse", "frame", "message"),
    [
        # Sides that are not the venue's vocabulary.
        (parse_binance, changed(BINANCE, ("o", "S"), "Sell"), "BUY/SELL"),
        (parse_binance, changed(BINANCE, ("o", "S"), ["SELL"]), "BUY/SELL"),
        (parse_bybit, changed(BYBIT, ("data", 0, "S"), "SELL"), "Buy/Sell"),
        (parse_okx, changed(OKX, ("data", 0, "details", 0, "posSide"), "LONG"), "posSide"),
        (parse_okx, changed(changed(OKX, ("data", 0, "details", 0, "posSide"), "net"), ("data", 0, "details", 0, "side"), "hold"), "side"),
        # Missing or broken fields and shapes.
        (parse_binance, changed(BINANCE, ("o", "T"), "yesterday"), "o.T"),
        (parse_binance, changed(BINANCE, ("o", "T"), 5), "out of range"),
        (parse_binance, changed(BINANCE, ("o", "s"), ""), "o.s"),
        (parse_binance, changed(BINANCE, ("o",), []), "'o'"),
        (parse_binance, changed(BINANCE, ("e",), "ORDER_TRADE_UPDATE"), "event type"),
        (parse_binance, {"stream": "!forceOrder@arr", "data": "x"}, "combined"),
        (parse_binance, {"E": 1}, "no order"),
        (parse_binance, [BINANCE], "object"),
        (parse_binance, changed(BINANCE, ("o", "z"), "1000000"), "notional"),  # 1e6 BTC x 65000 > $10B
        (parse_bybit, changed(BYBIT, ("data",), {"T": 1}), "list"),
        (parse_bybit, changed(BYBIT, ("data", 0), "x"), "object"),
        (parse_bybit, changed(BYBIT, ("data", 0, "T"), DELETE), "data[].T"),
        (parse_bybit, {"type": "snapshot", "data": []}, "topic"),
        (parse_okx, changed(OKX, ("data", 0, "details"), {}), "details"),
        (parse_okx, changed(OKX, ("data", 0, "details", 0), 7), "object"),
        (parse_okx, changed(OKX, ("data", 0, "instId"), DELETE), "instId"),
        (parse_okx, changed(OKX, ("data", 0, "details", 0, "ts"), "1.5"), "ts"),
        (parse_okx, {"arg": {"channel": "liquidation-orders"}}, "data"),
        (parse_okx, "ping", "object"),
    ],
)
def test_malformed_frames_raise_frame_error_saying_what_is_wrong(parse, frame, message):
    with pytest.raises(FrameError, match=re.escape(message)) as error:
        parse(frame)
    assert len(str(error.value)) < 120  # short: no whole-frame dumps


@pytest.mark.parametrize("text", ['{"e":"forceOrder","E":17425584', "", "{]", b"\xff\xfe", "[" * 100_000])
def test_truncated_or_invalid_json_raises_frame_error(text):
    with pytest.raises(FrameError, match="invalid JSON"):
        decode(text)


def test_decode_keeps_text_pong_and_decodes_json():
    assert decode("pong") == "pong"
    assert decode(b'{"op":"pong"}') == {"op": "pong"}


JUNK = [None, True, 0, -1, 1e300, 10**400, float("nan"), "", "x", "1e999", [], {}, [1, 2], {"a": 1}, "Buy", "net", "SELL"]


def mutations(base, rng, count):
    """`count` copies of `base`, each with one random leaf replaced by junk or removed."""
    paths = []

    def walk(node, path):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            paths.append((*path, key))
            if isinstance(child, (dict, list)):
                walk(child, (*path, key))

    walk(base, ())
    for _ in range(count):
        path = rng.choice(paths)
        value = DELETE if rng.random() < 0.2 and not isinstance(path[-1], int) else rng.choice(JUNK)
        yield changed(base, path, value)


@pytest.mark.parametrize("venue", NUMBER_FIELDS)
def test_random_damage_gives_frame_error_or_sane_events_never_a_crash(venue):
    parse, base, _ = NUMBER_FIELDS[venue]
    rng = random.Random(venue)
    for frame in mutations(base, rng, 400):
        try:
            events = parse(frame)
        except FrameError:
            continue
        for event in events:
            assert 0 <= event.notional_usd <= 1e10
            assert event.liquidated in ("long", "short")
