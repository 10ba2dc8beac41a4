"""/help and /start, generated from the registry."""

from __future__ import annotations

from bot.commands.registry import COMMANDS, find
from bot.replies.locales import listing, text
from bot.replies.model import Field, Fields, Note, Paragraph, Reply, bold, code, line


def help_reply(command: str | None, locale: str) -> Reply:
    if command is not None:
        spec = find(command)
        blocks = [
            Paragraph(line(spec.summary[locale])),
            Paragraph(line(text(locale, "help.usage", usage=""), code(spec.usage()))),
        ]
        if spec.args:
            blocks.append(Fields(tuple(Field(a.placeholder, line(a.help[locale]), inline=False) for a in spec.args)))
        if spec.examples:
            blocks.append(Paragraph(line(text(locale, "help.examples", examples=" · ".join(spec.examples)))))
        if spec.aliases:
            aliases = listing(locale, (f"/{a}" for a in spec.aliases))
            blocks.append(Note(line(text(locale, "help.aliases", aliases=aliases))))
        if spec.admin_only_in_groups:
            blocks.append(Note(line(text(locale, "help.admin"))))
        return Reply(title=text(locale, "title.help_command", name=spec.name), blocks=tuple(blocks))
    # Usage and description as label and value: a column each in text, an embed field on Discord.
    items = tuple(Field(spec.usage(), line(spec.summary[locale]), inline=False) for spec in COMMANDS)
    return Reply(
        title=text(locale, "title.help"),
        blocks=(
            Paragraph(line(text(locale, "help.intro"))),
            Fields(items),
            Note(line(text(locale, "help.more"))),
        ),
    )


def start_reply(locale: str) -> Reply:
    return Reply(
        title=text(locale, "title.start"),
        blocks=(
            Paragraph(line(text(locale, "start.body"))),
            Paragraph(line(bold(text(locale, "start.try")))),
        ),
    )
