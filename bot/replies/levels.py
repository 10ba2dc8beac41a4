"""A LevelsView as a Reply (/levels)."""

from __future__ import annotations

from bot.core.levels import Band, Grade, LevelsView
from bot.replies import numbers as fmt
from bot.replies.locales import clauses, text
from bot.replies.model import Action, Bullets, Note, Paragraph, Reply, Tone, bold, line
from bot.replies.numbers import Locale

GRADED_DAYS = (7, 30)


def _band(band: Band, price: float, locale: Locale) -> str:
    return text(
        locale,
        "levels.band",
        low=fmt.price(band.low, price),
        high=fmt.price(band.high, price),
        amount=fmt.usd(band.usd, locale),
        distance=f"{band.distance(price) * 100:+.1f}%",
    )


def _side(title_key: str, bands: tuple[Band, ...], price: float, locale: Locale) -> list:
    rows = [_band(band, price, locale) for band in bands] or [text(locale, "levels.side_empty")]
    return [Paragraph(line(bold(text(locale, title_key)))), Bullets(tuple(line(row) for row in rows))]


def _grade(days: int, grade: Grade, tolerance: float, locale: Locale) -> str:
    if not grade.crossings:
        return text(locale, "levels.grade_none", days=days)
    return text(
        locale,
        "levels.grade",
        days=days,
        estimated=fmt.usd(grade.estimated_usd, locale),
        matched=fmt.usd(grade.matched_usd, locale),
        tolerance=f"{tolerance * 100:g}%",
        hit=grade.crossings_hit,
        crossed=grade.crossings,
    )


def model_note(leverage: tuple[float, float], locale: Locale) -> Note:
    """What the estimate is made of, with the model's leverage range."""
    low, high = leverage
    return Note(line(text(locale, "levels.model", low=f"{low:g}", high=f"{high:g}")))


def levels_reply(view: LevelsView, locale: Locale, tz: str | None = None, refresh_command: str | None = None) -> Reply:
    title = text(locale, "levels.title", asset=view.asset)
    actions = (Action(text(locale, "action.refresh"), refresh_command),) if refresh_command else ()
    if view.price is None or view.at_ms is None:
        return Reply(title=title, blocks=(Paragraph(line(text(locale, "levels.none", asset=view.asset))),),
                     tone=Tone.NEUTRAL, actions=actions)
    span = fmt.duration(view.at_ms - (view.first_bar_ms or view.at_ms), locale)
    when = fmt.timestamp(view.at_ms, locale, fmt.zone(tz))
    blocks = [
        Paragraph(line(text(locale, "levels.price", price=fmt.price(view.price), time=when, span=span))),
        *_side("levels.shorts_above", view.shorts_above, view.price, locale),
        *_side("levels.longs_below", view.longs_below, view.price, locale),
        Note(line(_grade(7, view.grade_7d, view.tolerance, locale))),
        Note(line(_grade(30, view.grade_30d, view.tolerance, locale))),
        model_note(view.leverage, locale),
    ]
    return Reply(title=title, blocks=tuple(blocks), tone=Tone.NEUTRAL, actions=actions)


def levels_note(view: LevelsView, locale: Locale) -> str | None:
    """One line for the full digest: the nearest dense band on each side; None without them."""
    if view.price is None or not (view.longs_below or view.shorts_above):
        return None
    parts = []
    for key, bands in (("levels.note_longs", view.longs_below), ("levels.note_shorts", view.shorts_above)):
        if bands:
            band = bands[0]
            parts.append(text(locale, key, amount=fmt.usd(band.usd, locale), low=fmt.price(band.low, view.price),
                              high=fmt.price(band.high, view.price), distance=f"{band.distance(view.price) * 100:+.1f}%"))
    return text(locale, "levels.note", bands=clauses(locale, parts), asset=view.asset)
