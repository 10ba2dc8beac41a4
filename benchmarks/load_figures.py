"""The load benchmark's figures (benchmarks/load.py): percentiles, what the fake platforms
received, alert latency against the floor of the platforms' published rates, where an
alert's time goes, send rates and digest delivery."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bot.replies.locales import text


def percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"n={len(samples)} (too few)"
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms (n={len(samples):,})"


@dataclass
class Sent:
    """A message the bot sent (no reply to a command), as a fake platform received it."""

    platform: str
    at_s: float  # monotonic
    text: str


def sent_of(dump: dict) -> dict[str, list[Sent]]:
    return {
        "telegram": [Sent("telegram", at, text) for _, reply_to, at, status, text in dump["telegram_sent"]
                     if status == 200 and reply_to is None],
        "discord": [Sent("discord", at, text) for _, at, status, text in dump["discord_sent"] if status == 200],
    }


def command_latencies(dump: dict) -> dict[str, list[tuple[float, str, float]]]:
    """platform -> (asked at, command, ms to the first answer); unanswered ones are left out."""
    answered = {}
    for chat_id, reply_to, at, status, _ in dump["telegram_sent"]:
        if status == 200 and reply_to is not None:
            answered.setdefault((chat_id, reply_to), at)
    telegram = [(asked, command, (answered[(chat, message)] - asked) * 1000)
                for chat, message, asked, command in dump["asked_telegram"] if (chat, message) in answered]
    discord = [(asked, command, (dump["discord_answered"][path] - asked) * 1000)
               for path, asked, command in dump["asked_discord"] if path in dump["discord_answered"]]
    return {"telegram": telegram, "discord": discord}


def floor_ms(triggers: list[int], rate_per_s: float) -> list[float]:
    """Each alert's latency for a sender of one message per alert at exactly `rate_per_s`,
    none before its trigger (ms)."""
    ideal, free_ms = [], 0.0
    for trigger_ms in sorted(triggers):
        free_ms = max(free_ms, trigger_ms) + 1000 / rate_per_s
        ideal.append(free_ms - trigger_ms)
    return ideal


def alert_figures(sent: list[Sent], markers_sent: dict[str, int], arrived: dict[str, int], offset_s: float,
                  rate_per_s: float, paced_per_s: float, digests_due_ms: int) -> list[str]:
    """Every alert, the first of each crossing (from the venue's send, and from the frame's
    arrival in the bot; apart, the crossings before and after the digests fell due), and what
    a sender at exactly the platform's published rate would achieve with the same alerts, one
    message each, none before its frame reached the bot."""
    titles = {asset: text("en", "title.alert_total", asset=asset) for asset in markers_sent}
    every, first, triggers, every_in_bot, first_in_bot = [], [], [], [], []
    in_bot_by_digests: dict[bool, list[float]] = {False: [], True: []}  # digests due yet? -> every alert
    for asset, sent_ms in markers_sent.items():
        times = sorted(m.at_s for m in sent if titles[asset] in m.text)
        latencies = [(at_s + offset_s) * 1000 - sent_ms for at_s in times]
        every += latencies
        first += latencies[:1]
        triggers += [arrived.get(asset, sent_ms)] * len(times)
        if asset in arrived:
            in_bot = [latency - (arrived[asset] - sent_ms) for latency in latencies]
            every_in_bot += in_bot
            first_in_bot += in_bot[:1]
            in_bot_by_digests[arrived[asset] >= digests_due_ms] += in_bot
    return [f"every alert: {percentiles(every)}", f"first of each crossing: {percentiles(first)}",
            f"from the frame's arrival in the bot: every alert {percentiles(every_in_bot)};"
            f" the first of each crossing {percentiles(first_in_bot)}",
            f"  every alert of a crossing before the digests fell due: {percentiles(in_bot_by_digests[False])};"
            f" after: {percentiles(in_bot_by_digests[True])}",
            f"floor from the frame's arrival (a sender at exactly {rate_per_s:g}/s, what the platform leaves for"
            f" alerts): {percentiles(floor_ms(triggers, rate_per_s))}",
            f"the same at liqbot's pacing of {paced_per_s:g}/s: {percentiles(floor_ms(triggers, paced_per_s))}"]


def alert_stages(written: list[tuple[str, int, int, str]], markers_sent: dict[str, int], platform: str) -> list[str]:
    """Where an alert's time goes, from the outbox rows (chat, written ms, done ms, body):
    frame -> written (the socket, matching and evaluation), written -> recorded sent (the
    outbox's claim, the Notifier's queue and pacing, the platform's answer)."""
    titles = {asset: text("en", "title.alert_total", asset=asset) for asset in markers_sent}
    to_written, first_written, to_done = [], [], []
    for asset, sent_ms in markers_sent.items():
        rows = sorted((written_ms, done_ms) for chat, written_ms, done_ms, body in written
                      if chat.startswith(platform) and titles[asset] in body)
        to_written += [written_ms - sent_ms for written_ms, _ in rows]
        first_written += [written_ms - sent_ms for written_ms, _ in rows[:1]]
        to_done += [done_ms - written_ms for written_ms, done_ms in rows if done_ms is not None]
    return [f"frame -> written to the outbox: {percentiles(to_written)}; the first of each crossing:"
            f" {percentiles(first_written)}", f"written -> recorded sent: {percentiles(to_done)}"]


def send_rates(sent: list[Sent], start_s: float, end_s: float) -> str:
    """Messages a platform received while the firehose ran: on average, and in its busiest 5 s."""
    times = sorted(m.at_s for m in sent if start_s <= m.at_s < end_s)
    busiest, first = 0, 0
    for last, at_s in enumerate(times):
        while at_s - times[first] >= 5.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return f"{len(times) / max(0.001, end_s - start_s):.1f} messages/s, the busiest 5 s {busiest / 5:.1f}/s"


def digest_figures(sent: list[Sent], due_s: float, expected: int) -> str:
    prefix = text("en", "title.digest_report", date="")[:-1]
    times = sorted(m.at_s for m in sent if prefix in m.text or text("en", "title.digest") in m.text)
    if not times:
        return f"digests: none of {expected:,} delivered"
    return (f"digests: {len(times):,} of {expected:,} delivered; due -> first {times[0] - due_s:.1f} s,"
            f" -> last {times[-1] - due_s:.1f} s ({len(times) / max(0.001, times[-1] - times[0]):.0f}/s)")
