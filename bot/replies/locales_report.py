"""The write-up's sentences (`/report`, the full digest), merged into
`bot.replies.locales.MESSAGES`. Chinese uses full-width punctuation."""

from __future__ import annotations

REPORT_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "report.headline.long_squeeze": "Long squeeze: {total} liquidated in {window}",
        "report.headline.short_squeeze": "Short squeeze: {total} liquidated in {window}",
        "report.headline.two_sided": "Two-sided liquidations: {total} in {window}",
        "report.headline.quiet": "No liquidations recorded in {window}",
        "report.scope_asset": "{asset} · ",
        "report.lead": (
            "In the {window} to {end}, {total} of leveraged {scope} positions were liquidated on {venues} venue(s)."
            " Longs took {long_amount} ({long_share}), shorts {short_amount} ({short_share})."
        ),
        "report.scope_all": "crypto",
        "report.section.assets": "By asset",
        "report.section.insights": "What it means",
        "report.section.events": "How it unfolded",
        "report.section.history": "Against history",
        "report.section.leverage": "Leverage after the events",
        "report.event": "{start} to {end} ({duration}): {total}, {heavier}; peak minute {peak} at {peak_time}",
        "report.event_live": "{start}, still going ({duration} so far): {total}, {heavier}; peak minute {peak} at {peak_time}",
        "report.heavier.long": "{share} longs",
        "report.heavier.short": "{share} shorts",
        "report.event_move": "{asset} {change} ({from_price} to {to_price})",
        "report.event_largest": "largest order {amount} ({side}, {venue})",
        "report.no_events": (
            "No cascade stood out: no run of minutes reached {ratio}x the previous hour's pace and {floor}."
        ),
        "report.rank": "Ranks #{rank} of the last {days} days' {window} windows (average {average}).",
        "report.rank_short": (
            "Ranks #{rank} of the {windows} {window} windows recorded in the last {days} days"
            " (average {average}; the period holds {expected})."
        ),
        "report.largest_day": "Largest recorded day: {amount} on {day}.",
        "report.no_history": "liqbot has no fully recorded window before this one yet: no ranking.",
        "report.oi": "Open interest {before} before the first event, {now} now ({change}).",
        "report.funding": "Funding {before} then, {now} now (annualised).",
        "report.funding_now": "Funding {now} now (annualised).",
        "report.verdict.flushed": "Verdict: leverage flushed.",
        "report.verdict.partly_flushed": "Verdict: leverage partly flushed.",
        "report.verdict.still_crowded": "Verdict: still crowded.",
        "report.no_verdict": "No open interest on both sides of the events: no verdict.",
        "report.no_market": "No market data for {asset}: liqbot can't say whether leverage was flushed.",
    },
    "zh": {
        "report.headline.long_squeeze": "多头挤压：{window}爆仓{total}",
        "report.headline.short_squeeze": "空头挤压：{window}爆仓{total}",
        "report.headline.two_sided": "多空双杀：{window}爆仓{total}",
        "report.headline.quiet": "{window}内没有记录到爆仓",
        "report.scope_asset": "{asset} · ",
        "report.lead": (
            "截至{end}的{window}内，{venues}家交易所共有{total}的{scope}杠杆仓位被强平。"
            "多单爆仓{long_amount}（{long_share}），空单爆仓{short_amount}（{short_share}）。"
        ),
        "report.scope_all": "加密货币",
        "report.section.assets": "分币种",
        "report.section.insights": "解读",
        "report.section.events": "爆仓过程",
        "report.section.history": "历史对比",
        "report.section.leverage": "事件后的杠杆",
        "report.event": "{start}至{end}（{duration}）：{total}，{heavier}；峰值分钟{peak}（{peak_time}）",
        "report.event_live": "{start}起，仍在进行（已{duration}）：{total}，{heavier}；峰值分钟{peak}（{peak_time}）",
        "report.heavier.long": "多单占{share}",
        "report.heavier.short": "空单占{share}",
        "report.event_move": "{asset} {change}（{from_price}至{to_price}）",
        "report.event_largest": "最大单笔{amount}（{side}，{venue}）",
        "report.no_events": "没有明显的连环爆仓：没有任何一段分钟达到前一小时节奏的{ratio}倍且超过{floor}。",
        "report.rank": "在最近{days}天的{window}窗口中排第{rank}（平均{average}）。",
        "report.rank_short": "在最近{days}天已完整记录的{windows}个{window}窗口中排第{rank}（平均{average}；该时段共{expected}个窗口）。",
        "report.largest_day": "记录中爆仓最多的一天：{day}，{amount}。",
        "report.no_history": "liqbot在此之前还没有完整记录的窗口，无法排名。",
        "report.oi": "持仓量：首个事件前{before}，现在{now}（{change}）。",
        "report.funding": "资金费率：当时{before}，现在{now}（年化）。",
        "report.funding_now": "资金费率：现在{now}（年化）。",
        "report.verdict.flushed": "结论：杠杆已出清。",
        "report.verdict.partly_flushed": "结论：杠杆部分出清。",
        "report.verdict.still_crowded": "结论：仓位依然拥挤。",
        "report.no_verdict": "事件前后没有持仓量数据，无法下结论。",
        "report.no_market": "没有{asset}的市场数据，liqbot无法判断杠杆是否出清。",
    },
}
