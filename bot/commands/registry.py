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
    TEXT = "text"  # the rest of the line, passed raw (a feature's own sub-grammar); last argument only


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    kind: ArgKind
    help: dict[str, str]  # per locale
    # Words accepted besides the kind's own values (an ASSET arg that also takes "top").
    extra_values: tuple[str, ...] = ()

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
# Commands about one asset (/risk, /levels, /heatmap): "all" means BTC.
ONE_ASSET_ARG = ArgSpec(
    "asset",
    ArgKind.ASSET,
    {"en": "Asset such as BTC, ETH, SOL (default BTC)", "zh": "币种，如 BTC、ETH、SOL（默认 BTC）"},
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
        "risk",
        {"en": "Leverage risk: funding, open interest, long/short, liquidation skew", "zh": "杠杆风险：资金费率、持仓量、多空比、爆仓偏向"},
        args=(ONE_ASSET_ARG,),
        aliases=("leverage",),
        examples=("/risk", "/risk ETH"),
    ),
    CommandSpec(
        "levels",
        {"en": "Estimated liquidation levels: where leveraged longs and shorts would be wiped out", "zh": "预估清算价位：杠杆多空会在哪里被强平"},
        args=(ONE_ASSET_ARG,),
        aliases=("liqmap",),
        examples=("/levels", "/levels ETH"),
    ),
    CommandSpec(
        "heatmap",
        {"en": "Heatmap of the estimated liquidation levels over time, with price and recorded liquidations", "zh": "预估清算价位热力图：随时间变化，叠加价格与实际爆仓"},
        args=(ONE_ASSET_ARG, WINDOW_ARG),
        examples=("/heatmap", "/heatmap ETH 7d"),
    ),
    CommandSpec(
        "chart",
        {"en": "Chart of long vs short liquidations, or top assets", "zh": "多空爆仓图，或爆仓排行图"},
        args=(
            ArgSpec(
                "subject",
                ArgKind.ASSET,
                {"en": "Asset such as BTC, all, or top (per-asset bars)", "zh": "币种如 BTC、all，或 top（各币种柱状图）"},
                extra_values=("top",),
            ),
            WINDOW_ARG,
        ),
        aliases=("graph",),
        examples=("/chart", "/chart BTC 4h", "/chart top 24h"),
    ),
    CommandSpec(
        "report",
        {"en": "The write-up: squeeze, events, history rank, leverage after", "zh": "爆仓分析：挤压类型、事件、历史排名、事件后杠杆"},
        args=(ASSET_ARG, WINDOW_ARG),
        aliases=("writeup",),
        examples=("/report", "/report BTC 24h", "/report all 7d"),
    ),
    CommandSpec(
        "status",
        {"en": "What is recorded: venues, streams, coverage", "zh": "记录状态：交易所、数据流、覆盖范围"},
    ),
    CommandSpec(
        "tz",
        {"en": "This chat's time zone for every time shown", "zh": "本聊天显示时间所用的时区"},
        args=(
            ArgSpec(
                "zone",
                ArgKind.TEXT,
                {"en": "An IANA zone like Asia/Shanghai or Europe/Berlin, or UTC", "zh": "IANA 时区，如 Asia/Shanghai、Europe/Berlin，或 UTC"},
            ),
        ),
        aliases=("timezone",),
        examples=("/tz Asia/Shanghai", "/tz", "/tz UTC"),
        admin_only_in_groups=True,
    ),
    CommandSpec(
        "lang",
        {"en": "Reply language for this chat: en or zh", "zh": "本聊天回复语言：en 或 zh"},
        args=(ArgSpec("language", ArgKind.LOCALE, {"en": "en or zh", "zh": "en 或 zh"}),),
        aliases=("language",),
        examples=("/lang zh", "/lang en"),
        admin_only_in_groups=True,
    ),
    CommandSpec(
        "alert",
        {"en": "Threshold alerts: big orders, window totals, one-sided flushes, leverage risk, cascades, liquidation bands", "zh": "阈值提醒：大额单、窗口总额、单边爆仓、杠杆风险、连环爆仓、清算密集区"},
        args=(
            ArgSpec(
                "rule",
                ArgKind.TEXT,
                {
                    "en": "big BTC 1M | total BTC 50M 1h | skew ETH 80% 4h min 10M | risk BTC high | cascade [ASSET|all] [MIN_USD] | near ASSET PCT [MIN_USD] | list | remove ID | pause/resume [ID]",
                    "zh": "big BTC 1M | total BTC 50M 1h | skew ETH 80% 4h min 10M | risk BTC high | cascade [ASSET|all] [MIN_USD] | near ASSET PCT [MIN_USD] | list | remove ID | pause/resume [ID]",
                },
            ),
        ),
        aliases=("alerts",),
        examples=(
            "/alert big BTC 1M",
            "/alert total BTC 50M 1h",
            "/alert skew ETH 80% 4h min 10M",
            "/alert risk BTC high",
            "/alert cascade all 5M",
            "/alert near BTC 1%",
            "/alert list",
        ),
    ),
    CommandSpec(
        "digest",
        {"en": "Daily liquidation digest for this chat", "zh": "本聊天每日爆仓日报"},
        args=(
            ArgSpec(
                "schedule",
                ArgKind.TEXT,
                {
                    "en": "on HH:MM [TZ] | off | status | preview | chart on|off",
                    "zh": "on HH:MM [时区] | off | status | preview | chart on|off",
                },
            ),
        ),
        examples=("/digest on 08:00 Europe/Berlin", "/digest status", "/digest preview", "/digest chart on", "/digest off"),
    ),
    CommandSpec(
        "feed",
        {"en": "Live feed: every liquidation order above a threshold, as it happens", "zh": "实时推送：每笔达到阈值的爆仓单，即时发送"},
        args=(
            ArgSpec(
                "setting",
                ArgKind.TEXT,
                {"en": "on MIN_USD [ASSET...] | off | status", "zh": "on 最小金额 [币种...] | off | status"},
            ),
        ),
        examples=("/feed on 100K", "/feed on 1M BTC ETH", "/feed status", "/feed off"),
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
