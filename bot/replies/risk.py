"""A RiskReport as a Reply (/risk), and as one line (the /liq note, digests)."""

from __future__ import annotations

from bot.core.risk import Reason, RiskLevel, RiskReport
from bot.replies import numbers as fmt
from bot.replies.compose import venue_name
from bot.replies.locales import clauses, listing, text
from bot.replies.model import Action, Bullets, Field, Fields, Note, Paragraph, Reply, Span, Tone, bold, line
from bot.replies.numbers import Locale

LEVEL_EMOJI = {
    RiskLevel.LOW: "🟢",
    RiskLevel.ELEVATED: "🟡",
    RiskLevel.HIGH: "🟠",
    RiskLevel.EXTREME: "🔴",
    None: "⚪",
}
LEVEL_TONE = {
    RiskLevel.LOW: Tone.NEUTRAL,
    RiskLevel.ELEVATED: Tone.WARNING,
    RiskLevel.HIGH: Tone.WARNING,
    RiskLevel.EXTREME: Tone.WARNING,
    None: Tone.NEUTRAL,
}


def signed(fraction: float | None) -> str:
    """A relative change as `+12.3%` / `-4.0%`; `n/a` when unknown."""
    return "n/a" if fraction is None else f"{fraction * 100:+.1f}%"


def level_text(level: RiskLevel | None, locale: Locale) -> str:
    return text(locale, f"risk.level.{level.value if level else 'unknown'}")


def _history(reason: Reason, report: RiskReport, locale: Locale) -> str:
    percentile = reason.number("percentile")
    if percentile is None:
        return text(locale, "risk.percentile", percentile="?", days=report.history_days)
    return text(locale, "risk.percentile", percentile=round(percentile), days=report.history_days)


def reason_text(reason: Reason, report: RiskReport, locale: Locale) -> str:
    """One reason as a sentence with its numbers."""
    values: dict[str, str] = {"history": _history(reason, report, locale)}
    for name, value in reason.numbers:
        if name.endswith("_change"):
            values[name] = signed(value)
        elif name.endswith("_annual"):
            values[name.removeprefix("funding_")] = signed(value)
        elif name.endswith("_usd"):
            values[name] = fmt.usd(value, locale)
        elif name == "share":
            values[name] = fmt.share(value, locale)
        elif name == "ratio":
            values[name] = f"{value:.2f}"
        elif name == "vs_average":
            values[name] = f"{value:.1f}x"
        elif name == "venues":
            values[name] = str(int(value))
    values.setdefault("price_change", "n/a")
    values.setdefault("vs_average", "?x")
    return text(locale, f"risk.reason.{reason.key}", **values)


def _funding_line(report: RiskReport, locale: Locale) -> str:
    parts = []
    for reading in report.funding:
        hours = f"{reading.interval_hours:g}h"
        percentile = "" if reading.percentile is None else f", p{round(reading.percentile)}"
        parts.append(
            f"{venue_name(reading.venue)} {reading.rate * 100:+.4f}%/{hours} ({signed(reading.annualised)}/yr{percentile})"
        )
    return " · ".join(parts)


def _measure_fields(report: RiskReport, locale: Locale) -> Fields | None:
    items = []
    if report.funding:
        items.append(Field(text(locale, "risk.field.funding"), line(_funding_line(report, locale)), inline=False))
    oi = report.open_interest
    if oi is not None:
        changes = text(locale, "risk.changes", h1=signed(oi.change_1h), h24=signed(oi.change_24h), d7=signed(oi.change_7d))
        if oi.percentile is not None:
            changes += " · " + text(locale, "risk.percentile", percentile=round(oi.percentile), days=report.history_days)
        items.append(Field(text(locale, "risk.field.open_interest"), line(bold(fmt.usd(oi.usd, locale)), " · ", changes), False))
        if oi.price is not None:
            moves = text(
                locale, "risk.changes", h1=signed(oi.price_change_1h), h24=signed(oi.price_change_24h), d7=signed(oi.price_change_7d)
            )
            items.append(Field(text(locale, "risk.field.price"), line(fmt.price(oi.price), " · ", moves), False))
    if report.long_short:
        parts = [
            f"{venue_name(r.venue)} {r.ratio:.2f}" + ("" if r.percentile is None else f" (p{round(r.percentile)})")
            for r in report.long_short
        ]
        items.append(Field(text(locale, "risk.field.long_short"), line(" · ".join(parts)), False))
    split = report.liquidations
    if split is not None:
        vs_average = report.liquidations_vs_average
        value = text(
            locale,
            "risk.liquidations" if vs_average is not None else "risk.liquidations_no_history",
            total=fmt.usd(split.total_usd, locale),
            long_share="n/a" if split.long_share is None else fmt.share(split.long_share, locale),
            vs_average="" if vs_average is None else f"{vs_average:.1f}x",
        )
        items.append(Field(text(locale, "risk.field.liquidations"), line(value), False))
    return Fields(tuple(items)) if items else None


def _notes(report: RiskReport, locale: Locale) -> list[Note]:
    notes = []
    if report.missing:
        parts = clauses(locale, (text(locale, f"risk.part.{part}") for part in report.missing))
        notes.append(Note(line(text(locale, "risk.missing", parts=parts))))
    if report.stale:
        venues = listing(locale, (f"{venue_name(v)} ({fmt.age(age, locale)})" for v, age in report.stale))
        notes.append(Note(line(text(locale, "risk.stale", venues=venues))))
    return notes


def risk_reply(report: RiskReport, locale: Locale, refresh_command: str | None = None) -> Reply:
    title = text(locale, "risk.title", asset=report.asset, level=level_text(report.level, locale))
    actions = (Action(text(locale, "action.refresh"), refresh_command),) if refresh_command else ()
    if report.level is None:
        blocks = [Paragraph(line(text(locale, "risk.none", asset=report.asset))), *_notes(report, locale)]
        return Reply(title=title, blocks=tuple(blocks), tone=Tone.NEUTRAL, actions=actions)
    blocks: list = []
    if report.reasons:
        blocks.append(Bullets(tuple(line(reason_text(r, report, locale)) for r in report.reasons)))
    else:
        blocks.append(Paragraph(line(text(locale, "risk.no_reasons"))))
    blocks.append(Paragraph(line(Span(text(locale, "risk.score", score=report.score)))))
    fields = _measure_fields(report, locale)
    if fields is not None:
        blocks.append(fields)
    blocks += _notes(report, locale)
    blocks.append(Note(line(text(locale, "risk.source"))))
    return Reply(title=title, blocks=tuple(blocks), tone=LEVEL_TONE[report.level], actions=actions)


def risk_note(report: RiskReport, locale: Locale) -> str | None:
    """One line for a /liq reply or a digest: the level and its main reason; None without data."""
    if report.level is None:
        return None
    main = report.reasons[0] if report.reasons and report.reasons[0].points > 0 else None
    reason = "" if main is None else (": " if locale == "en" else "：") + reason_text(main, report, locale)
    return f"{LEVEL_EMOJI[report.level]} " + text(
        locale, "risk.note", level=level_text(report.level, locale), reason=reason
    )
