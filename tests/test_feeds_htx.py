"""HTX public.*.liquidation_orders: the documented frames, the order direction
(sell = a long liquidated), trade_turnover (USDT-M) and contracts x contract_size
(coin-M), gzip and the ping HTX expects an answer to."""

import gzip
import json

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import control_error
from bot.feeds.venues import htx
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.single_venue import live_and_recorded
from tests.fakes.venue_ws import HTX_PING

# "[General] Subscribe Liquidation Orders (no authentication)", Example of a Data Update
# (https://www.htx.com/en-us/opend/newApiPages/?id=8cb7e25d-77b5-11ed-9966-0242ac110003).
DOC_EXAMPLE_LINEAR = {
    "op": "notify", "topic": "public.O3-USDT.liquidation_orders", "ts": 1639122193214,
    "data": [{
        "symbol": "O3", "contract_code": "O3-USDT", "direction": "sell", "offset": "close", "volume": 432,
        "price": 0.7858, "created_at": 1639122193172, "amount": 432, "trade_turnover": 339.4656,
        "contract_type": "swap", "pair": "O3-USDT", "business_type": "swap",
    }],
}
# Coin-M "Subscribe Liquidation Orders (no authentication)", Example of a Data Update
# (https://www.htx.com/en-us/opend/newApiPages/?id=5d51592a-77b6-11ed-9966-0242ac110003).
DOC_EXAMPLE_INVERSE = {
    "op": "notify", "topic": "public.BTC-USD.liquidation_orders", "ts": 1603879731301,
    "data": [{
        "contract_code": "BTC-USD", "symbol": "BTC", "direction": "buy", "offset": "close", "volume": 173,
        "price": 17102.9, "created_at": 1606381842485, "amount": 1.0115243613656164,
    }],
}
DOC_SUBSCRIBED = {"op": "sub", "cid": "40sG903yz80oDFWr", "topic": "public.BTC-USDT.liquidation_orders", "ts": 1670903745088, "err-code": 0}
DOC_PING = {"op": "ping", "ts": "1492420473058"}

# Shaped like GET /swap-api/v1/swap_contract_info.
CONTRACT_INFO = {
    "status": "ok",
    "data": [
        {"symbol": "BTC", "contract_code": "BTC-USD", "contract_size": 100.0, "price_tick": 0.1, "contract_status": 1},
        {"symbol": "ETH", "contract_code": "ETH-USD", "contract_size": 10.0, "price_tick": 0.01, "contract_status": 1},
        {"symbol": "OLD", "contract_code": "OLD-USD", "contract_size": None},
    ],
    "ts": 1742558400000,
}


@pytest.fixture(scope="module")
def book():
    return htx.contract_info_book(CONTRACT_INFO)


def notify(code, *items):
    return {"op": "notify", "topic": f"public.{code}.liquidation_orders", "ts": 1742558400100, "data": list(items)}


def order(code, direction, volume, price, turnover=None, offset="close", created_at=1742558400000):
    entry = {"contract_code": code, "symbol": code.split("-")[0], "direction": direction, "offset": offset,
             "volume": volume, "price": price, "created_at": created_at, "amount": 1}
    if turnover is not None:
        entry["trade_turnover"] = turnover
    return entry


def test_linear_doc_example_is_a_sold_long_worth_its_trade_turnover():
    [event] = htx.parse(DOC_EXAMPLE_LINEAR, stream="linear-swap")
    assert (event.venue, event.stream, event.instrument, event.asset) == ("htx", "linear-swap", "O3-USDT", "O3")
    assert event.liquidated is Side.LONG
    assert (event.quantity, event.price, event.notional_usd) == (432, 0.7858, 339.47)  # 432 x 0.7858 = 339.4656
    assert event.at_ms == 1639122193172


