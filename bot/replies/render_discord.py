"""Discord embeds, as the dicts `discord.Embed.from_dict` accepts.

`render_discord(reply) -> list[list[dict]]`: messages in order, each a list of
embeds to send together. Block order is kept: blocks before the first Fields
block form the description; Fields items become embed fields; blocks after
them become full-width fields with a blank name. Notes form the footer (plain
text: footers render no markdown) of the last embed. The image, which the
adapter attaches as a file, is shown in the first embed. Actions become buttons
in the adapter.

Discord's limits are enforced by splitting, never by silent truncation: a long
table becomes several code blocks (each repeating its header), a long field
value continues in blank-named fields, a full embed continues in the next embed
and a full message (10 embeds or 6000 characters) in the next message. Only
texts that cannot be split — the title, a field name, the footer — are
truncated, ending in "…". Lengths are measured in UTF-16 code units, which is
never less than Discord's own count.
"""

from __future__ import annotations

import re

from bot.replies.layout import BULLET, layout_table, pack, utf16_len
from bot.replies.model import Block, Bullets, Fields, Line, Note, Paragraph, Reply, Span, Style, Table, Tone

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_PER_EMBED = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBEDS_PER_MESSAGE = 10
MESSAGE_TOTAL_LIMIT = 6000  # characters over all embeds of one message (and so of one embed)

BLANK_NAME = "\u200b"  # Discord requires a non-empty field name and value
ELLIPSIS = "…"
BLOCK_SEPARATOR = "\n\n"

TONE_COLOUR = {
    Tone.LONGS_HIT: 0xE74C3C,
    Tone.SHORTS_HIT: 0x2ECC71,
    Tone.WARNING: 0xE67E22,
    Tone.ERROR: 0x992D22,
    Tone.NEUTRAL: 0x5865F2,
}

_STYLE_MARK = {Style.PLAIN: "", Style.BOLD: "**", Style.ITALIC: "*", Style.MUTED: "*"}
# Brackets too: a masked link `[text](url)` in user text would render as a link.
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|>\[\]])")
_LINE_MARKER = re.compile(r"^(\s*)([#-])", re.MULTILINE)  # headings, lists, -# subtext


