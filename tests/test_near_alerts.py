"""`/alert near ASSET PCT [MIN_USD]`: the watch on hand-built books (fires once
within the distance, re-arms only beyond 1.5x it, ignores small bands, paused
rules and the cooldown), the grammar, and end to end over stored market data
through the levels service to a chat."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.commands.ports import Caller
from bot.config import Config
from bot.core.alert_rules import RuleKind
from bot.core.levels import Bar, LevelBook, LevelSettings, LeverageTier
from bot.core.models import MINUTE_MS
from bot.core.near_alerts import NearWatch, near_rule
from bot.replies.alerts import alert_reply
from bot.replies.render_plain import render_plain
from tests.support import check_golden
from tests.test_levels import END_MS, long_liquidations, market_samples

T0 = 1_764_633_600_000
COOLDOWN = 10 * MINUTE_MS
CHAT = "telegram:42"


def book_with_longs_at_90_500() -> LevelBook:
    """$5M of 10x longs liquidated near $90,500 and $5M of shorts near $109,500 (a flat bar at $100,000)."""
    book = LevelBook(LevelSettings(tiers=(LeverageTier(10, 1.0),), bins=400, min_half_span=0.2, max_half_span=0.2))
    book.apply(Bar(T0, T0 + 15 * MINUTE_MS, 100_000, 100_000, 100_000, 100_000, 0, 10e6))
    return book


def watch(*rules) -> NearWatch:
    near = NearWatch(COOLDOWN)
    for rule in rules:
        near.add(rule)
    return near


def test_fires_once_within_the_distance_and_re_arms_only_well_beyond_it():
    book, near = book_with_longs_at_90_500(), watch(near_rule(1, CHAT, CHAT, "BTC", 0.01, 1e6))
    assert near.on_levels("BTC", 95_000, book, T0) == []  # 4.6 % above the band
    (fired,) = near.on_levels("BTC", 91_300, book, T0 + MINUTE_MS)  # 0.78 % above the band's top
    assert fired.kind is RuleKind.NEAR and fired.band.usd == pytest.approx(5e6) and fired.share < 0.01
    assert fired.band.low <= 90_500 <= fired.band.high and fired.price == 91_300
    later = T0 + COOLDOWN + 2 * MINUTE_MS
    assert near.on_levels("BTC", 91_600, book, later) == []  # 1.1 %: not beyond 1.5 %, still disarmed
    assert near.on_levels("BTC", 91_300, book, later + MINUTE_MS) == []
    assert near.on_levels("BTC", 93_000, book, later + 2 * MINUTE_MS) == []  # 2.6 %: re-armed
    assert [f.rule_ids for f in near.on_levels("BTC", 91_300, book, later + 3 * MINUTE_MS)] == [(1,)]


def test_small_bands_other_assets_paused_rules_and_the_cooldown_stay_quiet():
    book = book_with_longs_at_90_500()
    near = watch(near_rule(1, CHAT, CHAT, "BTC", 0.01, 6e6), near_rule(2, CHAT, CHAT, "BTC", 0.01, 1e6, paused=True),
                 near_rule(3, CHAT, CHAT, "ETH", 0.01, 1e6), near_rule(4, CHAT, CHAT, "BTC", 0.02, 1e6))
    (fired,) = near.on_levels("BTC", 91_300, book, T0)
    assert fired.rule_ids == (4,)  # 1: the $5M band is under its $6M; 2: paused; 3: another asset
    assert near.on_levels("BTC", 95_000, book, T0 + MINUTE_MS) == []  # re-armed (4.6 % > 3 %) ...
    assert near.on_levels("BTC", 91_300, book, T0 + 2 * MINUTE_MS) == []  # ... but cooling down
    assert [f.rule_ids for f in near.on_levels("BTC", 91_300, book, T0 + COOLDOWN)] == [(4,)]  # cooled down
    assert near.assets() == ["BTC", "ETH"]


def test_short_bands_above_count_too_and_the_message_says_which_side():
    book, near = book_with_longs_at_90_500(), watch(near_rule(1, CHAT, CHAT, "BTC", 0.005, 1e6))
    (fired,) = near.on_levels("BTC", 109_000, book, T0)
    assert fired.band.side.value == "short"
    message = render_plain(alert_reply(fired, "en"))
    assert "BTC at $109,000 is 0.46% below an estimated band of $5.00M in short liquidations" in message


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_the_near_alerts_wording_on_each_side(locale):
    book = book_with_longs_at_90_500()
    near = watch(near_rule(1, CHAT, CHAT, "BTC", 0.01, 1e6), near_rule(2, CHAT, CHAT, "BTC", 0.005, 1e6))
    (below,) = near.on_levels("BTC", 91_300, book, T0)
    (above,) = near.on_levels("BTC", 109_000, book, T0)
    check_golden(f"alert_near_{locale}.txt",
                 render_plain(alert_reply(below, locale)) + "\n" + render_plain(alert_reply(above, locale)))


@pytest.mark.parametrize("line, reply", [
    ("/alert near BTC 1%", "Alert #1 set: BTC: price within 1% of an estimated liquidation band of $10.00M or more"),
    ("/alert near BTC 0.5 50M", "Alert #1 set: BTC: price within 0.5% of an estimated liquidation band of $50.00M or more"),
])
async def test_the_grammar(tmp_path, line, reply):
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: END_MS)
    try:
        answer = render_plain(await app.dispatcher.handle(line, Caller("telegram", CHAT, CHAT)))
        assert reply in answer
    finally:
        await app.close()


async def test_end_to_end_the_chat_hears_when_the_price_nears_a_band(tmp_path):
    """The demo-like day of tests.test_levels: at the end the price ($97,000) sits on the
    $289M band of 25x longs ($96,500 - $96,667), so a 1 % rule fires at its first check, once;
    its message goes to the chat through the outbox."""
    clock = [END_MS]
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: clock[0])
    try:
        await app.market_store.add_samples(market_samples())
        await app.store.add_events(long_liquidations())
        await app.alerts.start()
        await app.dispatcher.handle("/alert near BTC 1%", Caller("telegram", CHAT, CHAT))
        await app.alerts.tick()
        ((chat, fired),) = app.alerts.sent
        message = render_plain(alert_reply(fired, "en"))
        assert chat == CHAT and ("BTC at $97,000.0 is 0.34% above an estimated band of $288.60M in long"
                                 " liquidations ($96,500.0 – $96,666.7") in message
        assert await app.outbox.backlog() == 1  # written with the rule's state, for the leader's sender
        clock[0] += 2 * MINUTE_MS  # past the next read a minute later: still near, nothing new is emitted
        await app.alerts.tick()
        assert [fired.kind for _, fired in app.alerts.sent] == [RuleKind.NEAR]
    finally:
        await app.close()