def test_inverse_doc_example_is_a_bought_short_of_173_contracts_of_100_usd(book):
    [event] = htx.parse(DOC_EXAMPLE_INVERSE, book, stream="swap")
    assert (event.stream, event.instrument, event.asset, event.liquidated) == ("swap", "BTC-USD", "BTC", Side.SHORT)
    assert (event.quantity, event.notional_usd) == (173, 17_300.0)
    # The frame's own coin amount agrees: 17,300 USD / 17102.9 = 1.0115... BTC.
    assert event.notional_usd / event.price == pytest.approx(DOC_EXAMPLE_INVERSE["data"][0]["amount"])


def test_direction_is_the_liquidation_order_sell_closes_a_long_buy_a_short():
    sold, bought, one_way = htx.parse(
        notify("BTC-USDT", order("BTC-USDT", "sell", 10, 90000, 900), order("BTC-USDT", "buy", 10, 90000, 900),
               order("BTC-USDT", "sell", 10, 90000, 900, offset="both")),
        stream="linear-swap",
    )
    assert (sold.liquidated, bought.liquidated, one_way.liquidated) == (Side.LONG, Side.SHORT, Side.LONG)


def test_linear_notional_is_trade_turnover_to_the_cent_whatever_the_contract_size():
    [event] = htx.parse(notify("ETH-USDT", order("ETH-USDT", "sell", 500, 2446.26, "12231.304")), stream="linear-swap")
    assert (event.quantity, event.notional_usd) == (500, 12_231.3)


def test_inverse_notional_is_contracts_times_contract_size_whatever_the_price(book):
    [event] = htx.parse(notify("ETH-USD", order("ETH-USD", "sell", "37", "1980.55")), book, stream="swap")
    assert (event.liquidated, event.notional_usd) == (Side.LONG, 370.0)


def test_an_inverse_contract_missing_from_the_book_keeps_the_priced_events(book):
    frame = notify("*", order("BTC-USD", "buy", 1, 90000), order("NEW-USD", "buy", 2, 1), order("OLD-USD", "sell", 3, 1))
    with pytest.raises(UnknownInstrument) as unknown:
        htx.parse(frame, book, stream="swap")
    assert unknown.value.instruments == ("NEW-USD", "OLD-USD") and unknown.value.unpriced_count == 2
    assert [e.notional_usd for e in unknown.value.events] == [100.0]


def test_frames_arrive_gzipped_and_are_inflated_to_the_json_we_record():
    packed = gzip.compress(json.dumps(DOC_EXAMPLE_LINEAR).encode())
    assert json.loads(htx.inflate(packed)) == DOC_EXAMPLE_LINEAR
    assert htx.inflate('{"op":"notify"}') == '{"op":"notify"}'  # text frames pass as they are
    with pytest.raises(FrameError, match="not gzip"):
        htx.inflate(b"\x00\x01 not gzip")


def test_a_frame_that_inflates_beyond_the_cap_is_refused():
    bomb = gzip.compress(b" " * (htx.MAX_INFLATED_BYTES + 1))
    with pytest.raises(FrameError, match="inflates to more than"):
        htx.inflate(bomb)


def test_htx_pings_are_answered_with_the_same_ts_and_other_frames_are_not():
    assert json.loads(htx.answer(DOC_PING)) == {"op": "pong", "ts": "1492420473058"}
    assert json.loads(htx.answer({"op": "ping", "ts": 1492420473058})) == {"op": "pong", "ts": 1492420473058}
    assert htx.answer(DOC_EXAMPLE_LINEAR) is None and htx.answer(DOC_SUBSCRIBED) is None


@pytest.mark.parametrize("control", [DOC_PING, DOC_SUBSCRIBED, {"op": "close", "ts": 1}, {"op": "unsub", "topic": htx.TOPIC, "err-code": 0}])
def test_pings_acks_and_closes_give_no_events(control):
    assert htx.parse(control, stream="linear-swap") == []


