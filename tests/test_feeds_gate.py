"""Gate futures.public_liquidates: the documented frames, the size sign, contracts x
quanto_multiplier x price (usdt) and one USD a contract (btc)."""

import json

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import control_error
from bot.feeds.venues import gate
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.single_venue import live_and_recorded
from tests.fakes.venue_ws import BASE_MS

# The Chinese page after the 2026-08-20 change, with the header X-Gate-Size-Decimal: 1
# (https://www.gate.io/docs/developers/futures/ws/zh_CN/, "公共强平订单推送").
DOC_EXAMPLE = {
    "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123,
    "result": [
        {"price": "215.1", "size": "-124.5", "time": 1541486601123, "contract": "BTC_USDT"},
        {"price": "215.2", "size": "-10.5", "time": 1541486601456, "contract": "BTC_USDT"},
    ],
}
# The same page: "未携带 X-Gate-Size-Decimal: 1 请求头时，size 为整型".
DOC_EXAMPLE_INTEGER_SIZES = {
    "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123,
    "result": [
        {"price": "215.1", "size": -124, "time": 1541486601123, "contract": "BTC_USDT"},
        {"price": "215.2", "size": -10, "time": 1541486601456, "contract": "BTC_USDT"},
    ],
}
# The English page (before the change): `time_ms`, a float price, a BTC-settled contract.
# (The page prints a trailing comma after "contract"; left out so that it is JSON.)
DOC_EXAMPLE_EN = {
    "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123,
    "result": [{"price": 215.1, "size": -124, "time_ms": 1541486601123, "contract": "BTC_USD"}],
}

# Entries shaped like GET /api/v4/futures/{settle}/contracts (BTC_USDT's multiplier
# as the docs' futures.contract_info example gives it).
USDT_CONTRACTS = [
    {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "order_size_min": 1, "in_delisting": False},
    {"name": "ETH_USDT", "type": "direct", "quanto_multiplier": "0.01", "order_size_min": 1, "in_delisting": False},
    {"name": "1000PEPE_USDT", "type": "direct", "quanto_multiplier": "10", "order_size_min": 1},
    {"name": "DEAD_USDT", "type": "direct", "quanto_multiplier": "0"},
]
BTC_CONTRACTS = [{"name": "BTC_USD", "type": "inverse", "quanto_multiplier": "0", "order_size_min": 1}]


@pytest.fixture(scope="module")
def book():
    return gate.contracts_book(USDT_CONTRACTS).merged(gate.contracts_book(BTC_CONTRACTS))


def liquidations(*items, channel="futures.public_liquidates"):
    return {"channel": channel, "event": "update", "time": 1742558400, "time_ms": 1742558400123, "result": list(items)}


def item(contract, size, price, time=1742558400000):
    return {"price": price, "size": size, "time": time, "contract": contract}


def test_doc_example_is_two_longs_of_btc_usdt_priced_to_the_cent(book):
    first, second = gate.parse(DOC_EXAMPLE, book, stream="usdt")
    assert (first.venue, first.stream, first.instrument, first.asset) == ("gate", "usdt", "BTC_USDT", "BTC")
    assert first.liquidated is second.liquidated is Side.LONG
    assert (first.quantity, first.price, first.at_ms) == (124.5, 215.1, 1541486601123)
    assert first.notional_usd == 2.68  # 124.5 contracts x 0.0001 BTC x 215.1
    assert second.notional_usd == 0.23  # 10.5 x 0.0001 x 215.2 = 0.22596


def test_doc_example_without_the_decimal_header_has_integer_sizes(book):
    first, second = gate.parse(DOC_EXAMPLE_INTEGER_SIZES, book, stream="usdt")
    assert (first.quantity, first.notional_usd) == (124, 2.67)  # 124 x 0.0001 x 215.1 = 2.66724
    assert (second.quantity, second.notional_usd) == (10, 0.22)


