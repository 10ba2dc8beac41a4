"""Kraken Futures `trade` feed: liquidation trades only, the taker's side, linear
and inverse contract sizes from the instruments, case-insensitive ids, malformed
frames, replay, and a loopback run subscribed from the instruments list."""

import json

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.recording import RecordingDecoder, frame_line, rest_line
from bot.feeds.venues import kraken
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.fakes.venue_rest import FakeVenueRest, kraken_instruments_body
from tests.fakes.venue_ws import BASE_MS, VirtualClock
from tests.support import until

# "Response Snapshot" example of docs.kraken.com/api/docs/futures-api/websocket/trade
# (the newer page prints the same trades under PF_XBTUSD; these are PI_ numbers).
DOC_SNAPSHOT = {
    "feed": "trade_snapshot",
    "product_id": "PI_XBTUSD",
    "trades": [
        {"feed": "trade", "product_id": "PI_XBTUSD", "uid": "caa9c653-420b-4c24-a9f1-462a054d86f1",
         "side": "sell", "type": "fill", "seq": 655508, "time": 1612269657781, "qty": 440, "price": 34893},
        {"feed": "trade", "product_id": "PI_XBTUSD", "uid": "45ee9737-1877-4682-bc68-e4ef818ef88a",
         "side": "sell", "type": "fill", "seq": 655507, "time": 1612269656839, "qty": 9643, "price": 34891},
    ],
}
DOC_HEARTBEAT = {"feed": "heartbeat", "time": 1534262350627}
DOC_SUBSCRIBED = {"event": "subscribed ", "feed": "trade", "product_ids": ["PI_XBTUSD"]}
DOC_ERROR = {"event": "error", "message": "Json Error"}

BOOK = kraken.instruments_book(kraken_instruments_body())


def trade(product="PF_XBTUSD", side="sell", qty=0.25, price=64000.5, kind="liquidation", time=BASE_MS, **extra):
    return {"feed": "trade", "product_id": product, "uid": f"uid-{product}-{time}", "side": side, "type": kind,
            "seq": 1, "time": time, "qty": qty, "price": price, **extra}


def test_the_docs_snapshot_holds_only_ordinary_fills():
    assert kraken.parse(DOC_SNAPSHOT, BOOK) == []


def test_a_liquidation_in_the_docs_snapshot_is_an_inverse_usd_contract_count():
    snapshot = json.loads(json.dumps(DOC_SNAPSHOT))
    snapshot["trades"][1]["type"] = "liquidation"
    [event] = kraken.parse(snapshot, BOOK)
    assert (event.venue, event.stream, event.instrument, event.asset) == ("kraken", "futures", "PI_XBTUSD", "BTC")
    assert event.liquidated is Side.LONG  # the taker (the liquidated account's IOC order) sold
    assert (event.quantity, event.price) == (9643, 34891)
    assert event.notional_usd == 9643.0  # 9643 contracts of 1 USD
    assert event.at_ms == 1612269656839


def test_linear_multi_collateral_quantity_is_base_coin():
    [event] = kraken.parse(trade("PF_ETHUSD", "buy", qty=1.5, price=3000.25), BOOK)
    assert (event.asset, event.liquidated) == ("ETH", Side.SHORT)
    assert event.notional_usd == 4500.38  # 1.5 ETH x 3000.25 = 4500.375, to the cent


def test_terminations_blocks_and_fills_are_not_liquidations():
    for kind in ("fill", "termination", "block"):
        assert kraken.parse(trade(kind=kind), BOOK) == []


def test_product_ids_match_whatever_their_case():
    lower_book = kraken.instruments_book(kraken_instruments_body(lower_case=True))
    [event] = kraken.parse(trade("PF_XBTUSD", qty=0.5, price=60000), lower_book)
    [same] = kraken.parse(trade("pf_xbtusd", qty=0.5, price=60000), BOOK)
    assert event == same
    assert (event.instrument, event.notional_usd) == ("PF_XBTUSD", 30000.0)


def test_an_unknown_product_keeps_the_priced_trades():
    snapshot = {"feed": "trade_snapshot", "product_id": "PF_XBTUSD",
                "trades": [trade(qty=1, price=60000), trade("PF_NEWUSD", time=BASE_MS + 1)]}
    with pytest.raises(UnknownInstrument) as unknown:
        kraken.parse(snapshot, BOOK)
    assert unknown.value.instruments == ("PF_NEWUSD",) and unknown.value.unpriced_count == 1
    assert [e.notional_usd for e in unknown.value.events] == [60000.0]


def test_control_frames_and_errors():
    for frame in (DOC_HEARTBEAT, DOC_SUBSCRIBED, DOC_ERROR, {"event": "info", "version": 1}):
        assert kraken.parse(frame, BOOK) == []
    assert kraken.error_message(DOC_ERROR) == "error: 'Json Error'"
    assert kraken.error_message({"event": "subscribed_failed", "product_ids": ["PF_NOPE"]}) == (
        "subscribed_failed: ['PF_NOPE']"
    )
    assert kraken.error_message(DOC_SUBSCRIBED) is None


