"""ContractBook from the venues' real REST bodies."""

import json
from pathlib import Path

import pytest

from bot.feeds.errors import FrameError
from bot.feeds.instruments import ContractBook, ContractSpec
from bot.feeds.venues import apply_rest
from bot.feeds.venues.binance import coinm_exchange_info_book
from bot.feeds.venues.okx import instruments_book
from bot.feeds.synthetic import binance_coinm_exchange_info_body, okx_swap_instruments_body

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_okx_real_instruments_give_linear_and_inverse_sizes():
    book = instruments_book(okx_swap_instruments_body())
    assert len(book) == 166
    assert book["BTC-USDT-SWAP"] == ContractSpec(0.01, inverse=False)  # 0.01 BTC
    assert book["BTC-USD-SWAP"] == ContractSpec(100.0, inverse=True)  # 100 USD
    assert book["ETH-USD-SWAP"] == ContractSpec(10.0, inverse=True)
    assert book["IOST-USDT-SWAP"] == ContractSpec(1000.0, inverse=False)
    assert book.get("NOPE-USDT-SWAP") is None


def test_binance_real_exchange_info_gives_usd_contract_sizes():
    book = coinm_exchange_info_book(binance_coinm_exchange_info_body())
    assert len(book) == 36
    assert book["BTCUSD_PERP"] == ContractSpec(100.0, inverse=True)
    assert book["BTCUSD_211231"] == ContractSpec(100.0, inverse=True)
    assert book["ETHUSD_PERP"] == ContractSpec(10.0, inverse=True)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_packaged_copies_price_exactly_like_the_recorded_responses():
    okx = json.loads((SHARED_DATA / "okx-instruments-swap-2022-05-13.json").read_text())
    coinm = json.loads((SHARED_DATA / "binance-coinm-exchangeinfo-2021-07-22.json").read_text())
    assert dict(instruments_book(okx)) == dict(instruments_book(okx_swap_instruments_body()))
    assert dict(coinm_exchange_info_book(coinm)) == dict(
        coinm_exchange_info_book(binance_coinm_exchange_info_body())
    )


def test_ct_mult_scales_the_contract_and_unusable_entries_are_left_out():
    body = {
        "code": "0",
        "msg": "",
        "data": [
            {"instId": "X-USDT-SWAP", "ctType": "linear", "ctVal": "10", "ctMult": "2", "ctValCcy": "X"},
            {"instId": "Y-USD-SWAP", "ctType": "inverse", "ctVal": "10", "ctMult": "1", "ctValCcy": "Y"},
            {"instId": "Z-USDT-SWAP", "ctType": "linear", "ctVal": "", "ctMult": "1"},
            {"instId": "W-USDT-SWAP", "ctType": "", "ctVal": "1", "ctMult": "1"},
        ],
    }
    book = instruments_book(body)
    assert dict(book) == {"X-USDT-SWAP": ContractSpec(20.0, inverse=False)}


def test_apply_rest_merges_newer_sizes_and_ignores_unknown_paths():
    old = ContractBook({"BTC-USD-SWAP": ContractSpec(50.0, inverse=True), "OLD-USD-SWAP": ContractSpec(1.0, inverse=True)})
    new = apply_rest(old, "/api/v5/public/instruments?instType=SWAP", okx_swap_instruments_body())
    assert new["BTC-USD-SWAP"].size == 100.0  # the refresh wins
    assert new["OLD-USD-SWAP"].size == 1.0  # delisted ones stay for old frames
    assert old["BTC-USD-SWAP"].size == 50.0  # books are immutable
    coinm = apply_rest(ContractBook(), "/dapi/v1/exchangeInfo", binance_coinm_exchange_info_body())
    assert coinm["BTCUSD_PERP"].size == 100.0
    assert apply_rest(old, "/fapi/v1/premiumIndex", [{"symbol": "BTCUSDT"}]) is old


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v5/public/instruments?instType=SWAP", {"code": "50011", "msg": "Too Many Requests", "data": []}),
        ("/api/v5/public/instruments?instType=SWAP", {"code": "0", "data": {}}),
        ("/api/v5/public/instruments?instType=SWAP", [1]),
        ("/dapi/v1/exchangeInfo", {"code": -1003, "msg": "Too many requests"}),
        ("/dapi/v1/exchangeInfo", {"symbols": ["BTCUSD_PERP"]}),
    ],
)
def test_error_or_malformed_metadata_bodies_raise_frame_error(path, body):
    with pytest.raises(FrameError):
        apply_rest(ContractBook(), path, body)


def test_a_contract_size_above_float_range_is_left_out_not_a_crash():
    # stdlib json (httpx's Response.json) turns 1e400 written as digits into an int float() cannot take.
    coinm = coinm_exchange_info_book(
        {"symbols": [{"symbol": "BTCUSD_PERP", "contractSize": 10**400}, {"symbol": "ETHUSD_PERP", "contractSize": 10}]}
    )
    assert "BTCUSD_PERP" not in coinm and coinm["ETHUSD_PERP"] == ContractSpec(10.0, inverse=True)
    okx = instruments_book(
        {"code": "0", "data": [{"instId": "BTC-USDT-SWAP", "ctType": "linear", "ctVal": 10**400, "ctMult": "1"}]}
    )
    assert len(okx) == 0