def test_english_doc_example_reads_time_ms_and_prices_the_inverse_contract_in_usd(book):
    [event] = gate.parse(DOC_EXAMPLE_EN, book, stream="btc")
    assert (event.stream, event.instrument, event.asset, event.liquidated) == ("btc", "BTC_USD", "BTC", Side.LONG)
    assert event.notional_usd == 124.0  # 124 contracts of 1 USD, whatever the price
    assert event.at_ms == 1541486601123


def test_negative_size_is_a_sold_long_positive_a_bought_short(book):
    sold, bought = gate.parse(liquidations(item("ETH_USDT", "-3", "2000"), item("ETH_USDT", "3", "2000")), book, stream="usdt")
    assert (sold.liquidated, bought.liquidated) == (Side.LONG, Side.SHORT)
    assert sold.quantity == bought.quantity == 3


def test_linear_notional_is_contracts_times_quanto_multiplier_times_price(book):
    [event] = gate.parse(liquidations(item("ETH_USDT", "-350", "3012.34")), book, stream="usdt")
    assert event.notional_usd == 10_543.19  # 350 x 0.01 ETH x 3012.34
    [pepe] = gate.parse(liquidations(item("1000PEPE_USDT", 1200, "0.0123456")), book, stream="usdt")
    assert (pepe.asset, pepe.liquidated, pepe.notional_usd) == ("PEPE", Side.SHORT, 148.15)  # 1200 x 10 x 0.0123456


def test_inverse_notional_is_one_usd_a_contract_whatever_the_price(book):
    [event] = gate.parse(liquidations(item("BTC_USD", "2500", "97000.5")), book, stream="btc")
    assert (event.liquidated, event.notional_usd, event.price) == (Side.SHORT, 2_500.0, 97_000.5)


def test_contracts_without_a_usable_multiplier_are_left_out_of_the_book(book):
    assert set(book) == {"BTC_USDT", "ETH_USDT", "1000PEPE_USDT", "BTC_USD"}
    assert book["BTC_USD"].inverse and not book["ETH_USDT"].inverse


def test_unknown_contract_keeps_the_priced_events_of_the_frame(book):
    frame = liquidations(item("BTC_USDT", "-10", "90000"), item("NEW_USDT", "-5", "1"), item("NEW_USDT", "5", "1"))
    with pytest.raises(UnknownInstrument) as unknown:
        gate.parse(frame, book, stream="usdt")
    assert unknown.value.instruments == ("NEW_USDT",) and unknown.value.unpriced_count == 2
    [priced] = unknown.value.events
    assert (priced.instrument, priced.notional_usd) == ("BTC_USDT", 90.0)


@pytest.mark.parametrize(
    "control",
    [
        {"time": 1545404023, "time_ms": 1545404023123, "channel": "futures.pong", "event": "", "result": None},
        {"time": 1545459681, "time_ms": 1545459681123, "channel": "futures.public_liquidates", "event": "subscribe",
         "result": {"status": "success"}},
        {"type": "upgrade", "msg": "The connection will soon be closed for a service upgrade. Please reconnect."},
    ],
)
def test_pongs_acks_and_notices_give_no_events(control, book):
    assert gate.parse(control, book, stream="usdt") == []


