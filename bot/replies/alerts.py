"""The messages alerts send (bot.core.alert_rules' `Fired`), in each locale and
the chat's time zone. Wording: bot.replies.locales_alerts."""

from __future__ import annotations

from datetime import UTC, tzinfo

from bot.core.alert_rules import AlertRule, Fired, RuleKind
from bot.core.models import Side
from bot.core.summary import Split, classify_squeeze
from bot.replies import numbers as fmt
from bot.replies.compose import order_line, tone_of
from bot.replies.locales import sentences, text
from bot.replies.model import Bullets, Note, Paragraph, Reply, Tone, line, muted
from bot.replies.risk import LEVEL_EMOJI, LEVEL_TONE, level_text


def alert_reply(fired: Fired, locale: str, tz: tzinfo = UTC) -> Reply:
    """The message of one alert, in `locale`, times in the chat's zone `tz`."""
    total = Split(fired.asset or "all", fired.long_usd, fired.short_usd)
    tone = tone_of(classify_squeeze(total))
    ids = ", ".join(f"#{i}" for i in fired.rule_ids)
    footer = Note(line(muted(text(locale, "alert.footer", ids=ids))))
    if fired.kind is RuleKind.RISK:
        body = f"{LEVEL_EMOJI[fired.level]} " + text(
            locale,
            "alert.fired_risk",
            asset=fired.asset,
            level=level_text(fired.level, locale),
            threshold=level_text(fired.rule_level, locale),
        )
        return Reply(
            title=text(locale, "title.alert_risk", asset=fired.asset),
            blocks=(Paragraph(line(body)), footer),
            tone=LEVEL_TONE[fired.level],
        )
    if fired.kind is RuleKind.CASCADE:
        return _cascade_reply(fired, locale, total, footer, tz)
    if fired.kind is RuleKind.NEAR:
        return _near_reply(fired, locale, footer)
    if fired.kind is RuleKind.BIG and not fired.orders:  # the chat's cap: one line, never a delay
        body = text(
            locale,
            "alert.big_summary",
            count=fired.more_orders,
            threshold=fmt.usd(fired.threshold_usd, locale),
            amount=fmt.usd(fired.total_usd, locale),
        )
        return Reply(title=text(locale, "title.alert_big"), blocks=(Paragraph(line(body)), footer), tone=tone)
    if fired.kind is RuleKind.BIG:
        head = text(
            locale,
            "alert.fired_big",
            count=len(fired.orders) + fired.more_orders,
            threshold=fmt.usd(fired.threshold_usd, locale),
            amount=fmt.usd(fired.total_usd, locale),
        )
        orders = tuple(order_line(e, locale, "alert.order", tz) for e in fired.orders)
        blocks: list = [Paragraph(line(head)), Bullets(orders)]
        if fired.more_orders:
            blocks.append(Paragraph(line(text(locale, "alert.more_orders", count=fired.more_orders))))
        blocks.append(footer)
        return Reply(title=text(locale, "title.alert_big"), blocks=tuple(blocks), tone=tone)
    window = fmt.window_label(fired.window_ms, locale)
    if fired.kind is RuleKind.TOTAL:
        body = text(
            locale,
            "alert.fired_total",
            asset=fired.asset,
            amount=fmt.usd(fired.total_usd, locale),
            window=window,
            threshold=fmt.usd(fired.threshold_usd, locale),
            long_share=fmt.share(total.long_share or 0.0, locale),
            short_share=fmt.share(total.short_share or 0.0, locale),
        )
        title = text(locale, "title.alert_total", asset=fired.asset)
    else:
        heavier = Side.LONG if fired.long_usd >= fired.short_usd else Side.SHORT
        body = text(
            locale,
            "alert.fired_skew",
            asset=fired.asset,
            share=fmt.share(fired.share, locale),
            window=window,
            side=text(locale, f"side.{heavier.value}"),
            amount=fmt.usd(fired.total_usd, locale),
            threshold_share=fmt.share(fired.rule_share, locale),
        )
        title = text(locale, "title.alert_skew", asset=fired.asset)
    return Reply(title=title, blocks=(Paragraph(line(body)), footer), tone=tone)


def _cascade_reply(fired: Fired, locale: str, total: Split, footer: Note, tz: tzinfo) -> Reply:
    """A cascade's start (in progress) or its end, with its totals."""
    cascade = fired.cascade
    scope = fired.asset or text(locale, "alert.scope_all")
    shares = {
        "scope": scope,
        "amount": fmt.usd(fired.total_usd, locale),
        "long_share": fmt.share(total.long_share or 0.0, locale),
        "short_share": fmt.share(total.short_share or 0.0, locale),
    }
    if cascade.in_progress:
        body = text(locale, "alert.cascade_started", start=fmt.timestamp(cascade.start_ms, locale, tz),
                    threshold=fmt.usd(fired.threshold_usd, locale), **shares)
    else:
        parts = [text(locale, "alert.cascade_ended", duration=fmt.duration(cascade.duration_ms, locale), **shares)]
        if fired.largest is not None:
            parts.append(text(locale, "alert.cascade_largest", amount=fmt.usd(fired.largest.usd, locale),
                              asset=fired.largest.asset, side=text(locale, f"side.{fired.largest.side.value}")))
        body = sentences(locale, parts)
    return Reply(title=text(locale, "title.alert_cascade", scope=scope), blocks=(Paragraph(line(body)), footer),
                 tone=tone_of(classify_squeeze(total)))


def _near_reply(fired: Fired, locale: str, footer: Note) -> Reply:
    band = fired.band
    body = text(
        locale,
        f"alert.fired_near_{band.side.value}",
        asset=fired.asset,
        distance=_percent(fired.share),
        amount=fmt.usd(band.usd, locale),
        low=fmt.price(band.low, fired.price),
        high=fmt.price(band.high, fired.price),
        price=fmt.price(fired.price),
        threshold=_percent(fired.rule_share),
    )
    return Reply(title=text(locale, "title.alert_near", asset=fired.asset), blocks=(Paragraph(line(body)), footer),
                 tone=Tone.WARNING)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def describe_rule(rule: AlertRule, locale: str) -> str:
    if rule.kind is RuleKind.RISK:
        return text(locale, "alert.rule_risk", asset=rule.asset, level=level_text(rule.level, locale))
    amount = fmt.usd(rule.threshold_usd, locale)
    if rule.kind is RuleKind.NEAR:
        return text(locale, "alert.rule_near", asset=rule.asset, distance=_percent(rule.share), amount=amount)
    if rule.kind is RuleKind.CASCADE:
        return text(locale, "alert.rule_cascade", amount=amount, scope=rule.asset or text(locale, "alert.scope_all"))
    if rule.kind is RuleKind.BIG:
        if rule.asset is None:
            return text(locale, "alert.rule_big_any", amount=amount)
        return text(locale, "alert.rule_big", asset=rule.asset, amount=amount)
    window = fmt.window_label(rule.window_ms, locale)
    if rule.kind is RuleKind.TOTAL:
        return text(locale, "alert.rule_total", asset=rule.asset, amount=amount, window=window)
    return text(locale, "alert.rule_skew", asset=rule.asset, amount=amount, window=window,
                share=fmt.share(rule.share, locale))
