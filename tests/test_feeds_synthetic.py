"""Synthetic frames are what the venues send: encode -> parse is the identity."""

import random

import pytest

from bot.core.models import Side
from bot.feeds.recording import decoder_for
from bot.feeds.synthetic import LiquidationSpec, batch_frame_for, frame_for, reference_books

FUTURES = ["BTC-USD-250328", "BTC-USDT-250328"]
BOOKS = reference_books(FUTURES)

# (venue, stream, instrument, typical price, asset)
INSTRUMENTS = [
    ("binance", "usdm", "BTCUSDT", 65_000, "BTC"),
    ("binance", "usdm", "1000PEPEUSDT", 0.012, "PEPE"),
    ("binance", "coinm", "BTCUSD_PERP", 65_000, "BTC"),
    ("binance", "coinm", "ETHUSD_211231", 3_000, "ETH"),
    ("bybit", "linear", "SOLUSDT", 150, "SOL"),
    ("bybit", "linear", "10000LADYSUSDT", 0.0004, "LADYS"),
    ("bybit", "inverse", "BTCUSD", 65_000, "BTC"),
    ("bybit", "inverse", "ETHUSDH26", 3_000, "ETH"),
    ("okx", "public", "BTC-USDT-SWAP", 65_000, "BTC"),
    ("okx", "public", "IOST-USDT-SWAP", 0.0078, "IOST"),
    ("okx", "public", "BTC-USD-SWAP", 65_000, "BTC"),
    ("okx", "public", "BTC-USD-250328", 66_000, "BTC"),
    ("okx", "public", "BTC-USDT-250328", 66_000, "BTC"),
]


def expected_notional_usd(spec):
    """The DESIGN venue table, written out independently of the parsers."""
    if (spec.venue, spec.stream) in (("binance", "usdm"), ("bybit", "linear")):
        return spec.quantity * spec.price
    if spec.stream == "inverse":
        return spec.quantity
    contract = BOOKS[spec.venue][spec.instrument]
    return spec.quantity * contract.size * (1 if contract.inverse else spec.price)


def random_specs(rng, count):
    for _ in range(count):
        venue, stream, instrument, price, asset = rng.choice(INSTRUMENTS)
        unit_is_contracts = venue == "okx" or stream == "coinm"
        spec = LiquidationSpec(
            venue,
            stream,
            instrument,
            rng.choice([Side.LONG, Side.SHORT]),
            round(price * rng.uniform(0.5, 1.5), 8),
            float(rng.randint(1, 5000)) if unit_is_contracts else round(rng.uniform(0.001, 50_000), 3),
            1742558400000 + rng.randint(0, 86_400_000),
        )
        yield spec, asset


@pytest.mark.parametrize("okx_net_mode", [False, True])
def test_round_trip_keeps_side_asset_and_notional_to_the_cent(okx_net_mode):
    rng = random.Random(7)
    for spec, asset in random_specs(rng, 500):
        frame = frame_for(spec, okx_net_mode=okx_net_mode)
        [event] = decoder_for(spec.venue, spec.stream)(frame, BOOKS.get(spec.venue))
        assert event.liquidated is spec.liquidated, spec
        assert event.asset == asset
        assert event.notional_usd == round(expected_notional_usd(spec), 2), spec
        assert (event.instrument, event.price, event.quantity, event.at_ms) == (
            spec.instrument, spec.price, spec.quantity, spec.at_ms,
        )


def test_an_event_re_encodes_to_itself():
    spec = LiquidationSpec("okx", "public", "BTC-USDT-SWAP", Side.SHORT, 65000.5, 150.0, 1742558400000)
    [event] = decoder_for("okx", "public")(frame_for(spec), BOOKS["okx"])
    assert decoder_for("okx", "public")(frame_for(event), BOOKS["okx"]) == [event]


def test_frames_look_like_the_venues_own():
    long = LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 0.00001234, 2.5, 1742558400000)
    order = frame_for(long)["o"]
    assert (order["S"], order["ap"], order["z"], order["q"], order["X"]) == ("SELL", "0.00001234", "2.5", "2.5", "FILLED")
    assert float(order["p"]) < float(order["ap"])  # a SELL's limit sits below its fill
    bybit = frame_for(LiquidationSpec("bybit", "linear", "BTCUSDT", Side.LONG, 65000.0, 1.0, 1742558400000))
    assert bybit["topic"] == "allLiquidation.BTCUSDT"
    assert bybit["data"][0]["S"] == "Buy" and bybit["data"][0]["p"] == "65000"
    okx_net = frame_for(LiquidationSpec("okx", "public", "BTC-USD-250328", Side.SHORT, 1.0, 1.0, 1), okx_net_mode=True)
    assert okx_net["arg"] == {"channel": "liquidation-orders", "instType": "FUTURES"}
    assert (okx_net["data"][0]["details"][0]["posSide"], okx_net["data"][0]["details"][0]["side"]) == ("net", "buy")


def test_batch_frames_group_like_the_venues():
    specs = [
        LiquidationSpec("okx", "public", instrument, Side.LONG, 65000.0, 10.0, 1742558400000 + i)
        for i, instrument in enumerate(["BTC-USDT-SWAP", "BTC-USD-SWAP", "BTC-USDT-SWAP"])
    ]
    frame = batch_frame_for(specs)
    assert [(entry["instId"], len(entry["details"])) for entry in frame["data"]] == [("BTC-USDT-SWAP", 2), ("BTC-USD-SWAP", 1)]
    events = decoder_for("okx", "public")(frame, BOOKS["okx"])
    assert sorted(event.notional_usd for event in events) == [1_000.0, 6_500.0, 6_500.0]
    with pytest.raises(ValueError):
        batch_frame_for([LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 1.0, 1.0, 1)] * 2)
    with pytest.raises(ValueError):
        batch_frame_for([specs[0], LiquidationSpec("okx", "public", "BTC-USD-250328", Side.LONG, 1.0, 1.0, 1)])
