"""Plain text for a terminal or a log: no markup, no ANSI codes.

Styles carry no visual weight here; alignment is by display width, so CJK
labels and cells line up in a monospace terminal. Actions become a hint line
with the command to type; an image becomes a line naming its file (the console
adapter decides where to save it).
"""

from __future__ import annotations

from bot.replies.layout import BULLET, TONE_EMOJI, display_width, labelled, layout_table, pad
from bot.replies.model import Block, Bullets, Fields, Line, Note, Paragraph, Reply, Table

NOTE_MARK = "* "


def _text(spans: Line) -> str:
    return "".join(span.text for span in spans)


def _fields(block: Fields) -> str:
    labels = [labelled(item.label) for item in block.items]
    label_width = max((display_width(label) for label, _ in labels), default=0)
    return "\n".join(
        f"{pad(label, label_width)}{space}{_text(item.value)}" for (label, space), item in zip(labels, block.items)
    )


def _block(block: Block) -> str:
    match block:
        case Paragraph(spans):
            return _text(spans)
        case Fields():
            return _fields(block)
        case Table():
            return "\n".join(layout_table(block).lines)
        case Bullets(items):
            return "\n".join(BULLET + _text(item) for item in items)
        case Note(spans):
            return NOTE_MARK + _text(spans)
    raise TypeError(f"unknown block {block!r}")


def render_plain(reply: Reply) -> str:
    parts = [f"{TONE_EMOJI[reply.tone]} {reply.title}"]
    parts += (_block(block) for block in reply.blocks)
    if reply.image is not None:
        parts.append(f"[image: {reply.image.filename}]")
    if reply.actions:
        parts.append(" ".join("[{}{}{}]".format(*labelled(action.label), action.command) for action in reply.actions))
    return "\n\n".join(parts) + "\n"
