"""Aster `!forceOrder@arr`: Binance's format under venue `aster`; the docs' example,
the side and unit rules, malformed frames, replay, and a loopback run."""

import pytest

from bot.core.models import Side
from bot.feeds.errors import FrameError
from bot.feeds.recording import RecordingDecoder, frame_line
from bot.feeds.venues import aster
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, VirtualClock
from tests.fakes.single_venue import replayed_twice, running_alone
from tests.support import until

# Payload example of "All Market Liquidation Order Streams",
# github.com/asterdex/api-docs, V3(Recommended)/EN/aster-finance-futures-api-v3.md
# (printed with a trailing comma after "T", which JSON does not allow).
DOC_EXAMPLE = {
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


def order_frame(symbol="ETHUSDT", side="BUY", p="3030", ap="3000.5", z="1.2", at_ms=BASE_MS, **extra):
    order = {"s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": z, "p": p, "ap": ap,
             "X": "FILLED", "l": z, "z": z, "T": at_ms, **extra}
    return {"e": "forceOrder", "E": at_ms + 3, "o": order}


def test_doc_example_is_a_long_of_0_014_btc_at_9910():
    [event] = aster.parse(DOC_EXAMPLE)
    assert (event.venue, event.stream, event.instrument, event.asset) == ("aster", "futures", "BTCUSDT", "BTC")
    assert event.liquidated is Side.LONG  # a SELL liquidation order closes a long
    assert (event.price, event.quantity) == (9910.0, 0.014)
    assert event.notional_usd == 138.74  # 0.014 BTC x 9910
    assert event.at_ms == 1568014460893


def test_a_buy_order_closes_a_short_priced_at_the_average_fill_not_the_limit():
    [event] = aster.parse(order_frame())
    assert event.liquidated is Side.SHORT
    assert event.price == 3000.5  # o.ap, not o.p
    assert event.notional_usd == 3600.6  # 1.2 ETH x 3000.5


def test_scaled_meme_contracts_undocumented_fields_and_combined_streams():
    frame = order_frame("1000PEPEUSDT", "SELL", p="0.0101", ap="0.0102", z="250000", ps="BOTH", st="X")
    [event] = aster.parse({"stream": "!forceOrder@arr", "data": frame})
    assert (event.asset, event.liquidated, event.notional_usd) == ("PEPE", Side.LONG, 2550.0)


def test_acks_and_errors_are_control_frames():
    assert aster.parse({"result": None, "id": 1}) == []
    assert aster.error_message({"error": {"code": 2, "msg": "Invalid request"}, "id": 1}) == (
        "error 2: 'Invalid request'"
    )
    assert aster.error_message(DOC_EXAMPLE) is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (order_frame(side="Sell"), "BUY/SELL"),
        (order_frame(ap="0"), "o.ap"),
        (order_frame(z="-1"), "o.z"),
        ({"e": "forceOrder", "E": 1}, "no order"),
        ([DOC_EXAMPLE], "object"),
    ],
)
def test_malformed_frames_raise_frame_error(frame, message):
    with pytest.raises(FrameError, match=message):
        aster.parse(frame)


def test_the_decoder_counts_and_skips_malformed_frames():
    decoder = RecordingDecoder()
    good = decoder.feed(frame_line("aster", "futures", BASE_MS, DOC_EXAMPLE))
    bad = decoder.feed(frame_line("aster", "futures", BASE_MS + 1, order_frame(side="HOLD")))
    assert len(good) == 1 and bad == []
    assert (decoder.stats.events, decoder.stats.bad_lines) == (1, 1)
    assert "aster/futures" in decoder.stats.error_samples[0]


async def test_replaying_a_recording_twice_changes_nothing(store, tmp_path):
    lines = [frame_line("aster", "futures", BASE_MS + n, order_frame(z=str(n + 1), at_ms=BASE_MS + n))
             for n in range(3)]
    first, second = await replayed_twice(store, tmp_path, lines)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (3, 0, 0, 3)


async def test_the_runner_records_the_stream_from_a_loopback_fake(store):
    clock = VirtualClock(100)
    async with running_alone(store, "aster", FakeVenueRest(), clock) as (feeds, servers):
        server = servers["futures"]
        await server.wait_for(lambda s: s.open_connections == 1)
        assert await server.broadcast(DOC_EXAMPLE) == 1
        assert await server.broadcast(order_frame(at_ms=clock.now_ms())) == 1
        await until(lambda: feeds.ingest.stats.events_received == 2)
    [status] = feeds.statuses()
    assert (status.venue, status.stream, status.frames, status.events) == ("aster", "futures", 2, 2)
    assert feeds.ingest.stats.events_stored == 2
