"""Slash commands generated from the shared registry (bot.commands.registry), for the
Discord adapter: same names, same arguments in the same order, the registry's
per-locale descriptions (English, plus Chinese for Discord's zh-CN locale).
Windows, languages and command names are choices; asset arguments are
autocompleted by the adapter. An invocation becomes command text again
(`command_text`) for the shared Dispatcher.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from bot.commands.parse import LOCALES
from bot.commands.registry import COMMANDS, ArgKind, CommandSpec

WINDOW_CHOICES = ("15m", "30m", "1h", "4h", "12h", "24h", "3d", "7d", "14d", "30d")
# Discord locales that read the registry's `zh` texts.
ZH_LOCALES = frozenset({discord.Locale.chinese})


def command_text(spec: CommandSpec, options: dict[str, str | None]) -> str:
    """The command line a slash invocation stands for: `/liq xbt 4h`."""
    parts = [f"/{spec.name}"]
    for arg in spec.args:
        value = options.get(arg.name)
        if value is not None and value.strip():
            parts.append(value.strip())
    return " ".join(parts)


def _localized(texts: dict[str, str]) -> app_commands.locale_str:
    return app_commands.locale_str(texts["en"], **{f"text_{loc}": value for loc, value in texts.items()})


class RegistryTranslator(app_commands.Translator):
    """Serves the registry's per-locale texts to Discord's locales (zh -> zh-CN)."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale, context) -> str | None:
        if locale in ZH_LOCALES:
            return string.extras.get("text_zh")
        return None


def _choices_for(kind: ArgKind) -> list[app_commands.Choice[str]] | None:
    if kind is ArgKind.WINDOW:
        return [app_commands.Choice(name=w, value=w) for w in WINDOW_CHOICES]
    if kind is ArgKind.LOCALE:
        return [app_commands.Choice(name=loc, value=loc) for loc in LOCALES]
    if kind is ArgKind.COMMAND:
        return [app_commands.Choice(name=spec.name, value=spec.name) for spec in COMMANDS]
    return None


SlashRunner = Callable[[discord.Interaction, CommandSpec, dict[str, str | None]], Awaitable[None]]
AssetCompleter = Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[str]]]]


def _slash_command(spec: CommandSpec, run: SlashRunner, complete_asset: AssetCompleter) -> app_commands.Command:
    async def callback(interaction: discord.Interaction, **options: str | None) -> None:
        await run(interaction, spec, options)

    # discord.py reads a command's options from its callback's signature: give
    # this generic callback the registry's arguments, all optional strings.
    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [
        inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=str, default=None) for arg in spec.args
    ]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = f"slash_{spec.name}"
    if spec.args:
        app_commands.describe(**{arg.name: _localized(arg.help) for arg in spec.args})(callback)
    choices = {arg.name: c for arg in spec.args if (c := _choices_for(arg.kind)) is not None}
    if choices:
        app_commands.choices(**choices)(callback)
    assets = {arg.name: complete_asset for arg in spec.args if arg.kind is ArgKind.ASSET}
    if assets:
        app_commands.autocomplete(**assets)(callback)
    return app_commands.Command(
        name=spec.name, description=_localized(spec.summary), callback=callback, extras={"spec": spec}
    )


def slash_commands(run: SlashRunner, complete_asset: AssetCompleter) -> list[app_commands.Command]:
    """One slash command per registry command (aliases are not slash commands)."""
    return [_slash_command(spec, run, complete_asset) for spec in COMMANDS]
