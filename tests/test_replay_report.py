"""The replay report: lines, frames and liquidations are counted separately,
and the counts add up (issue 15: '1 frames read ... 2 bad frames')."""

from __future__ import annotations

from bot.core.models import Side
from bot.feeds.recording import frame_line
from bot.feeds.synthetic import LiquidationSpec, frame_for, metadata_lines
from tests.fakes.single_venue import replayed_twice

T0 = 1742558400000


def liquidation_line(at_ms: int) -> str:
    spec = LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 65_000.0, 0.5, at_ms)
    return frame_line("binance", "usdm", at_ms, frame_for(spec))


async def test_the_report_says_what_it_counted_and_the_counts_add_up(store, tmp_path):
    rest = metadata_lines(T0)
    lines = [
        *rest,
        liquidation_line(T0 + 10),
        liquidation_line(T0 + 20),
        liquidation_line(T0 + 20),  # recorded twice: one duplicate
        frame_line("okx", "public", T0 + 30, "pong"),  # a frame without liquidations
        "not json",
        '{"venue":"binance","stream":"usdm","at":1,"frame":{"e":"forceOrder","o":{"s":"BTCUSDT"}}}',  # no o.S
        "",
    ]
    first, again = await replayed_twice(store, tmp_path, lines)
    assert first.one_line() == (
        f"replayed 1 file: {len(rest) + 6} lines read (4 frames, {len(rest)} REST responses, 0 market responses,"
        " 2 unusable lines);"
        " 3 liquidations decoded: 2 stored, 1 duplicate"
    )
    assert again.one_line().endswith("3 liquidations decoded: 0 stored, 3 duplicates")
    decoded = first.decode
    assert decoded.lines == decoded.frames + decoded.rest_responses + decoded.market_responses + decoded.bad_lines
    assert decoded.events == first.stored + first.duplicates
