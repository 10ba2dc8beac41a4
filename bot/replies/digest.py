"""The digest's wording: the brief digest (the /liq 24h summary with its change
against the previous day and the recorded average), the full one (the /report
write-up titled as the day's digest), and the one-line notes both carry."""

from __future__ import annotations

from dataclasses import replace

from bot.core.report import WriteUp
from bot.core.summary import Summary
from bot.replies import compose
from bot.replies import numbers as fmt
from bot.replies.locales import text
from bot.replies.model import Note, Paragraph, Reply, line
from bot.replies.report import report_reply


def _signed_change(current: float, reference: float) -> str:
    change = (current / reference - 1) * 100
    return f"{change:+.1f}%"


def digest_reply(summary: Summary, local_date: str, locale: str, tz: str | None = None) -> Reply:
    """The brief digest of a 24 h summary (whose history ranks it against previous days)."""
    base = compose.summary_reply(summary, locale, "/liq 24h", fmt.zone(tz))
    blocks = list(base.blocks)
    history = summary.history
    total = summary.total.total_usd
    if history is None or summary.total.events == 0:
        change = text(locale, "digest.no_history")
    elif history.windows >= 2 and history.average_usd > 0 and history.previous_usd > 0:
        change = text(
            locale,
            "digest.change",
            previous=_signed_change(total, history.previous_usd),
            average=_signed_change(total, history.average_usd),
        )
    elif history.previous_usd > 0:
        change = text(locale, "digest.change_previous", previous=_signed_change(total, history.previous_usd))
    else:
        change = text(locale, "digest.no_history")
    # The comparison goes right after the totals (before the tables).
    blocks.insert(1 if summary.total.events else len(blocks), Paragraph(line(change)))
    return Reply(
        title=text(locale, "title.digest_report", date=local_date),
        blocks=tuple(blocks),
        tone=base.tone,
    )


def with_notes(reply: Reply, notes: list[str]) -> Reply:
    """`notes` as paragraphs before the reply's notes (coverage, at the end), like the /liq note."""
    if not notes:
        return reply
    blocks = list(reply.blocks)
    at = next((i for i, block in enumerate(blocks) if isinstance(block, Note)), len(blocks))
    blocks[at:at] = [Paragraph(line(note)) for note in notes]
    return replace(reply, blocks=tuple(blocks))




def full_digest_reply(write_up: WriteUp, local_date: str, locale: str) -> Reply:
    """The full digest: the day's /report write-up under the digest's title, without buttons."""
    full = report_reply(write_up, locale, "/report 24h")
    title = f"{text(locale, 'title.digest_report', date=local_date)} · {full.title}"
    return replace(full, title=title, actions=())


def asset_note(asset: str, note: str, locale: str) -> str:
    """One asset's line in a digest ("BTC: ...")."""
    return text(locale, "digest.risk_note", asset=asset, note=note)
