"""dYdX v4 `v4_trades`: LIQUIDATED taker fills only, the taker's side, base-coin
sizes, snapshots that repeat on reconnect, malformed frames, replay, and a
loopback run capped at the indexer's 32 markets per connection."""

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError
from bot.feeds.recording import RecordingDecoder, frame_line
from bot.feeds.venues import dydx
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, VirtualClock
from tests.support import until

# "Trades" channel data example of docs.dydx.exchange/api_integration-indexer/indexer_websocket
# (printed with trailing commas after the last items, which JSON does not allow).
DOC_EXAMPLE = {
    "type": "channel_data",
    "connection_id": "57844645-0b1d-4c3f-ad71-1c6154154a13",
    "message_id": 4,
    "id": "BTC-USD",
    "channel": "v4_trades",
    "version": "1.1.0",
    "contents": {
        "trades": [
            {"id": "8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7", "size": "0.000100431", "price": "27839",
             "side": "BUY", "createdAt": "2023-04-04T00:29:19.353Z", "type": "LIQUIDATED"},
            {"id": "38e64479-af09-5417-a795-195f83879156", "size": "0.000000004", "price": "27839",
             "side": "BUY", "createdAt": "2023-04-04T00:29:19.353Z", "type": "LIQUIDATED"},
            {"id": "d310c32c-f066-5ba8-a97d-10a29d9a6c84", "size": "0.000000005", "price": "27837",
             "side": "SELL", "createdAt": "2023-04-04T00:29:19.353Z", "type": "LIMIT"},
            {"id": "dd1088b5-5cab-518f-a59c-4d5f735ab861", "size": "0.000118502", "price": "27837",
             "side": "SELL", "createdAt": "2023-04-04T00:29:19.353Z", "type": "LIMIT"},
        ],
    },
}
DOC_CONNECTED = {"type": "connected", "connection_id": "004a1efa-21bb-4b19-a2e9-a8ffadd6dc53", "message_id": 0}
CREATED = "2025-06-15T15:06:40.123Z"
CREATED_MS = 1_750_000_000_123


def trade(n=1, side="SELL", size="0.5", price="65000", kind="LIQUIDATED", created=CREATED):
    return {"id": f"trade-{n}", "size": size, "price": price, "side": side, "createdAt": created, "type": kind}


def message(*trades, kind="channel_data", market="BTC-USD"):
    return {"type": kind, "connection_id": "c1", "message_id": 5, "id": market, "channel": "v4_trades",
            "version": "1.1.0", "contents": {"trades": list(trades)}}


def test_doc_example_is_a_short_liquidated_by_its_taker_buy():
    [event] = dydx.parse(DOC_EXAMPLE)  # the LIMIT fills are ordinary trades; the 2nd fill is dust
    assert (event.venue, event.stream, event.instrument, event.asset) == ("dydx", "v4", "BTC-USD", "BTC")
    assert event.liquidated is Side.SHORT  # the liquidated account's order bought
    assert (event.quantity, event.price) == (0.000100431, 27839.0)
    assert event.notional_usd == 2.80  # 0.000100431 BTC x 27839 = 2.7959...
    assert event.at_ms == 1680568159353  # 2023-04-04T00:29:19.353Z


def test_a_sell_liquidates_a_long_and_size_is_base_coin():
    [event] = dydx.parse(message(trade(size="1.5", price="3000.25"), market="ETH-USD"))
    assert (event.asset, event.liquidated, event.notional_usd, event.at_ms) == ("ETH", Side.LONG, 4500.38, CREATED_MS)


def test_only_liquidated_trades_count():
    kinds = ("LIMIT", "DELEVERAGED", "TWAP_SUBORDER", "MARKET", "Liquidated")
    assert dydx.parse(message(*(trade(n, kind=kind) for n, kind in enumerate(kinds)))) == []
    untyped = trade()  # the docs' 2023 snapshot example has no `type`
    del untyped["type"]
    assert dydx.parse(message(untyped, kind="subscribed")) == []


def test_snapshots_and_batches_parse_like_channel_data():
    snapshot = message(trade(1), trade(2, side="BUY"), kind="subscribed")
    batch = {**message(), "type": "channel_batch_data",
             "contents": [{"trades": [trade(1)]}, {"trades": [trade(2, side="BUY"), trade(2, side="BUY")]}]}
    assert dydx.parse(snapshot) == dydx.parse(batch)  # a trade id repeated in a batch counts once
    assert [e.liquidated for e in dydx.parse(batch)] == [Side.LONG, Side.SHORT]


