"""What the bot says, without any markup. Renderers turn this into text.

A Reply is a title, a tone and a sequence of blocks. Text is already in the
chat's language; styles say what a piece of text *is* (bold, code, muted),
never how a platform spells it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tone(StrEnum):
    NEUTRAL = "neutral"
    LONGS_HIT = "longs_hit"  # mostly longs liquidated (a long squeeze): red
    SHORTS_HIT = "shorts_hit"  # mostly shorts liquidated: green
    WARNING = "warning"
    ERROR = "error"


class Style(StrEnum):
    PLAIN = "plain"
    BOLD = "bold"
    ITALIC = "italic"
    CODE = "code"
    MUTED = "muted"


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    style: Style = Style.PLAIN


Line = tuple[Span, ...]


def line(*parts: str | Span) -> Line:
    """Build a line from strings (plain) and Spans."""
    return tuple(p if isinstance(p, Span) else Span(p) for p in parts)


def bold(text: str) -> Span:
    return Span(text, Style.BOLD)


def code(text: str) -> Span:
    return Span(text, Style.CODE)


def muted(text: str) -> Span:
    return Span(text, Style.MUTED)


@dataclass(frozen=True, slots=True)
class Paragraph:
    spans: Line


@dataclass(frozen=True, slots=True)
class Field:
    label: str
    value: Line
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Fields:
    """Label/value pairs (Discord embed fields; `label: value` lines elsewhere)."""

    items: tuple[Field, ...]


class Align(StrEnum):
    LEFT = "left"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    align: Align = Align.LEFT


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Note:
    """A footnote: coverage caveats, data sources. Rendered small/muted."""

    spans: Line


Block = Paragraph | Fields | Table | Bullets | Note


@dataclass(frozen=True, slots=True)
class Action:
    """A button that re-runs a command (e.g. refresh)."""

    label: str
    command: str


@dataclass(frozen=True, slots=True)
class Image:
    """A rendered picture (PNG bytes) with its file name."""

    png: bytes
    filename: str


@dataclass(frozen=True, slots=True)
class Reply:
    title: str
    blocks: tuple[Block, ...] = ()
    tone: Tone = Tone.NEUTRAL
    actions: tuple[Action, ...] = ()
    image: Image | None = None
    ephemeral: bool = False  # errors and refusals: only the caller sees them where possible
