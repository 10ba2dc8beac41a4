"""The one list of commands. Telegram's menu, Discord's slash commands, /help
and the README's command table are all generated from it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ArgKind(StrEnum):
    ASSET = "asset"  # a recorded asset, or "all"
    WINDOW = "window"  # 30m, 4h, 24h, 7d ... up to 30d
    LOCALE = "locale"  # en | zh
    COMMAND = "command"  # a command name, for /help


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    kind: ArgKind
    help: dict[str, str]  # per locale

    @property
    def placeholder(self) -> str:
        return self.name.upper()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    summary: dict[str, str]  # one line per locale (menus are short)
    args: tuple[ArgSpec, ...] = ()
    aliases: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    admin_only_in_groups: bool = False

    def usage(self) -> str:
        return " ".join([f"/{self.name}", *(f"[{a.placeholder}]" for a in self.args)])


ASSET_ARG = ArgSpec(
    "asset",
    ArgKind.ASSET,
    {"en": "Asset such as BTC, ETH, SOL, or all", "zh": "币种，如 BTC、ETH、SOL，或 all"},
)
WINDOW_ARG = ArgSpec(
    "window",
    ArgKind.WINDOW,
    {"en": "Time window: 1h 4h 12h 24h 7d, or Nm/Nh/Nd up to 30d", "zh": "时间窗口：1h 4h 12h 24h 7d，或 Nm/Nh/Nd（最长 30d）"},
)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "liq",
        {"en": "Liquidations: total, long/short, venues, largest order", "zh": "爆仓汇总：总额、多空、交易所、最大单"},
        args=(ASSET_ARG, WINDOW_ARG),
        aliases=("liquidations", "liqs"),
        examples=("/liq", "/liq BTC 4h", "/liq ETH 7d"),
    ),
    CommandSpec(
        "top",
        {"en": "Most liquidated assets", "zh": "爆仓最多的币种"},
        args=(WINDOW_ARG,),
        aliases=("rank",),
        examples=("/top", "/top 1h"),
    ),
    CommandSpec(
        "big",
        {"en": "Largest single liquidations", "zh": "最大单笔爆仓"},
        args=(ASSET_ARG, WINDOW_ARG),
        aliases=("largest", "whales"),
        examples=("/big", "/big BTC 24h"),
    ),
    CommandSpec(
        "status",
        {"en": "What is recorded: venues, streams, coverage", "zh": "记录状态：交易所、数据流、覆盖范围"},
    ),
    CommandSpec(
        "lang",
        {"en": "Reply language for this chat: en or zh", "zh": "本群回复语言：en 或 zh"},
        args=(ArgSpec("language", ArgKind.LOCALE, {"en": "en or zh", "zh": "en 或 zh"}),),
        aliases=("language",),
        examples=("/lang zh", "/lang en"),
        admin_only_in_groups=True,
    ),
    CommandSpec(
        "help",
        {"en": "Commands and how to use them", "zh": "命令说明"},
        args=(ArgSpec("command", ArgKind.COMMAND, {"en": "A command name", "zh": "命令名"}),),
        examples=("/help", "/help liq"),
    ),
    CommandSpec("start", {"en": "What this bot does", "zh": "机器人简介"}),
)


def find(name: str) -> CommandSpec | None:
    name = name.lower().lstrip("/")
    for spec in COMMANDS:
        if name == spec.name or name in spec.aliases:
            return spec
    return None