def test_error_replies_are_reported_for_the_log():
    error = {"op": "sub", "cid": "liqbot", "topic": "public.BTC-USDT.liquidation_orders", "ts": 1, "err-code": 2011, "err-msg": "invalid topic"}
    assert htx.parse(error, stream="linear-swap") == []
    assert control_error("htx", error) == "'sub' error 2011: 'invalid topic'"
    assert control_error("htx", DOC_SUBSCRIBED) is None and control_error("htx", DOC_EXAMPLE_LINEAR) is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (notify("X-USDT", order("X-USDT", "long", 1, 1, 1)), "direction"),
        (notify("X-USDT", order("X-USDT", "sell", 1, 1, 1, offset="open")), "offset"),
        (notify("X-USDT", order("X-USDT", "sell", 1, 1)), "trade_turnover"),  # USDT-M always has it
        (notify("X-USDT", order("X-USDT", "sell", 1, 1, "0.004")), "cent"),
        (notify("X-USDT", order("X-USDT", "sell", 0, 1, 1)), "volume"),
        (notify("X-USDT", order("X-USDT", "sell", 1, "NaN", 1)), "price"),
        (notify("X-USDT", order("X-USDT", "sell", 1, 1, 1, created_at=1639122193)), "created_at"),
        (notify("X-USDT", order("", "sell", 1, 1, 1)), "contract_code"),
        ({"op": "notify", "topic": "public.X-USDT.funding_rate", "data": []}, "topic"),
        ({"op": "notify", "topic": htx.TOPIC, "data": {}}, "list"),
        ({"topic": htx.TOPIC, "data": []}, "op"),
        ("ping", "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        htx.parse(frame, stream="linear-swap")


def test_error_bodies_of_the_contract_info_endpoint_are_frame_errors():
    with pytest.raises(FrameError, match="status 'error'"):
        htx.contract_info_book({"status": "error", "err-code": 1032, "err-msg": "too many requests"})
    with pytest.raises(FrameError, match="data"):
        htx.contract_info_book({"status": "ok"})


def test_both_streams_subscribe_every_contract_with_one_wildcard_topic():
    for spec in htx.STREAMS:
        assert [json.loads(m) for m in spec.subscribe(())] == [{"op": "sub", "cid": "liqbot", "topic": "public.*.liquidation_orders"}]


async def test_liqbot_inflates_answers_and_records_both_htx_streams_and_a_replay_stores_them_once(store, tmp_path):
    rest = FakeVenueRest()
    rest.bodies[htx.CONTRACT_INFO_PATH] = lambda params: CONTRACT_INFO
    opening = notify("X-USDT", order("X-USDT", "sell", 1, 1, 1, offset="open"))  # a liquidation never opens
    frames = {"linear-swap": [opening, DOC_EXAMPLE_LINEAR], "swap": [DOC_EXAMPLE_INVERSE]}
    trip = await live_and_recorded(store, tmp_path, "htx", frames, expected_events=2, rest=rest)
    assert [(e.stream, e.instrument, e.liquidated, e.notional_usd) for e in sorted(trip.live, key=lambda e: e.at_ms)] == [
        ("swap", "BTC-USD", Side.SHORT, 17_300.0),
        ("linear-swap", "O3-USDT", Side.LONG, 339.47),
    ]
    assert trip.replayed == trip.live and trip.replayed_again == 0
    assert trip.live_bad_frames == trip.replay_bad_lines == 1  # counted live and on replay, skipped
    # Each client subscribed once and answered the fake's ping with its own ts.
    pong = json.dumps({"op": "pong", "ts": json.loads(HTX_PING)["ts"]}, separators=(",", ":"))
    for server in trip.servers.values():
        assert sorted(server.received) == sorted(2 * [htx.SUBSCRIBE_MESSAGE, pong])
    # The recording holds the frames inflated: JSON objects, not gzip bytes.
    frames_recorded = [json.loads(line)["frame"] for line in trip.recording.read_text().splitlines() if '"frame"' in line]
    assert DOC_EXAMPLE_LINEAR in frames_recorded and DOC_EXAMPLE_INVERSE in frames_recorded
    assert {"op": "ping", "ts": "1750000000000"} in frames_recorded

