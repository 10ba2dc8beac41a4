"""Renderers against golden files, escaping, and the platforms' size limits.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_replies_render.py`, then review the diff.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import discord
import pytest

from bot.replies import numbers
from bot.replies.layout import display_width, layout_table, utf16_len
from bot.replies.model import (
    Action,
    Align,
    Bullets,
    Column,
    Field,
    Fields,
    Image,
    Note,
    Paragraph,
    Reply,
    Span,
    Style,
    Table,
    Tone,
    bold,
    code,
    line,
    muted,
)
from bot.replies.render_discord import (
    DESCRIPTION_LIMIT,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FIELDS_PER_EMBED,
    FOOTER_LIMIT,
    MESSAGE_TOTAL_LIMIT,
    TITLE_LIMIT,
    TONE_COLOUR,
    render_discord,
)
from bot.replies.render_plain import render_plain
from bot.replies.render_telegram import MESSAGE_LIMIT_UTF16, render_telegram
from tests.support import check_golden


# The 24h BTC long squeeze of DESIGN.md, split over three venues (USD).
VENUES_USD = {  # venue: (longs, shorts)
    "binance": (32_100_000, 8_020_000),
    "bybit": (20_050_000, 5_450_000),
    "okx": (10_040_000, 2_810_000),
}

TEXT = {
    "en": {
        "title": "BTC liquidations · 24h",
        "labels": ("Total", "Longs", "Shorts", "Count"),
        "columns": ("Venue", "Total", "Longs", "Shorts"),
        "insights": (
            line("Long squeeze: ", bold("79.25%"), " of the value liquidated was longs."),
            line("Binance carried the most, ", bold("$40.12M"), "."),
            line("Largest order: ", code("BTCUSDT"), " ", muted("$4.2M on binance")),
        ),
        "note": "Venues throttle liquidation feeds; totals are a lower bound.",
        "refresh": "Refresh",
    },
    "zh": {
        "title": "BTC 爆仓 · 24小时",
        "labels": ("总额", "多单", "空单", "笔数"),
        "columns": ("交易所", "总额", "多单", "空单"),
        "insights": (
            line("多头挤压：", bold("79.25%"), " 的爆仓金额来自多单。"),
            line("币安占比最大，", bold("4012万美元"), "。"),
            line("最大单笔：", code("BTCUSDT"), " ", muted("币安 420万美元")),
        ),
        "note": "交易所会限流爆仓推送；总额为下限。",
        "refresh": "刷新",
    },
}


def summary_reply(locale: numbers.Locale) -> Reply:
    text = TEXT[locale]
    longs = sum(v[0] for v in VENUES_USD.values())
    shorts = sum(v[1] for v in VENUES_USD.values())
    total = longs + shorts
    usd = lambda amount: numbers.usd(amount, locale)  # noqa: E731
    totals = Fields(
        tuple(
            Field(label, value)
            for label, value in zip(
                text["labels"],
                (
                    line(bold(usd(total))),
                    line(usd(longs), " (", numbers.share(longs / total, locale), ")"),
                    line(usd(shorts), " (", numbers.share(shorts / total, locale), ")"),
                    line(numbers.count(1234, locale)),
                ),
            )
        )
    )
    venue, *amounts = text["columns"]
    per_venue = Table(
        columns=(Column(venue), *(Column(header, Align.RIGHT) for header in amounts)),
        rows=tuple((name, usd(lo + sh), usd(lo), usd(sh)) for name, (lo, sh) in VENUES_USD.items()),
    )
    return Reply(
        title=text["title"],
        tone=Tone.LONGS_HIT,
        blocks=(totals, per_venue, Bullets(text["insights"]), Note(line(text["note"]))),
        actions=(Action(text["refresh"], "/liq BTC 24h"),),
    )


@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_plain_golden(locale):
    check_golden(f"summary_{locale}.txt", render_plain(summary_reply(locale)))


@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_telegram_golden(locale):
    messages = render_telegram(summary_reply(locale))
    assert len(messages) == 1
    check_golden(f"summary_{locale}.html", messages[0] + "\n")


@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_discord_golden(locale):
    messages = render_discord(summary_reply(locale))
    check_golden(f"summary_{locale}.json", json.dumps(messages, ensure_ascii=False, indent=2) + "\n")


def test_plain_table_aligns_cjk_by_display_width():
    table_lines = render_plain(summary_reply("zh")).split("\n\n")[2].splitlines()
    widths = {display_width(row) for row in table_lines}
    assert len(widths) == 1, table_lines  # all rows end in the same column: right-aligned amounts
    assert table_lines[0].startswith("交易所  ")


def test_layout_rejects_ragged_rows():
    with pytest.raises(ValueError, match="2 cells, expected 3"):
        layout_table(Table((Column("a"), Column("b"), Column("c")), (("1", "2"),)))


# --- escaping ---------------------------------------------------------------

HOSTILE = "<script>&amp; *bold* _x_ `tick` [link](https://evil.example) ~~s~~ |sp| > q"


def hostile_reply() -> Reply:
    return Reply(
        title=HOSTILE,
        blocks=(
            Paragraph(line(HOSTILE, bold(HOSTILE), code("a<b>&`c"))),
            Fields((Field(HOSTILE, line(HOSTILE)),)),
            Table((Column("<th>"),), (("a&b<c>",),)),
            Note(line(HOSTILE)),
        ),
    )


def test_telegram_escapes_user_text():
    (message,) = render_telegram(hostile_reply())
    assert "<script>" not in message
    assert "&lt;script&gt;&amp;amp;" in message
    assert "<code>a&lt;b&gt;&amp;`c</code>" in message
    assert "<pre>&lt;th&gt;" in message and "a&amp;b&lt;c&gt;" in message
    assert_balanced(message)


def test_discord_escapes_user_text_but_not_the_plain_footer():
    (embed,) = render_discord(hostile_reply())[0]
    escaped = r"<script\>&amp; \*bold\* \_x\_ \`tick\` \[link\](https://evil.example) \~\~s\~\~ \|sp\| \> q"
    assert embed["title"] == escaped
    assert embed["description"].startswith(escaped + "**" + escaped + "**")
    assert embed["fields"][0]["name"] == escaped
    assert embed["footer"]["text"] == HOSTILE  # footers render no markdown


def test_discord_escapes_line_start_markers():
    (embed,) = render_discord(Reply("t", (Paragraph(line("# not a heading\n-# not small\n- not a list")),)))[0]
    assert embed["description"] == "\\# not a heading\n\\-# not small\n\\- not a list"


def test_discord_moves_spaces_outside_style_markers():
    (embed,) = render_discord(Reply("t", (Paragraph(line("a", bold(" b "), Span("c", Style.ITALIC))),)))[0]
    assert embed["description"] == "a **b** *c*"


def test_telegram_note_italicises_spans_without_nesting_tags():
    (message,) = render_telegram(Reply("t", (Note(line("a ", bold("b"), code("c"), muted("d"))),)))
    assert message.endswith("<i>a </i><b><i>b</i></b><code>c</code><i>d</i>")


# --- Telegram's 4096 limit --------------------------------------------------


class BalanceChecker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
        self.open.pop()


def assert_balanced(message: str) -> None:
    checker = BalanceChecker()
    checker.feed(message)
    checker.close()
    assert checker.open == [], f"unclosed {checker.open}"


def assert_telegram_sized(messages: list[str]) -> None:
    for message in messages:
        assert 0 < utf16_len(message) < MESSAGE_LIMIT_UTF16
        assert_balanced(message)


def big_table(rows: int) -> Table:
    return Table(
        (Column("Symbol"), Column("Total", Align.RIGHT), Column("Note")),
        tuple((f"SYM{i}USDT", numbers.usd(i * 12_345.6, "en"), "a&b <c>") for i in range(rows)),
    )


def test_telegram_splits_a_300_row_table_into_pre_blocks_with_headers():
    reply = Reply("Big", (Paragraph(line("before")), big_table(300), Paragraph(line("after"))))
    messages = render_telegram(reply)
    assert len(messages) > 3
    assert_telegram_sized(messages)
    pres = [pre for message in messages for pre in message.split("<pre>")[1:]]
    assert all(pre.startswith("Symbol") for pre in pres)  # header repeated in each part
    text = "".join(messages)
    assert all(f"SYM{i}USDT " in text for i in range(300))
    assert text.count("SYM") == 300  # no row lost or duplicated
    assert messages[0].startswith("📊 <b>Big</b>\n\nbefore")
    assert messages[-1].endswith("after")


def test_telegram_splits_one_long_styled_line_at_spaces_with_tags_reopened():
    words = " ".join(f"w{i}&" for i in range(3000))
    messages = render_telegram(Reply("Long", (Paragraph(line("start ", bold(words), " end")),)))
    assert len(messages) >= 4
    assert_telegram_sized(messages)
    assert all(message.startswith("<b>") for message in messages[2:])
    assert "".join(messages).count("&amp;") == 3000
    assert not any(message.endswith("&") for message in messages)


def test_telegram_measures_utf16_not_code_points():
    emoji = "😀" * 3000  # 2 UTF-16 units each: 6000 units, 3000 code points
    messages = render_telegram(Reply("Emoji", (Paragraph(line(emoji)),)))
    assert len(messages) >= 2
    assert_telegram_sized(messages)
    assert "".join(messages).count("😀") == 3000


def test_telegram_splits_many_bullets_and_fields_at_line_boundaries():
    bullets = Bullets(tuple(line(f"insight {i} <", bold("x")) for i in range(400)))
    fields = Fields(tuple(Field(f"label {i}", line(code("/liq BTC 24h"))) for i in range(300)))
    messages = render_telegram(Reply("Many", (bullets, fields)))
    assert_telegram_sized(messages)
    lines = [row for message in messages for row in message.split("\n")]
    assert sum(row.startswith("• insight") for row in lines) == 400
    assert sum(row.startswith("<b>label") for row in lines) == 300


# --- Discord's limits --------------------------------------------------------


def assert_discord_sized(messages: list[list[dict]]) -> None:
    for embeds in messages:
        assert 1 <= len(embeds) <= EMBEDS_PER_MESSAGE
        total = 0
        for data in embeds:
            embed = discord.Embed.from_dict(data)  # the shape discord.py accepts
            assert len(embed) <= MESSAGE_TOTAL_LIMIT
            total += len(embed)
            assert utf16_len(data.get("title", "")) <= TITLE_LIMIT
            assert utf16_len(data.get("description", "")) <= DESCRIPTION_LIMIT
            assert utf16_len(data.get("footer", {}).get("text", "")) <= FOOTER_LIMIT
            assert len(data.get("fields", ())) <= FIELDS_PER_EMBED
            for field in data.get("fields", ()):
                assert 0 < utf16_len(field["name"]) <= FIELD_NAME_LIMIT
                assert 0 < utf16_len(field["value"]) <= FIELD_VALUE_LIMIT
        assert total <= MESSAGE_TOTAL_LIMIT


def all_fields(messages: list[list[dict]]) -> list[dict]:
    return [field for embeds in messages for embed in embeds for field in embed.get("fields", ())]


def test_discord_splits_30_fields_over_embeds():
    fields = Fields(tuple(Field(f"F{i}", line(f"v{i}")) for i in range(30)))
    messages = render_discord(Reply("Thirty", (fields,), tone=Tone.SHORTS_HIT))
    assert_discord_sized(messages)
    embeds = [embed for embeds in messages for embed in embeds]
    assert [len(embed["fields"]) for embed in embeds] == [25, 5]
    assert [field["name"] for field in all_fields(messages)] == [f"F{i}" for i in range(30)]
    assert {embed["color"] for embed in embeds} == {TONE_COLOUR[Tone.SHORTS_HIT]}
    assert "title" not in embeds[1]


def test_discord_continues_a_long_field_value_in_blank_named_fields():
    words = " ".join(["word"] * 300)  # 1499 characters
    messages = render_discord(Reply("Long", (Fields((Field("Why", line(words), inline=False),)),)))
    assert_discord_sized(messages)
    fields = all_fields(messages)
    assert [field["name"] for field in fields] == ["Why", "\u200b"]
    assert " ".join(field["value"] for field in fields) == words


def test_discord_splits_a_300_row_table_within_message_totals():
    reply = Reply("Big", (Paragraph(line("intro")), big_table(300)), image=Image(b"png", "chart.png"))
    messages = render_discord(reply)
    assert len(messages) > 1
    assert_discord_sized(messages)
    descriptions = [embed["description"] for embeds in messages for embed in embeds]
    assert descriptions[0] == "intro"  # the first table part fills a description of its own
    assert all(d.startswith("```\nSymbol") for d in descriptions[1:])
    assert all(d.count("```") % 2 == 0 for d in descriptions)
    assert "".join(descriptions).count("SYM") == 300
    assert messages[0][0]["image"] == {"url": "attachment://chart.png"}


def test_discord_puts_blocks_after_fields_into_full_width_fields_in_order():
    (embed,) = render_discord(summary_reply("en"))[0]
    assert "description" not in embed  # the reply starts with Fields
    names = [field["name"] for field in embed["fields"]]
    assert names == ["Total", "Longs", "Shorts", "Count", "\u200b", "\u200b"]
    assert embed["fields"][4]["value"].startswith("```\nVenue")
    assert embed["fields"][4]["inline"] is False


def test_discord_truncates_only_what_cannot_be_split():
    reply = Reply("T" * 300, (Fields((Field("N" * 300, line("v")),)), Note(line("n" * 3000))))
    (embed,) = render_discord(reply)[0]
    assert embed["title"] == "T" * 255 + "…"
    assert embed["fields"][0]["name"] == "N" * 255 + "…"
    assert embed["footer"]["text"] == "n" * 2047 + "…"
