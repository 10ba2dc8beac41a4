"""Telegram messages in HTML parse mode.

`render_telegram` returns the texts to send in order. Actions and the image are
not part of the text: the adapter turns `reply.actions` into inline buttons and
sends `reply.image` as a photo.

Only `&`, `<` and `>` need escaping in Telegram HTML. Tags are never nested
(Telegram forbids entities inside `code`/`pre`), so a Note, which is italic,
italicises each of its spans instead of wrapping them.

Each message is strictly under Telegram's 4096 limit, measured in UTF-16 code
units on the HTML itself (longer than the parsed text, so conservative).
Messages break at block boundaries; a block too long for one message breaks at
lines (a table into several `<pre>`s, each repeating the header), then at
spaces, then anywhere; every message has balanced tags.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

from bot.replies.layout import BULLET, TONE_EMOJI, labelled, layout_table, pack, utf16_len
from bot.replies.model import Block, Bullets, Fields, Line, Note, Paragraph, Reply, Style, Table

MESSAGE_LIMIT_UTF16 = 4096
MESSAGE_BUDGET_UTF16 = MESSAGE_LIMIT_UTF16 - 1  # "strictly under"
BLOCK_SEPARATOR = "\n\n"

_STYLE_TAGS: dict[Style, tuple[str, ...]] = {
    Style.PLAIN: (),
    Style.BOLD: ("b",),
    Style.ITALIC: ("i",),
    Style.CODE: ("code",),
    Style.MUTED: ("i",),
}


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _wrap(text: str, tags: tuple[str, ...]) -> str:
    if not text:
        return ""
    opening = "".join(f"<{tag}>" for tag in tags)
    closing = "".join(f"</{tag}>" for tag in reversed(tags))
    return opening + _escape(text) + closing


def _spans(spans: Line, italic: bool = False) -> str:
    """Spans as HTML; `italic` italicises every span that can carry it (not code)."""
    parts = []
    for span in spans:
        tags = _STYLE_TAGS[span.style]
        if italic and tags in ((), ("b",)):
            tags += ("i",)
        parts.append(_wrap(span.text, tags))
    return "".join(parts)


def _title(reply: Reply) -> str:
    return f"{TONE_EMOJI[reply.tone]} <b>{_escape(reply.title)}</b>"


def _pre(lines: tuple[str, ...]) -> str:
    return "<pre>" + _escape("\n".join(lines)) + "</pre>"


def _fit(rendered: str) -> list[str]:
    if utf16_len(rendered) <= MESSAGE_BUDGET_UTF16:
        return [rendered]
    return split_html(rendered, MESSAGE_BUDGET_UTF16)


def _table(table: Table) -> list[str]:
    laid_out = layout_table(table)
    whole = _pre(laid_out.lines)
    if utf16_len(whole) <= MESSAGE_BUDGET_UTF16:
        return [whole]
    # Escaping can only lengthen a line, so measure rows escaped.
    frame = utf16_len(_pre(laid_out.head)) + 1  # + the newline before the first row
    rows = pack(laid_out.body, "\n", MESSAGE_BUDGET_UTF16 - frame, lambda row: utf16_len(_escape(row)))
    return [piece for group in rows for piece in _fit(_pre(laid_out.head + tuple(group)))]


def _block(block: Block) -> list[str]:
    """A block as HTML pieces, each within one message's budget."""
    match block:
        case Paragraph(spans):
            rendered = _spans(spans)
        case Fields(items):
            rendered = "\n".join(
                "<b>{}</b>{}{}".format(_escape(label), space, _spans(item.value))
                for item in items
                for label, space in (labelled(item.label),)
            )
        case Table():
            return _table(block)
        case Bullets(items):
            rendered = "\n".join(BULLET + _spans(item) for item in items)
        case Note(spans):
            rendered = _spans(spans, italic=True)
        case _:
            raise TypeError(f"unknown block {block!r}")
    return _fit(rendered)


def render_telegram(reply: Reply) -> list[str]:
    pieces = _fit(_title(reply))
    for block in reply.blocks:
        pieces += _block(block)
    groups = pack(pieces, BLOCK_SEPARATOR, MESSAGE_BUDGET_UTF16, utf16_len)
    return [BLOCK_SEPARATOR.join(group) for group in groups]


# Our own HTML only: bare tags without attributes, entities, single characters.
_ATOM = re.compile(r"</?\w+>|&\w+;|.", re.DOTALL)
_BREAK_PRIORITY = {"\n": 2, " ": 1}  # line breaks first, then spaces, then anywhere


class _Cut(NamedTuple):
    priority: int
    end: int  # atoms[start:end] go into this chunk
    resume: int  # the next chunk starts here (skipping the break itself)
    open_tags: tuple[str, ...]  # tags still open at the cut


def _after(open_tags: tuple[str, ...], atom: str) -> tuple[str, ...]:
    if atom.startswith("</") and atom.endswith(">"):
        return open_tags[:-1]
    if atom.startswith("<") and atom.endswith(">"):
        return open_tags + (atom[1:-1],)
    return open_tags


def _opening(tags: tuple[str, ...]) -> str:
    return "".join(f"<{tag}>" for tag in tags)


def _closing(tags: tuple[str, ...]) -> str:
    return "".join(f"</{tag}>" for tag in reversed(tags))


def split_html(rendered: str, budget_utf16: int) -> list[str]:
    """Split our HTML into chunks of at most `budget_utf16`, each with balanced tags.

    Tags open at a cut are closed before it and reopened after it. Cuts prefer
    line breaks, then spaces, then anywhere between characters (the latest of
    the best kind that fits).
    """
    atoms = _ATOM.findall(rendered)
    sizes = [utf16_len(atom) for atom in atoms]  # once per atom, not once per look
    chunks: list[str] = []
    start, carried = 0, ()
    while start < len(atoms):
        open_tags = carried
        size = utf16_len(_opening(carried))
        closing_size = _closing_size(open_tags)
        best: _Cut | None = None
        i = start
        while i < len(atoms):
            atom = atoms[i]
            after = _after(open_tags, atom)
            if after is not open_tags:
                closing_size = _closing_size(after)
            if size + sizes[i] + closing_size > budget_utf16:
                break
            priority = _BREAK_PRIORITY.get(atom) if i > start else None
            if priority is not None:
                if best is None or priority >= best.priority:
                    best = _Cut(priority, i, i + 1, open_tags)
            elif atom[0] != "<" and (best is None or best.priority == 0):
                best = _Cut(0, i + 1, i + 1, after)
            size += sizes[i]
            open_tags = after
            i += 1
        if i == len(atoms):
            best = _Cut(0, i, i, open_tags)
        elif best is None:
            raise ValueError(f"budget of {budget_utf16} UTF-16 units cannot hold any text")
        chunks.append(_opening(carried) + "".join(atoms[start : best.end]) + _closing(best.open_tags))
        start, carried = best.resume, best.open_tags
    return chunks


def _closing_size(tags: tuple[str, ...]) -> int:
    """The UTF-16 length of `_closing(tags)`: tag names are ASCII, "</" + name + ">"."""
    return sum(len(tag) + 3 for tag in tags)
