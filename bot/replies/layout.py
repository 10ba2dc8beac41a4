"""Layout shared by the renderers: display widths, table columns, tone marks, packing.

Markup-free: every function here returns plain text; renderers add their markup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.replies.model import Align, Table, Tone

TONE_EMOJI = {
    Tone.LONGS_HIT: "🔴",
    Tone.SHORTS_HIT: "🟢",
    Tone.WARNING: "⚠️",
    Tone.ERROR: "❌",
    Tone.NEUTRAL: "📊",
}

COLUMN_GAP = "  "
BULLET = "• "


def display_width(text: str) -> int:
    """Terminal/monospace columns: wide and fullwidth (CJK) count 2, combining marks 0."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def labelled(label: str) -> tuple[str, str]:
    """A label with its colon, and the space after that: `Total:` + " ", but `总计：` + ""
    (a full-width colon after Chinese, which takes no space)."""
    if label and display_width(label[-1]) == 2:
        return label + "：", ""
    return label + ":", " "


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram and Discord count limits in."""
    return len(text.encode("utf-16-le")) // 2


def pad(text: str, width: int, align: Align = Align.LEFT) -> str:
    fill = " " * max(0, width - display_width(text))
    return fill + text if align is Align.RIGHT else text + fill


@dataclass(frozen=True, slots=True)
class TableLines:
    """A table laid out as monospace lines: a header line, a rule, one line per row."""

    head: tuple[str, str]
    body: tuple[str, ...]

    @property
    def lines(self) -> tuple[str, ...]:
        return self.head + self.body


def layout_table(table: Table, cell: Callable[[str], str] = str) -> TableLines:
    """Align a table's cells in columns; `cell` makes a cell safe for the target (e.g. no backticks)."""
    width = len(table.columns)
    for row in table.rows:
        if len(row) != width:
            raise ValueError(f"table row has {len(row)} cells, expected {width}: {row!r}")
    headers = [cell(c.header) for c in table.columns]
    rows = [[cell(text) for text in row] for row in table.rows]
    widths = [max(display_width(text) for text in column) for column in zip(headers, *rows)]

    def join(cells: Iterable[str]) -> str:
        padded = (pad(text, w, c.align) for text, w, c in zip(cells, widths, table.columns))
        return COLUMN_GAP.join(padded).rstrip()

    rule = COLUMN_GAP.join("-" * w for w in widths)
    return TableLines(head=(join(headers), rule), body=tuple(join(row) for row in rows))


def pack(pieces: Iterable[str], separator: str, budget: int, measure: Callable[[str], int]) -> list[list[str]]:
    """Group pieces greedily so each group joined by `separator` measures at most `budget`.

    A piece larger than the budget gets a group of its own; callers split such
    pieces first when they must.
    """
    groups: list[list[str]] = []
    size = 0
    gap = measure(separator)
    for piece in pieces:
        cost = measure(piece)
        if groups and size + gap + cost <= budget:
            groups[-1].append(piece)
            size += gap + cost
        else:
            groups.append([piece])
            size = cost
    return groups
