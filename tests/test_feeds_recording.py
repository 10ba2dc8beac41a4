"""The JSON Lines recording format and RecordingDecoder."""

import json

import pytest

from bot.core.models import Side, Window
from bot.feeds.venues import binance
from bot.feeds.recording import RecordingDecoder, decoder_for, frame_line, rest_line
from bot.feeds.venues import STREAMS
from bot.feeds.synthetic import LiquidationSpec, frame_for, metadata_lines

T0 = 1742558400000


def spec(venue, stream, instrument, liquidated=Side.LONG, price=65000.0, quantity=2.0, at_ms=T0):
    return LiquidationSpec(venue, stream, instrument, liquidated, price, quantity, at_ms)


def test_lines_are_one_compact_json_object_each():
    frame = frame_for(spec("binance", "usdm", "BTCUSDT"))
    line = frame_line("binance", "usdm", T0 + 7, frame)
    assert "\n" not in line
    assert json.loads(line) == {"venue": "binance", "stream": "usdm", "at": T0 + 7, "frame": frame}
    assert json.loads(frame_line("okx", "public", T0, "pong"))["frame"] == "pong"
    rest = rest_line("okx", T0, "/api/v5/public/instruments?instType=SWAP", {"code": "0", "data": []})
    assert json.loads(rest) == {
        "venue": "okx",
        "at": T0,
        "rest": {"path": "/api/v5/public/instruments?instType=SWAP", "body": {"code": "0", "data": []}},
    }
    with pytest.raises(ValueError):
        frame_line("nosuchvenue", "futures", T0, {})
    with pytest.raises(ValueError):
        rest_line("nosuchvenue", T0, "/", {})


def test_one_dispatch_table_covers_every_venue_stream():
    assert {venue: STREAMS[venue] for venue in ("binance", "bybit", "okx")} == {
        "binance": ("usdm", "coinm"), "bybit": ("linear", "inverse"), "okx": ("public",),
    }
    assert STREAMS["bitget"] == ("usdt-futures", "coin-futures", "usdc-futures")
    assert STREAMS["gate"] == ("usdt", "btc")
    assert STREAMS["htx"] == ("linear-swap", "swap")
    assert decoder_for("binance", "coinm") is binance.parse_coinm
    with pytest.raises(ValueError):
        decoder_for("binance", "spot")


def test_decoder_replays_a_mixed_recording_and_counts_everything():
    lines = [
        *metadata_lines(T0),
        frame_line("binance", "usdm", T0 + 10, frame_for(spec("binance", "usdm", "BTCUSDT", quantity=0.5))),
        frame_line("binance", "coinm", T0 + 20, frame_for(spec("binance", "coinm", "BTCUSD_PERP", quantity=3))),
        frame_line("bybit", "linear", T0 + 30, frame_for(spec("bybit", "linear", "ETHUSDT", Side.SHORT, 3000, 2))),
        frame_line("bybit", "inverse", T0 + 40, frame_for(spec("bybit", "inverse", "BTCUSD", quantity=5000))),
        frame_line("okx", "public", T0 + 50, frame_for(spec("okx", "public", "BTC-USD-SWAP", quantity=4))),
        frame_line("okx", "public", T0 + 60, "pong"),
        frame_line("okx", "public", T0 + 70, {"event": "error", "code": "60012", "msg": "Invalid request"}),
        frame_line("bybit", "linear", T0 + 80, {"success": True, "ret_msg": "pong", "op": "ping"}),
        "",
    ]
    decoder = RecordingDecoder()
    events = [event for line in lines for event in decoder.feed(line)]
    assert [(e.venue, e.asset, e.liquidated, e.notional_usd) for e in events] == [
        ("binance", "BTC", Side.LONG, 32_500.0),  # 0.5 BTC x 65000
        ("binance", "BTC", Side.LONG, 300.0),  # 3 contracts x 100 USD
        ("bybit", "ETH", Side.SHORT, 6_000.0),
        ("bybit", "BTC", Side.LONG, 5_000.0),
        ("okx", "BTC", Side.LONG, 400.0),  # 4 contracts x 100 USD
    ]
    stats = decoder.stats
    assert (stats.frames, stats.rest_responses, stats.events) == (8, 2, 5)
    assert (stats.bad_lines, stats.unpriced_events, stats.venue_errors) == (0, 0, 1)
    assert stats.error_samples == ["line 9: okx/public sent error '60012': 'Invalid request'"]
    assert decoder.spans() == {
        ("binance", "usdm"): Window(T0 + 10, T0 + 11),
        ("binance", "coinm"): Window(T0 + 20, T0 + 21),
        ("bybit", "linear"): Window(T0 + 30, T0 + 81),
        ("bybit", "inverse"): Window(T0 + 40, T0 + 41),
        ("okx", "public"): Window(T0 + 50, T0 + 71),
    }


