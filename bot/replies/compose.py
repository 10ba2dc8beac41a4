"""Turn core results (summaries, status) into Replies, in the chat's locale."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, tzinfo

from bot.core import venues
from bot.core.models import LiquidationEvent
from bot.core.status import RuntimeStatus, ServiceStatus, StatusReport
from bot.core.summary import FLUSH_SHARE, Split, Squeeze, Summary
from bot.replies import numbers as fmt
from bot.replies.layout import TONE_EMOJI
from bot.replies.locales import listing, text
from bot.replies.model import (
    Action,
    Align,
    Bullets,
    Column,
    Field,
    Fields,
    Note,
    Paragraph,
    Reply,
    Table,
    Tone,
    bold,
    line,
    muted,
)
from bot.replies.numbers import Locale

TOP_ASSETS_SHOWN = 10


def venue_name(venue: str) -> str:
    return venues.title_of(venue)


def lower_bound_note(venue_ids: Iterable[str], locale: Locale) -> Note:
    """The footnote naming the venues in the reply whose feeds are sampled, with how."""
    found = venues.sampled(venue_ids)
    if not found:
        return Note(line(text(locale, "note.lower_bound_plain")))
    sampled = listing(locale, (text(locale, "note.sampled_venue", venue=v.title, caveat=v.caveat) for v in found))
    return Note(line(text(locale, "note.lower_bound", sampled=sampled)))


def venue_notes(venue_ids: Iterable[str], silent_streams: Sequence[tuple[str, str]], locale: Locale) -> list[Note]:
    """The sampled-venues footnote, and one naming the streams flagged silent now (if any)."""
    notes = [lower_bound_note(venue_ids, locale)]
    if silent_streams:
        streams = listing(locale, (f"{venue_name(venue)} {stream}" for venue, stream in silent_streams))
        notes.append(Note(line(text(locale, "note.silent_streams", streams=streams))))
    return notes


def tone_of(squeeze: Squeeze) -> Tone:
    return {Squeeze.LONG_SQUEEZE: Tone.LONGS_HIT, Squeeze.SHORT_SQUEEZE: Tone.SHORTS_HIT}.get(
        squeeze, Tone.NEUTRAL
    )


def _side_amount(locale: Locale, amount: float, share: float | None) -> str:
    if share is None:
        return fmt.usd(amount, locale)
    return text(locale, "value.side_amount", amount=fmt.usd(amount, locale), share=fmt.share(share, locale))


def _totals_fields(split: Split, locale: Locale) -> Fields:
    return Fields(
        (
            Field(text(locale, "field.total"), line(bold(fmt.usd(split.total_usd, locale)))),
            Field(text(locale, "field.longs"), line(_side_amount(locale, split.long_usd, split.long_share))),
            Field(text(locale, "field.shorts"), line(_side_amount(locale, split.short_usd, split.short_share))),
            Field(text(locale, "field.orders"), line(fmt.count(split.events, locale))),
        )
    )


def split_table(first_header: str, splits: Sequence[Split], locale: Locale, names=lambda n: n) -> Table:
    return Table(
        columns=(
            Column(first_header),
            Column(text(locale, "col.total"), Align.RIGHT),
            Column(text(locale, "col.longs"), Align.RIGHT),
            Column(text(locale, "col.shorts"), Align.RIGHT),
            Column(text(locale, "col.long_share"), Align.RIGHT),
        ),
        rows=tuple(
            (
                names(s.name),
                fmt.usd(s.total_usd, locale),
                fmt.usd(s.long_usd, locale),
                fmt.usd(s.short_usd, locale),
                fmt.share(s.long_share or 0.0, locale),
            )
            for s in splits
        ),
    )


def order_line(event: LiquidationEvent, locale: Locale, key: str = "largest", tz: tzinfo = UTC):
    """One liquidation order as a sentence (`key` picks the wording: largest, alert.order)."""
    return line(
        text(
            locale,
            key,
            amount=fmt.usd(event.notional_usd, locale),
            side=text(locale, f"side.{event.liquidated.value}"),
            venue=venue_name(event.venue),
            instrument=event.instrument,
            price=fmt.price(event.price),
            time=fmt.timestamp(event.at_ms, locale, tz),
        )
    )


def insights(summary: Summary, locale: Locale) -> list:
    total = summary.total
    found = []
    if summary.squeeze is Squeeze.LONG_SQUEEZE:
        found.append(line(text(locale, "insight.long_squeeze", share=fmt.share(total.long_share, locale))))
    elif summary.squeeze is Squeeze.SHORT_SQUEEZE:
        found.append(line(text(locale, "insight.short_squeeze", share=fmt.share(total.short_share, locale))))
    elif summary.squeeze is Squeeze.TWO_SIDED:
        found.append(
            line(
                text(
                    locale,
                    "insight.two_sided",
                    long_share=fmt.share(total.long_share, locale),
                    short_share=fmt.share(total.short_share, locale),
                )
            )
        )
    if summary.asset is None and len(summary.by_asset) > 1:
        dominant = summary.dominant_asset
        found.append(
            line(
                text(
                    locale,
                    "insight.dominant",
                    asset=dominant.name,
                    amount=fmt.usd(dominant.total_usd, locale),
                    share=fmt.share(dominant.total_usd / total.total_usd, locale),
                )
            )
        )
        one_sided = summary.most_one_sided
        if one_sided is not None:
            key = "insight.one_sided_" + one_sided.heavier_side.value
            if one_sided.dominant_share >= FLUSH_SHARE:
                key = "insight.flushed_" + one_sided.heavier_side.value
            found.append(
                line(text(locale, key, asset=one_sided.name, share=fmt.share(one_sided.dominant_share, locale)))
            )
    history = summary.history
    if history is not None and history.average_usd > 0:
        found.append(
            line(
                text(
                    locale,
                    "insight.history",
                    ratio=f"{total.total_usd / history.average_usd:.1f}",
                    windows=history.windows,
                    window=fmt.window_label(summary.window.duration_ms, locale),
                    previous=fmt.usd(history.previous_usd, locale),
                    rank=history.rank,
                    of=history.windows + 1,
                )
            )
        )
    return found


def stretches(ranges: Sequence[tuple[int, int]], locale: Locale, tz: tzinfo = UTC, shown: int = 3) -> str:
    """The first `shown` time ranges as "start (duration)", listed."""
    return listing(locale, (
        f"{fmt.timestamp(start, locale, tz)} ({fmt.duration(end - start, locale)})" for start, end in ranges[:shown]
    ))


def coverage_notes(summary: Summary, locale: Locale, tz: tzinfo = UTC) -> list[Note]:
    coverage = summary.coverage
    window_text = fmt.window_label(summary.window.duration_ms, locale)
    notes = []
    if coverage.covered_ms == 0:
        notes.append(Note(line(text(locale, "note.coverage_none"))))
    elif not coverage.complete:
        since = max(coverage.first_recorded_ms, summary.window.start_ms)
        notes.append(
            Note(
                line(
                    text(
                        locale,
                        "note.coverage_late",
                        covered=fmt.duration(coverage.covered_ms, locale),
                        window=window_text,
                        share=fmt.share(coverage.fraction, locale),
                        since=fmt.timestamp(since, locale, tz),
                    )
                )
            )
        )
        if coverage.gaps:
            notes.append(Note(line(text(locale, "note.coverage_gaps", gaps=stretches(coverage.gaps, locale, tz)))))
    notes += venue_notes((split.name for split in summary.by_venue), summary.silent_streams, locale)
    return notes


def summary_reply(summary: Summary, locale: Locale, refresh_command: str, tz: tzinfo = UTC) -> Reply:
    window_text = fmt.window_label(summary.window.duration_ms, locale)
    if summary.asset is None:
        title = text(locale, "title.all", window=window_text)
    else:
        title = text(locale, "title.asset", asset=summary.asset, window=window_text)
    blocks: list = []
    if summary.total.events == 0:
        blocks.append(Paragraph(line(text(locale, "empty"))))
    else:
        blocks.append(_totals_fields(summary.total, locale))
        if summary.asset is None:
            shown = summary.by_asset[:TOP_ASSETS_SHOWN]
            blocks.append(split_table(text(locale, "col.asset"), shown, locale))
        blocks.append(split_table(text(locale, "col.venue"), summary.by_venue, locale, venue_name))
        if summary.largest is not None:
            blocks.append(Paragraph(order_line(summary.largest, locale, tz=tz)))
        found = insights(summary, locale)
        if found:
            blocks.append(Bullets(tuple(found)))
    blocks += coverage_notes(summary, locale, tz)
    return Reply(
        title=title,
        blocks=tuple(blocks),
        tone=tone_of(summary.squeeze),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
    )


def with_overview(detail: Reply, summaries: Sequence[Summary], locale: Locale, refresh_command: str) -> Reply:
    """`detail` (the 24 h summary) under one table of the same asset over several
    windows, shortest first: total, longs, shorts and long share side by side."""
    table = Table(
        columns=(
            Column(text(locale, "col.window")),
            Column(text(locale, "col.total"), Align.RIGHT),
            Column(text(locale, "col.longs"), Align.RIGHT),
            Column(text(locale, "col.shorts"), Align.RIGHT),
            Column(text(locale, "col.long_share"), Align.RIGHT),
        ),
        rows=tuple(
            (
                fmt.window_label(s.window.duration_ms, locale),
                fmt.usd(s.total.total_usd, locale),
                fmt.usd(s.total.long_usd, locale),
                fmt.usd(s.total.short_usd, locale),
                "-" if s.total.long_share is None else fmt.share(s.total.long_share, locale),
            )
            for s in summaries
        ),
    )
    return replace(
        detail,
        title=text(locale, "title.overview", asset=summaries[-1].asset),
        blocks=(table, *detail.blocks),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
    )


def top_reply(summary: Summary, locale: Locale, refresh_command: str, tz: tzinfo = UTC) -> Reply:
    window_text = fmt.window_label(summary.window.duration_ms, locale)
    blocks: list = []
    if summary.total.events == 0:
        blocks.append(Paragraph(line(text(locale, "empty"))))
    else:
        blocks.append(split_table(text(locale, "col.asset"), summary.by_asset[:TOP_ASSETS_SHOWN], locale))
        blocks.append(
            Paragraph(line(text(locale, "field.total") + ": ", bold(fmt.usd(summary.total.total_usd, locale))))
        )
    blocks += coverage_notes(summary, locale, tz)
    return Reply(
        title=text(locale, "title.top", window=window_text),
        blocks=tuple(blocks),
        tone=tone_of(summary.squeeze),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
    )


def big_reply(
    events: Sequence[LiquidationEvent],
    asset: str | None,
    window_ms: int,
    locale: Locale,
    tz: tzinfo = UTC,
    silent_streams: Sequence[tuple[str, str]] = (),
) -> Reply:
    scope = asset or text(locale, "scope.all")
    title = text(locale, "title.big", scope=scope, window=fmt.window_label(window_ms, locale))
    if not events:
        return Reply(title=title, blocks=(Paragraph(line(text(locale, "empty"))),))
    price_levels: dict[str, float] = {}  # per asset, so its prices share one precision
    for e in events:
        price_levels[e.asset] = max(price_levels.get(e.asset, 0.0), abs(e.price))
    table = Table(
        columns=(
            Column(f"{text(locale, 'col.time')} ({fmt.zone_label(tz, events[0].at_ms)})"),
            Column(text(locale, "col.asset")),
            Column(text(locale, "col.venue")),
            Column(text(locale, "col.side")),
            Column(text(locale, "col.total"), Align.RIGHT),
            Column(text(locale, "col.price"), Align.RIGHT),
        ),
        rows=tuple(
            (
                fmt.timestamp(e.at_ms, locale, tz)[5:16],
                e.asset,
                venue_name(e.venue),
                text(locale, f"side.{e.liquidated.value}"),
                fmt.usd(e.notional_usd, locale),
                fmt.price(e.price, price_levels[e.asset]),
            )
            for e in events
        ),
    )
    return Reply(title=title, blocks=(table, *venue_notes((e.venue for e in events), silent_streams, locale)))


def status_reply(report: StatusReport, now_ms: int, locale: Locale, tz: tzinfo = UTC) -> Reply:
    if report.events_stored == 0 and not report.streams and report.runtime is None:
        return Reply(title=text(locale, "title.status"), blocks=(Paragraph(line(text(locale, "status.none"))),))
    fields = [Field(text(locale, "status.events"), line(fmt.count(report.events_stored, locale)))]
    if report.first_at_ms is not None:
        fields.append(Field(text(locale, "status.first"), line(fmt.timestamp(report.first_at_ms, locale, tz))))
        fields.append(
            Field(
                text(locale, "status.last"),
                line(f"{fmt.timestamp(report.last_at_ms, locale, tz)} ({fmt.age(now_ms - report.last_at_ms, locale)})"),
            )
        )
    blocks: list = [Fields(tuple(fields))]
    if report.streams:
        blocks.append(Paragraph(line(bold(text(locale, "status.streams")))))
        blocks.append(
            Table(
                columns=(
                    Column(text(locale, "col.stream")),
                    Column(text(locale, "col.state")),
                    Column(text(locale, "col.last_frame")),
                    Column(text(locale, "col.events_1h"), Align.RIGHT),
                    Column(text(locale, "col.gaps_24h"), Align.RIGHT),
                ),
                rows=tuple(
                    (
                        f"{venue_name(s.venue)} {s.stream}",
                        text(locale, f"state.{s.state}"),
                        "-" if s.last_frame_ms is None else fmt.age(now_ms - s.last_frame_ms, locale),
                        fmt.count(s.events_last_hour, locale),
                        str(len(s.gaps_last_day)),
                    )
                    for s in report.streams
                ),
            )
        )
        backfilled = [s for s in report.streams if s.backfilled_last_day]
        if backfilled:
            blocks.append(Paragraph(line(bold(text(locale, "status.backfilled")))))
            blocks.append(Bullets(tuple(
                line(f"{venue_name(s.venue)} {s.stream}: " + stretches(s.backfilled_last_day, locale, tz))
                for s in backfilled
            )))
        errors = [s for s in report.streams if s.last_error]
        if errors:
            blocks.append(Paragraph(line(bold(text(locale, "status.errors")))))
            blocks.append(Bullets(tuple(line(f"{venue_name(s.venue)} {s.stream}: {s.last_error}") for s in errors)))
    if report.runtime is not None:
        blocks += _runtime_blocks(report.runtime, now_ms, locale)
    return Reply(title=text(locale, "title.status"), blocks=tuple(blocks))


def _runtime_blocks(runtime: RuntimeStatus, now_ms: int, locale: Locale) -> list:
    """Chat platforms and market polling of a running `liqbot run`."""

    def service(item: ServiceStatus, name: str) -> tuple:
        parts = [text(locale, f"state.{item.state}")]
        if item.last_ok_ms is not None:
            parts.append(text(locale, "status.last_poll", age=fmt.age(now_ms - item.last_ok_ms, locale)))
        if item.backfilled:
            parts.append(text(locale, "status.oi_backfilled", count=f"{item.backfilled:,}"))
        if item.last_error:
            parts.append(text(locale, "status.last_error", error=item.last_error))
        return line(bold(name), ": " + text(locale, "status.joiner").join(parts))

    platforms = runtime.platforms
    market = runtime.market
    return [
        Paragraph(line(bold(text(locale, "status.platforms")))),
        Bullets(tuple(service(p, p.name.capitalize()) for p in platforms))
        if platforms else Paragraph(line(text(locale, "status.none_enabled"))),
        Paragraph(line(bold(text(locale, "status.market")))),
        Bullets(tuple(service(m, venue_name(m.name)) for m in market))
        if market else Paragraph(line(text(locale, "status.market_off"))),
    ]


def joinable(reply: Reply) -> bool:
    """Whether `reply` can share a message with others (`joined`): text only, no buttons."""
    return not reply.actions and reply.image is None and not reply.ephemeral


def joined(replies: Sequence[Reply]) -> Reply:
    """Several joinable replies to one chat as one message, in order: the first's title
    and tone, then each one's blocks, each next one's after its title as a bold line with
    its tone's mark. Their footnotes become muted paragraphs in place: a renderer that
    gathers notes at the end (Discord's footer) would part each from its reply."""
    first, *rest = replies
    blocks = list(_notes_in_place(first.blocks))
    for reply in rest:
        blocks += [Paragraph(line(bold(f"{TONE_EMOJI[reply.tone]} {reply.title}"))), *_notes_in_place(reply.blocks)]
    return Reply(title=first.title, blocks=tuple(blocks), tone=first.tone)


def _notes_in_place(blocks: Sequence) -> list:
    return [Paragraph(tuple(muted(span.text) for span in block.spans)) if isinstance(block, Note) else block
            for block in blocks]
