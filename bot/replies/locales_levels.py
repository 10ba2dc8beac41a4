"""/levels wording, merged into `bot.replies.locales.MESSAGES`. Chinese uses full-width punctuation."""

from __future__ import annotations

LEVELS_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "levels.title": "{asset} liquidation levels (estimate)",
        "levels.price": "Price {price} at {time} · estimated from {span} of open-interest changes",
        "levels.none": (
            "No estimate for {asset} yet: it needs mark prices and open interest from the market poller"
            " ([market] enabled, {asset} among [market] assets)."
        ),
        "levels.shorts_above": "Shorts would be liquidated above",
        "levels.longs_below": "Longs would be liquidated below",
        "levels.band": "{low} – {high}: {amount} ({distance})",
        "levels.side_empty": "no dense band within the grid",
        "levels.note": "nearest dense liquidation bands (estimate): {bands} · /levels {asset}",
        "levels.note_longs": "longs {amount} at {low} – {high} ({distance})",
        "levels.note_shorts": "shorts {amount} at {low} – {high} ({distance})",
        "levels.grade": (
            "Last {days} days: of {estimated} estimated in bands the price crossed, liquidations recorded"
            " within {tolerance} of them matched {matched} ({hit} of {crossed} bands hit)"
        ),
        "levels.grade_none": "Last {days} days: the price crossed no estimated band, so there is nothing to grade yet",
        "heatmap.title": "{asset} liquidation heatmap, {window} (estimate)",
        "heatmap.image_title": "{asset} estimated liquidation levels · {window} to {end}",
        "heatmap.scale": "estimated USD",
        "heatmap.longs": "longs liquidated",
        "heatmap.shorts": "shorts liquidated",
        "heatmap.legend": (
            "Brighter bands: more leveraged positions estimated to be liquidated at that price."
            " Line: mark price. Dots: liquidations liqbot recorded (size: USD)."
        ),
        "levels.model": (
            "An estimate, not positions reported by venues: open-interest rises split long/short by taker flow"
            " or the bar's direction, spread over {low}x–{high}x leverage; a band empties when the price trades through it."
        ),
    },
    "zh": {
        "levels.title": "{asset} 清算价位（估算）",
        "levels.price": "价格 {price}（{time}）· 依据 {span} 的持仓量变化估算",
        "levels.none": (
            "{asset} 暂无估算：需要行情轮询提供的标记价格和持仓量"
            "（开启 [market] enabled，并把 {asset} 加入 [market] assets）。"
        ),
        "levels.shorts_above": "上方空单清算区",
        "levels.longs_below": "下方多单清算区",
        "levels.band": "{low} – {high}：{amount}（{distance}）",
        "levels.side_empty": "价格网格内没有密集区",
        "levels.note": "最近的清算密集区（估算）：{bands} · /levels {asset}",
        "levels.note_longs": "多单 {amount}，{low} – {high}（{distance}）",
        "levels.note_shorts": "空单 {amount}，{low} – {high}（{distance}）",
        "levels.grade": "近 {days} 天：价格穿过的估算区共 {estimated}，其 {tolerance} 范围内实际记录的爆仓与之吻合 {matched}（{crossed} 个区中命中 {hit} 个）",
        "levels.grade_none": "近 {days} 天：价格尚未穿过任何估算区，暂无可评估的数据",
        "heatmap.title": "{asset} 清算热力图，{window}（估算）",
        "heatmap.image_title": "{asset} 预估清算价位 · {window}，截至 {end}",
        "heatmap.scale": "估算金额（美元）",
        "heatmap.longs": "多单爆仓",
        "heatmap.shorts": "空单爆仓",
        "heatmap.legend": "越亮的价位：估算会被强平的杠杆仓位越多。线：标记价格。圆点：liqbot 记录到的爆仓（大小表示金额）。",
        "levels.model": (
            "此为估算，并非交易所公布的持仓：持仓量增加按主动买卖量或K线方向分为多空，"
            "按 {low}–{high} 倍杠杆分布；价格穿过即视为清空。"
        ),
    },
}
