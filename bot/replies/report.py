"""The write-up as a Reply: headline, lead, per-asset lines, insights, the
events of the window, history standing, leverage after the events, and the
coverage notes. Every time is in the chat's zone; every number comes from
the `WriteUp`."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.events import EventRule
from bot.core.report import CascadeStory, History, LeverageAfter, WriteUp
from bot.core.summary import Squeeze
from bot.replies import numbers as fmt
from bot.replies.compose import coverage_notes, insights, split_table, tone_of, venue_name
from bot.replies.locales import text
from bot.replies.model import Action, Bullets, Paragraph, Reply, bold, line
from bot.replies.numbers import Locale

ASSETS_SHOWN = 10


def _signed(fraction: float) -> str:
    return f"{fraction * 100:+.1f}%"


def _annual(fraction: float | None) -> str:
    return "?" if fraction is None else f"{fraction * 100:+.1f}%"


def _section(locale: Locale, key: str) -> Paragraph:
    return Paragraph(line(bold(text(locale, key))))


def headline(write_up: WriteUp, locale: Locale) -> str:
    summary = write_up.summary
    window = fmt.window_label(summary.window.duration_ms, locale)
    scope = text(locale, "report.scope_asset", asset=summary.asset) if summary.asset else ""
    kind = summary.squeeze.value
    return scope + text(locale, f"report.headline.{kind}", total=fmt.usd(summary.total.total_usd, locale), window=window)


def _lead(write_up: WriteUp, locale: Locale) -> Paragraph:
    summary, total = write_up.summary, write_up.summary.total
    return Paragraph(
        line(
            text(
                locale,
                "report.lead",
                window=fmt.window_label(summary.window.duration_ms, locale),
                end=fmt.timestamp(summary.window.end_ms, locale, fmt.zone(write_up.tz)),
                total=fmt.usd(total.total_usd, locale),
                scope=summary.asset or text(locale, "report.scope_all"),
                venues=len(summary.by_venue),
                long_amount=fmt.usd(total.long_usd, locale),
                long_share=fmt.share(total.long_share or 0.0, locale),
                short_amount=fmt.usd(total.short_usd, locale),
                short_share=fmt.share(total.short_share or 0.0, locale),
            )
        )
    )


def _story_line(story: CascadeStory, locale: Locale, tz: str | None):
    cascade, tzinfo = story.cascade, fmt.zone(tz)

    def clock(at_ms: int) -> str:
        return f"{datetime.fromtimestamp(at_ms / 1000, tzinfo):%H:%M}"

    key = "report.event_live" if cascade.in_progress else "report.event"
    parts = [
        text(
            locale,
            key,
            start=fmt.timestamp(cascade.start_ms, locale, tzinfo),
            end=clock(cascade.end_ms),
            duration=fmt.duration(cascade.duration_ms, locale),
            total=fmt.usd(cascade.total.total_usd, locale),
            heavier=text(
                locale,
                f"report.heavier.{cascade.total.heavier_side.value}",
                share=fmt.share(cascade.total.dominant_share, locale),
            ),
            peak=fmt.usd(cascade.peak_minute_usd, locale),
            peak_time=clock(cascade.peak_minute_ms),
        )
    ]
    if story.move is not None:
        level = max(abs(story.move.from_price), abs(story.move.to_price))  # one precision for both
        parts.append(
            text(
                locale,
                "report.event_move",
                asset=story.move.asset,
                change=_signed(story.move.change),
                from_price=fmt.price(story.move.from_price, level),
                to_price=fmt.price(story.move.to_price, level),
            )
        )
    if story.largest is not None:
        parts.append(
            text(
                locale,
                "report.event_largest",
                amount=fmt.usd(story.largest.notional_usd, locale),
                side=text(locale, f"side.{story.largest.liquidated.value}"),
                venue=venue_name(story.largest.venue),
            )
        )
    return line(("；" if locale == "zh" else "; ").join(parts))


def _events(write_up: WriteUp, locale: Locale, rule: EventRule) -> list:
    if not write_up.stories:
        floor = fmt.usd(rule.min_event_usd, locale)
        return [Paragraph(line(text(locale, "report.no_events", ratio=f"{rule.spike_ratio:g}", floor=floor)))]
    return [Bullets(tuple(_story_line(story, locale, write_up.tz) for story in write_up.stories))]


def _history(history: History, window_ms: int, locale: Locale) -> list:
    window = fmt.window_label(window_ms, locale)
    found = []
    for standing in history.standings:
        values = dict(rank=standing.rank, days=standing.period_days, window=window,
                      average=fmt.usd(standing.average_usd, locale))
        if standing.complete:
            found.append(line(text(locale, "report.rank", **values)))
        else:
            found.append(line(text(locale, "report.rank_short", windows=standing.windows,
                                   expected=standing.expected_windows, **values)))
    if not history.standings:
        found.append(line(text(locale, "report.no_history")))
    if history.largest_day_usd is not None:
        day = f"{datetime.fromtimestamp(history.largest_day_start_ms / 1000, UTC):%Y-%m-%d}"
        found.append(line(text(locale, "report.largest_day", amount=fmt.usd(history.largest_day_usd, locale), day=day)))
    return [Bullets(tuple(found))]


def _leverage(leverage: LeverageAfter | None, asset: str | None, locale: Locale) -> list:
    if leverage is None:
        return [Paragraph(line(text(locale, "report.no_market", asset=asset or "BTC")))] if asset else []
    found = []
    change = leverage.open_interest_change
    if change is not None:
        found.append(line(text(
            locale, "report.oi",
            before=fmt.usd(leverage.open_interest_before_usd, locale),
            now=fmt.usd(leverage.open_interest_now_usd, locale),
            change=_signed(change),
        )))
    if leverage.funding_before_annual is not None:
        found.append(line(text(locale, "report.funding", before=_annual(leverage.funding_before_annual),
                               now=_annual(leverage.funding_now_annual))))
    elif leverage.funding_now_annual is not None:
        found.append(line(text(locale, "report.funding_now", now=_annual(leverage.funding_now_annual))))
    verdict = leverage.verdict
    found.append(line(bold(text(locale, f"report.verdict.{verdict.value}" if verdict else "report.no_verdict"))))
    return [Bullets(tuple(found))]


def report_reply(write_up: WriteUp, locale: Locale, refresh_command: str) -> Reply:
    summary = write_up.summary
    blocks: list = []
    if summary.squeeze is Squeeze.QUIET:
        blocks.append(Paragraph(line(text(locale, "empty"))))
    else:
        blocks.append(_lead(write_up, locale))
        if summary.asset is None:
            blocks += [_section(locale, "report.section.assets"),
                       split_table(text(locale, "col.asset"), summary.by_asset[:ASSETS_SHOWN], locale)]
        found = insights(summary, locale)
        if found:
            blocks += [_section(locale, "report.section.insights"), Bullets(tuple(found))]
        blocks += [_section(locale, "report.section.events"), *_events(write_up, locale, write_up.rule)]
        blocks += [_section(locale, "report.section.history"),
                   *_history(write_up.history, summary.window.duration_ms, locale)]
        subject = summary.asset or (summary.dominant_asset.name if summary.dominant_asset else None)
        leverage = _leverage(write_up.leverage, subject if write_up.stories else None, locale)
        if leverage:
            blocks += [_section(locale, "report.section.leverage"), *leverage]
    blocks += coverage_notes(summary, locale, fmt.zone(write_up.tz))
    return Reply(
        title=headline(write_up, locale),
        blocks=tuple(blocks),
        tone=tone_of(summary.squeeze),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
    )