def escape_markdown(text: str) -> str:
    return _LINE_MARKER.sub(r"\1\\\2", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _longest_prefix(text: str, budget: int) -> str:
    size = 0
    for i, ch in enumerate(text):
        size += utf16_len(ch)
        if size > budget:
            return text[:i]
    return text


def _truncate(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    return _longest_prefix(text, limit - utf16_len(ELLIPSIS)) + ELLIPSIS


def _span(span: Span) -> str:
    if not span.text:
        return ""
    if span.style is Style.CODE:
        # Double backticks let a backtick appear inside inline code.
        return f"`` {span.text} ``" if "`" in span.text else f"`{span.text}`"
    mark = _STYLE_MARK[span.style]
    core = span.text.strip()
    if not mark or not core:
        return escape_markdown(span.text)
    # Markers only work hugging the text, so surrounding spaces go outside them.
    lead = span.text[: len(span.text) - len(span.text.lstrip())]
    trail = span.text[len(span.text.rstrip()) :]
    return f"{lead}{mark}{escape_markdown(core)}{mark}{trail}"


def _markdown(spans: Line) -> str:
    return "".join(_span(span) for span in spans)


def _fence_safe(cell: str) -> str:
    # A backtick run in a cell could close the code fence early.
    return cell.replace("`", "ˋ")


def _fenced(lines: tuple[str, ...]) -> str:
    return "```\n" + "\n".join(lines) + "\n```"


def _split_text(text: str, budget: int) -> list[str]:
    """Pieces of at most `budget`, cut at lines, then spaces, then anywhere."""
    pieces: list[str] = []
    for line in text.split("\n"):
        while utf16_len(line) > budget:
            head = _longest_prefix(line, budget)
            cut = head.rfind(" ")
            head = head[:cut] if cut > 0 else head
            pieces.append(head)
            line = line[len(head) :].lstrip(" ")
        pieces.append(line)
    return ["\n".join(group) for group in pack(pieces, "\n", budget, utf16_len)]


def _table(table: Table, budget: int) -> list[str]:
    laid_out = layout_table(table, cell=_fence_safe)
    frame = utf16_len(_fenced(laid_out.head)) + 1  # + the newline before the first row
    groups = pack(laid_out.body, "\n", budget - frame, utf16_len) or [[]]
    return [piece for group in groups for piece in _split_text(_fenced(laid_out.head + tuple(group)), budget)]


def _text_block(block: Block, budget: int) -> list[str]:
    match block:
        case Paragraph(spans):
            text = _markdown(spans)
        case Table():
            return _table(block, budget)
        case Bullets(items):
            text = "\n".join(BULLET + _markdown(item) for item in items)
        case _:
            raise TypeError(f"not a text block: {block!r}")
    return _split_text(text, budget) if text else []


class _Messages:
    """Fills embeds and messages in order, opening a new one when a limit would be crossed.

    An embed's total never exceeds its message's total and both limits are
    6000, so checking the message total covers the embed total too.
    """

    def __init__(self, colour: int) -> None:
        self.colour = colour
        self.messages: list[list[dict]] = [[{"color": colour}]]
        self.message_total = 0

    @property
    def embed(self) -> dict:
        return self.messages[-1][-1]

    def _fits(self, cost: int) -> bool:
        return self.message_total + cost <= MESSAGE_TOTAL_LIMIT

    def _new_embed(self, cost: int) -> None:
        if len(self.messages[-1]) == EMBEDS_PER_MESSAGE or not self._fits(cost):
            self.messages.append([])
            self.message_total = 0
        self.messages[-1].append({"color": self.colour})

    def title(self, text: str) -> None:
        self.embed["title"] = text
        self.message_total += utf16_len(text)

    def description(self, piece: str) -> None:
        current = self.embed.get("description", "")
        addition = BLOCK_SEPARATOR + piece if current else piece
        if (
            "fields" in self.embed  # the description shows above fields: keep block order
            or utf16_len(current + addition) > DESCRIPTION_LIMIT
            or not self._fits(utf16_len(addition))
        ):
            self._new_embed(utf16_len(piece))
            current, addition = "", piece
        self.embed["description"] = current + addition
        self.message_total += utf16_len(addition)

    def field(self, name: str, value: str, inline: bool) -> None:
        cost = utf16_len(name) + utf16_len(value)
        if len(self.embed.get("fields", ())) == FIELDS_PER_EMBED or not self._fits(cost):
            self._new_embed(cost)
        self.embed.setdefault("fields", []).append({"name": name, "value": value, "inline": inline})
        self.message_total += cost

    def footer(self, text: str) -> None:
        if not self._fits(utf16_len(text)):
            self._new_embed(utf16_len(text))
        self.embed["footer"] = {"text": text}
        self.message_total += utf16_len(text)


def render_discord(reply: Reply) -> list[list[dict]]:
    out = _Messages(TONE_COLOUR[reply.tone])
    out.title(_truncate(escape_markdown(reply.title), TITLE_LIMIT))
    if reply.image is not None:
        out.embed["image"] = {"url": f"attachment://{reply.image.filename}"}
    fields_seen = False
    notes: list[str] = []
    for block in reply.blocks:
        match block:
            case Note(spans):
                notes.append("".join(span.text for span in spans))
            case Fields(items):
                fields_seen = True
                for item in items:
                    name = _truncate(escape_markdown(item.label), FIELD_NAME_LIMIT) or BLANK_NAME
                    value = _markdown(item.value) or BLANK_NAME
                    for i, piece in enumerate(_split_text(value, FIELD_VALUE_LIMIT)):
                        out.field(name if i == 0 else BLANK_NAME, piece, item.inline)
            case _ if fields_seen:
                for piece in _text_block(block, FIELD_VALUE_LIMIT):
                    out.field(BLANK_NAME, piece, inline=False)
            case _:
                for piece in _text_block(block, DESCRIPTION_LIMIT):
                    out.description(piece)
    if notes:
        out.footer(_truncate("\n".join(notes), FOOTER_LIMIT))
    return out.messages