def test_instruments_give_the_tradeable_products_and_every_size():
    body = kraken_instruments_body()
    products, cursor = kraken.instruments_page(body)
    assert cursor is None and "PF_XBTUSD" in products and "PI_XBTUSD" in products
    assert "FI_XBTUSD_210326" not in products  # expired: no longer subscribed...
    assert BOOK["FI_XBTUSD_210326"].inverse  # ...but its recorded frames still price
    assert BOOK["PF_XBTUSD"].inverse is False and BOOK["PF_XBTUSD"].size == 1
    assert "IN_XBTUSD" not in BOOK  # an index: no contract size
    with pytest.raises(FrameError, match="result"):
        kraken.instruments_book({"result": "error", "error": "apiLimitExceeded"})


def test_subscriptions_are_chunked_after_the_heartbeat():
    products = [f"PF_C{n}USD" for n in range(kraken.PRODUCTS_PER_MESSAGE + 5)]
    heartbeat, first, second = (json.loads(m) for m in kraken.subscribe_messages(products))
    assert heartbeat == {"event": "subscribe", "feed": "heartbeat"}
    assert first["feed"] == "trade" and first["product_ids"] == products[: kraken.PRODUCTS_PER_MESSAGE]
    assert second["product_ids"] == products[kraken.PRODUCTS_PER_MESSAGE :]
    assert kraken.subscribe_messages([]) == []


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (trade(side="Sell"), "side"),
        (trade(qty=0), "qty"),
        (trade(price="abc"), "price"),
        (trade(time=1.5), "time"),
        (trade(product_id=None), "product_id"),
        ({**trade(), "type": None}, "type"),
        ({"feed": "trade_snapshot", "trades": {}}, "list"),
        ({"feed": "trade_snapshot", "trades": [7]}, "object"),
        ({"feed": "book", "product_id": "PF_XBTUSD"}, "feed"),
        ({"product_id": "PF_XBTUSD"}, "feed"),
        ([trade()], "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        kraken.parse(frame, BOOK)


def test_the_decoder_prices_from_recorded_instruments_and_skips_bad_frames():
    decoder = RecordingDecoder()
    instruments = rest_line("kraken", BASE_MS, kraken.INSTRUMENTS_PATH, kraken_instruments_body())
    assert decoder.feed(instruments) == [] and decoder.stats.rest_responses == 1
    [event] = decoder.feed(frame_line("kraken", "futures", BASE_MS + 1, trade(qty=2, price=50000)))
    assert decoder.feed(frame_line("kraken", "futures", BASE_MS + 2, trade(side="hold"))) == []
    assert event.notional_usd == 100_000.0
    assert (decoder.stats.events, decoder.stats.bad_lines) == (1, 1)


async def test_replaying_a_recording_twice_changes_nothing(store, tmp_path):
    live = [trade(qty=n + 1, time=BASE_MS + n) for n in range(3)]
    lines = [
        rest_line("kraken", BASE_MS, kraken.INSTRUMENTS_PATH, kraken_instruments_body()),
        *(frame_line("kraken", "futures", BASE_MS + 10 + n, frame) for n, frame in enumerate(live)),
        # A reconnect's snapshot repeats the same trades: stored once.
        frame_line("kraken", "futures", BASE_MS + 20,
                   {"feed": "trade_snapshot", "product_id": "PF_XBTUSD", "trades": live[::-1]}),
    ]
    first, second = await replayed_twice(store, tmp_path, lines)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (3, 3, 0, 6)


async def test_the_runner_subscribes_every_tradeable_product_and_records_liquidations(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    rest.bodies[kraken.INSTRUMENTS_PATH] = lambda params: kraken_instruments_body()
    async with running_alone(store, "kraken", rest, clock) as (feeds, servers):
        server = servers["futures"]
        tradeable, _ = kraken.instruments_page(kraken_instruments_body())
        await server.wait_for(lambda s: s.subscribed_connections() == 1)
        await until(lambda: sum(len(r.get("product_ids", [])) for r in server.subscribe_requests) == len(tradeable))
        assert {"event": "subscribe", "feed": "heartbeat"} in server.subscribe_requests
        assert await server.broadcast(trade("PF_SOLUSD", "buy", qty=10, price=150.5, time=clock.now_ms())) == 1
        assert await server.broadcast(trade("PI_XBTUSD", qty=5000, price=64000, time=clock.now_ms())) == 1
        assert await server.broadcast(trade("PF_XBTUSD", kind="fill", time=clock.now_ms())) == 1
        assert await server.broadcast(DOC_HEARTBEAT) == 1
        await until(lambda: feeds.ingest.stats.events_received == 2)
    [status] = feeds.statuses()
    # info + 2 acks (heartbeat, one chunk of products) + the 4 frames sent
    assert (status.frames, status.events, status.bad_frames, status.unpriced_events) == (7, 2, 0, 0)
    assert rest.count(kraken.INSTRUMENTS_PATH) == 1  # one request gives the products and the sizes
    assert feeds.ingest.stats.events_stored == 2