def test_rest_line_prices_what_was_unpriced_before_it():
    okx_frame = frame_line("okx", "public", T0, frame_for(spec("okx", "public", "BTC-USDT-SWAP", quantity=100)))
    decoder = RecordingDecoder()
    assert decoder.feed(okx_frame) == []
    assert decoder.stats.unpriced_events == 1
    assert decoder.stats.unknown_instruments == {"BTC-USDT-SWAP"}
    assert decoder.stats.error_samples == ["line 1: okx/public: no contract size for BTC-USDT-SWAP"]
    decoder.feed(metadata_lines(T0)[0])
    [event] = decoder.feed(okx_frame)
    assert event.notional_usd == 65_000.0  # 100 x 0.01 BTC x 65000
    assert (decoder.stats.events, decoder.stats.bad_lines) == (1, 0)


@pytest.mark.parametrize(
    ("line", "sample"),
    [
        ('{"venue":"okx","stream":"public","at":1742558400000,"frame":{"arg"', "line is not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"venue":"nosuchvenue","stream":"futures","at":1,"frame":{}}', "unknown venue/stream"),
        ('{"venue":"binance","stream":"usdm","at":"soon","frame":{}}', "'at'"),
        ('{"venue":"binance","stream":"usdm","at":1}', "neither"),
        ('{"venue":"binance","stream":"usdm","at":1,"frame":{"e":"forceOrder","o":{"s":"BTCUSDT"}}}', "binance/usdm: missing field o.S"),
        ('{"venue":"nosuchvenue","at":1,"rest":{"path":"/x","body":{}}}', "unknown venue"),
        ('{"venue":"okx","at":1,"rest":{"body":{}}}', "'path'"),
        ('{"venue":"okx","at":1,"rest":{"path":"/api/v5/public/instruments","body":{"code":"50011"}}}', "okx REST"),
        ("\xff" * 10, "line is not JSON"),
        ("[" * 100_000, "line is not JSON"),
    ],
)
def test_bad_lines_are_counted_never_raised(line, sample):
    decoder = RecordingDecoder()
    assert decoder.feed(line) == []
    assert decoder.stats.bad_lines == 1
    assert decoder.stats.events == 0
    [message] = decoder.stats.error_samples
    assert sample in message and message.startswith("line 1: ")


def test_an_order_that_rounds_to_no_cent_is_a_bad_frame_not_an_event():
    # 0.04 DOGE at $0.1 = $0.004: $0.00 to the cent, a unit mix-up rather than a liquidation.
    spec = LiquidationSpec("binance", "usdm", "DOGEUSDT", Side.LONG, 0.1, 0.04, T0)
    decoder = RecordingDecoder()
    assert decoder.feed(frame_line("binance", "usdm", T0, frame_for(spec))) == []
    assert (decoder.stats.bad_lines, decoder.stats.events) == (1, 0)
    assert "cent" in decoder.stats.error_samples[0]


def test_error_samples_are_capped_and_counting_goes_on():
    decoder = RecordingDecoder(max_error_samples=3)
    for _ in range(10):
        decoder.feed("not json")
    assert decoder.stats.bad_lines == 10
    assert len(decoder.stats.error_samples) == 3


def test_unknown_instrument_in_a_frame_keeps_the_priced_events():
    frame = {
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [
            {"instId": "BTC-USD-SWAP", "instType": "SWAP",
             "details": [{"bkPx": "65000", "posSide": "short", "side": "buy", "sz": "7", "ts": str(T0)}]},
            {"instId": "NEWCOIN-USDT-SWAP", "instType": "SWAP",
             "details": [{"bkPx": "1", "posSide": "long", "side": "sell", "sz": "9", "ts": str(T0)}]},
        ],
    }
    decoder = RecordingDecoder()
    decoder.feed(metadata_lines(T0)[0])
    [event] = decoder.feed(frame_line("okx", "public", T0, frame))
    assert (event.liquidated, event.notional_usd) == (Side.SHORT, 700.0)
    assert (decoder.stats.events, decoder.stats.unpriced_events, decoder.stats.bad_lines) == (1, 1, 0)