def test_control_frames_and_errors():
    for frame in (DOC_CONNECTED, {"type": "unsubscribed", "channel": "v4_trades", "id": "BTC-USD"},
                  {"type": "pong", "connection_id": "c1", "message_id": 9}):
        assert dydx.parse(frame) == []
    refused = {"type": "error", "message": "Per-connection subscription limit reached for v4_trades (limit=32).",
               "connection_id": "c1", "message_id": 40}
    assert dydx.parse(refused) == []
    assert dydx.error_message(refused).startswith("error: 'Per-connection subscription limit")
    assert dydx.error_message(DOC_EXAMPLE) is None


def test_markets_are_ranked_by_open_interest_in_usd():
    body = markets_body(5)
    body["markets"]["M4-USD"]["status"] = "FINAL_SETTLEMENT"
    body["markets"]["M0-USD"]["openInterest"] = "0"
    markets, cursor = dydx.markets_page(body)
    assert cursor is None and markets == ["M3-USD", "M2-USD", "M1-USD", "M0-USD"]
    with pytest.raises(FrameError, match="markets"):
        dydx.markets_page({"errors": [{"msg": "rate limited"}]})


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (message(trade(side="sell")), "side"),
        (message(trade(size="0")), "size"),
        (message(trade(price="1e13")), "price"),
        (message(trade(created="2023-04-04 00:29")), "zone"),
        (message(trade(created="yesterday")), "createdAt"),
        (message(trade(created=1680568159353)), "createdAt"),
        (message(trade(size="1000000")), "notional"),  # 1e6 BTC x 65000 > $10B
        ({**message(), "contents": {"trades": {}}}, "trades"),
        ({**message(), "type": "channel_batch_data"}, "list"),
        ({**message(), "channel": "v4_orderbook"}, "channel"),
        ({**message(), "type": "update"}, "type"),
        ({**message(), "id": None}, "id"),
        (message(7), "object"),
        ([DOC_EXAMPLE], "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, text):
    with pytest.raises(FrameError, match=text):
        dydx.parse(frame)


def test_the_decoder_counts_and_skips_malformed_frames():
    decoder = RecordingDecoder()
    assert len(decoder.feed(frame_line("dydx", "v4", BASE_MS, DOC_EXAMPLE))) == 1
    assert decoder.feed(frame_line("dydx", "v4", BASE_MS + 1, message(trade(side="HOLD")))) == []
    assert (decoder.stats.events, decoder.stats.bad_lines) == (1, 1)


async def test_replaying_twice_and_snapshot_repeats_change_nothing(store, tmp_path):
    live = [trade(n, size=str(n), created=f"2025-06-15T15:06:4{n}.000Z") for n in range(1, 4)]
    lines = [
        *(frame_line("dydx", "v4", BASE_MS + n, message(t)) for n, t in enumerate(live)),
        # After a reconnect the subscription's snapshot lists the same trades again.
        frame_line("dydx", "v4", BASE_MS + 10, message(*live[::-1], kind="subscribed")),
    ]
    first, second = await replayed_twice(store, tmp_path, lines)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (3, 3, 0, 6)


def markets_body(count: int) -> dict:
    """`GET /v4/perpetualMarkets` shaped like the docs' example: M{n}-USD, open interest rising with n."""
    return {"markets": {
        f"M{n}-USD": {"clobPairId": str(n), "ticker": f"M{n}-USD", "status": "ACTIVE", "oraclePrice": "10",
                      "openInterest": str(n + 1), "atomicResolution": -9, "marketType": "CROSS"}
        for n in range(count)
    }}


async def test_the_runner_subscribes_the_32_largest_markets_and_records_liquidations(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    rest.bodies[dydx.MARKETS_PATH] = lambda params: markets_body(40)
    async with running_alone(store, "dydx", rest, clock) as (feeds, servers):
        server = servers["v4"]
        await server.wait_for(lambda s: len(s.subscribe_requests) == dydx.MAX_MARKETS)
        subscribed = {request["id"] for request in server.subscribe_requests}
        assert subscribed == {f"M{n}-USD" for n in range(8, 40)}  # the 32 largest of 40
        assert all(r["channel"] == "v4_trades" and r["batched"] is True for r in server.subscribe_requests)
        at = "2025-06-15T15:06:50.000Z"
        assert await server.broadcast(message(trade(1, size="2", price="10", created=at), market="M39-USD")) == 1
        assert await server.broadcast(message(trade(2, kind="LIMIT", created=at), market="M39-USD")) == 1
        # A reconnect's snapshot repeats trade 1: received again, stored once.
        assert await server.broadcast(message(trade(1, size="2", price="10", created=at), market="M39-USD",
                                              kind="subscribed")) == 1
        assert await server.broadcast(message(trade(3, created=at), market="M0-USD")) == 0  # not subscribed
        await until(lambda: feeds.ingest.stats.events_received == 2)
    [status] = feeds.statuses()
    assert (status.events, status.bad_frames) == (2, 0)
    assert (feeds.ingest.stats.events_stored, feeds.ingest.stats.duplicates) == (1, 1)
