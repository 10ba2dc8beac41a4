"""Replies name venues and their sampling caveats from the venue registry."""

from __future__ import annotations

import pytest

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.core.models import HOUR_MS
from bot.core.venues import title_of
from bot.feeds.venues import VENUES  # the composition root imports the registry, which registers the titles
from bot.replies.render_plain import render_plain
from bot.services.queries import QueryService
from tests.support import liquidation

NOW_MS = 1_742_601_600_000
PRIVATE = Caller("telegram", "telegram:7", "telegram:7", is_group=False)


async def liq_text(store, venues: list[str], locale: str) -> str:
    await store.add_events([liquidation(NOW_MS - HOUR_MS + i, 50_000.0 * (i + 1), venue=v) for i, v in enumerate(venues)])
    dispatcher = Dispatcher(QueryService(store), clock_ms=lambda: NOW_MS)
    await dispatcher.handle(f"/lang {locale}", PRIVATE)
    return render_plain(await dispatcher.handle("/liq", PRIVATE))


def test_every_registered_venue_has_its_display_name():
    assert [title_of(m.VENUE) for m in VENUES] == [m.TITLE for m in VENUES]


@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_liq_names_new_venues_and_footnotes_only_the_sampled_ones_in_the_reply(store, locale):
    text = await liq_text(store, ["gate", "htx", "okx", "bitget"], locale)
    footnote = next(line for line in text.splitlines() if "lower bound" in line or "下限" in line)
    for title in ("Gate", "HTX", "OKX", "Bitget"):
        assert title in text
    assert "not the total" in footnote and "2 records per pair per second" in footnote
    assert "Binance" not in footnote and "Gate" not in footnote


@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_liq_of_unsampled_venues_only_says_totals_are_a_lower_bound(store, locale):
    text = await liq_text(store, ["gate", "bybit"], locale)
    assert "Binance" not in text and "one order per symbol" not in text
    assert ("lower bound" if locale == "en" else "总额为下限") in text