def test_subscribe_errors_are_reported_for_the_log():
    error = {"time": 1, "channel": "futures.public_liquidates", "event": "subscribe",
             "error": {"code": 2, "message": "unknown contract"}, "result": {"status": "failed"}}
    assert gate.parse(error, stream="usdt") == []
    assert control_error("gate", error) == "'subscribe' error 2: 'unknown contract'"
    assert control_error("gate", DOC_EXAMPLE) is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (liquidations(item("BTC_USDT", "0", "1")), "size out of range"),
        (liquidations(item("BTC_USDT", True, "1")), "size is not a number"),
        (liquidations(item("BTC_USDT", "-1", "0")), "price"),
        (liquidations(item("BTC_USDT", "-1", "1", time=1541486601)), "time out of range"),  # seconds, not ms
        (liquidations({"price": "1", "size": "-1", "contract": "BTC_USDT"}), "result[].time"),
        (liquidations(item("", "-1", "1")), "contract"),
        (liquidations(item("BTC_USDT", "-0.00001", "1")), "cent"),  # 0.000000001 USD
        ({"channel": "futures.public_liquidates", "event": "update", "result": {}}, "list"),
        ({"channel": "futures.tickers", "event": "update", "result": []}, "channel"),
        ({"channel": "futures.public_liquidates", "event": "all", "result": []}, "event"),
        ({"event": "update"}, "channel"),
        ("futures.pong", "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, message, book):
    with pytest.raises(FrameError, match=message.replace("[", r"\[").replace("]", r"\]")):
        gate.parse(frame, book, stream="usdt")


def test_error_bodies_and_bad_shapes_of_the_contracts_endpoint_are_frame_errors():
    with pytest.raises(FrameError, match="INVALID_PARAM_VALUE"):
        gate.contracts_book({"label": "INVALID_PARAM_VALUE", "message": "settle"})
    with pytest.raises(FrameError, match="not a list"):
        gate.contracts_book({"data": []})
    with pytest.raises(FrameError, match="entry"):
        gate.contracts_book(["BTC_USDT"])


def test_requests_carry_the_send_time_in_seconds():
    [subscribe] = gate.STREAMS[0].subscribe(())
    stamped = json.loads(gate.stamp(subscribe, 1_742_558_400_999))
    assert stamped == {"time": 1_742_558_400, "channel": "futures.public_liquidates", "event": "subscribe", "payload": ["!all"]}
    assert json.loads(gate.stamp(gate.PING_MESSAGE, 1_742_558_401_000)) == {"time": 1_742_558_401, "channel": "futures.ping"}


async def test_liqbot_records_both_gate_streams_with_their_contract_sizes_and_a_replay_stores_them_once(store, tmp_path):
    rest = FakeVenueRest()
    rest.bodies["/api/v4/futures/usdt/contracts"] = lambda params: USDT_CONTRACTS
    rest.bodies["/api/v4/futures/btc/contracts"] = lambda params: BTC_CONTRACTS
    at = BASE_MS - 5_000
    frames = {
        "usdt": [
            liquidations(item("BTC_USDT", "0", "97000.1", at)),  # a zero size is no liquidation
            liquidations(item("BTC_USDT", "-125", "97000.1", at), item("ETH_USDT", "40", "2500", at + 1)),
        ],
        "btc": [liquidations(item("BTC_USD", "-3000", "96990.5", at + 2))],
    }
    trip = await live_and_recorded(store, tmp_path, "gate", frames, expected_events=3, rest=rest)
    assert [(e.stream, e.instrument, e.liquidated, e.notional_usd) for e in sorted(trip.live, key=lambda e: e.at_ms)] == [
        ("usdt", "BTC_USDT", Side.LONG, 1_212.5),  # 125 x 0.0001 BTC x 97000.1
        ("usdt", "ETH_USDT", Side.SHORT, 1_000.0),  # 40 x 0.01 ETH x 2500
        ("btc", "BTC_USD", Side.LONG, 3_000.0),  # 3000 contracts of 1 USD
    ]
    assert trip.replayed == trip.live and trip.replayed_again == 0
    assert trip.live_bad_frames == trip.replay_bad_lines == 1  # counted live and on replay, skipped
    for settle, server in trip.servers.items():
        # Decimal sizes asked for at every handshake; every request stamped with the
        # (virtual) send time, which Gate wants within 60 s of its own.
        assert all(headers.get("X-Gate-Size-Decimal") == "1" for headers in server.request_headers)
        assert [r["payload"] for r in server.subscribe_requests] == [["!all"], ["!all"]]
        sent_times = [json.loads(m)["time"] for m in server.received]
        assert all(abs(t - BASE_MS // 1000) < 60 for t in sent_times) and server.app_pings >= 2
    rest_lines = [json.loads(line)["rest"]["path"] for line in trip.recording.read_text().splitlines() if '"rest"' in line]
    assert sorted(set(rest_lines)) == ["/api/v4/futures/btc/contracts", "/api/v4/futures/usdt/contracts"]
