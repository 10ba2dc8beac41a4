"""asset_of: every venue's naming scheme maps to the asset users ask about."""

import pytest

from bot.core.symbols import asset_of


@pytest.mark.parametrize(
    ("instrument", "asset"),
    [
        ("BTCUSDT", "BTC"),  # Binance USD-M, Bybit linear
        ("BTCUSDC", "BTC"),
        ("BTC-USDT-SWAP", "BTC"),  # OKX linear swap
        ("BTC-USD-SWAP", "BTC"),  # OKX inverse swap
        ("BTC-USDT-250328", "BTC"),  # OKX futures
        ("BTC-USD-250328", "BTC"),
        ("BTCUSD_PERP", "BTC"),  # Binance COIN-M perpetual
        ("BTCUSD_250627", "BTC"),  # Binance COIN-M delivery
        ("BTCUSDT_250328", "BTC"),  # Binance USD-M delivery
        ("BTCUSD", "BTC"),  # Bybit inverse perpetual
        ("BTCUSDZ25", "BTC"),  # Bybit inverse futures
        ("BTCUSDH26", "BTC"),
        ("ETHUSDM26", "ETH"),
        ("BTC-26DEC25", "BTC"),  # Bybit USDC futures
        ("BTCUSDT-26DEC25", "BTC"),  # Bybit USDT futures
        ("BTCPERP", "BTC"),  # Bybit USDC perpetual
        ("ETHPERP", "ETH"),
        ("1000PEPEUSDT", "PEPE"),
        ("1000000MOGUSDT", "MOG"),
        ("10000LADYSUSDT", "LADYS"),
        ("1000SHIBUSDT", "SHIB"),
        ("SHIB1000USDT", "SHIB"),  # Bybit puts the scale after the name
        ("1MBABYDOGEUSDT", "BABYDOGE"),  # Binance writes a million as 1M
        ("1INCHUSDT", "1INCH"),  # a name that starts with a digit keeps it
        ("1INCH-USD-SWAP", "1INCH"),
        ("ETHFDUSD", "ETH"),
        ("SOLUSDT", "SOL"),
        ("IOST-USDT-SWAP", "IOST"),
    ],
)
def test_asset_of_maps_every_venue_naming_to_the_asset(instrument, asset):
    assert asset_of(instrument) == asset


def test_asset_of_never_returns_an_empty_asset():
    assert asset_of("USDT") == "USDT"
    assert asset_of("1000") == "1000"
