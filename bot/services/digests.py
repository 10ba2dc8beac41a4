"""Daily digests: DESIGN.md's reference write-up, made automatic.

A digest is the 24 h before its scheduled moment: totals and long/short, the
per-asset table, venues, the largest order, the squeeze classification, the
most one-sided asset, and the change against the previous 24 h and the 30-day
average (from fully recorded days only). It is composed once per distinct
(locale, scheduled moment) and sent to every chat that shares it.

`send_due(now_ms)` is what the scheduler's cron jobs (and the catch-up at
start) call: a chat gets its digest when its latest slot is less than
`grace_ms` old and its `last_sent_local_date` is older than that slot's local
date. The date is recorded (check-and-set) in the same transaction as the
digest's sends go into the outbox (bot.services.outbox), so a cron firing
twice (autumn DST), a restart or a new leader never sends twice, and a crash
after the commit still sends.

With a `risk_note(asset, now_ms, locale)` injected (RiskService.note), the
digest carries the one-line leverage note of BTC (and of the day's dominant
asset, when that is another), read at the digest's moment; an asset without
market data (None) or a failing read simply gets no line.

With a `chart_of(end_ms, tz)` injected (ChartService.top_image), a chat that
turned the chart on (`/digest chart on`) gets the digest with the 24 h
`/chart top` picture attached, drawn in its zone: one picture per distinct
(moment, zone), like the text; a failing chart sends the digest without it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from itertools import takewhile

from bot.plumbing.clock import wall_clock_ms
from bot.core.digest import DIGEST_GRACE_MS, DigestSchedule, due_digest, latest_slot
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Window
from bot.core.summary import ASSETS_RANKED, Summary, coverage_of, summarize
from bot.core.report import WriteUp
from bot.replies.digest import asset_note, digest_reply, full_digest_reply, with_notes
from bot.replies.model import Image, Reply
from bot.services.outbox import Outbox
from bot.storage.digests_store import DigestsStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

HISTORY_DAYS = 30
CACHED_DIGESTS = 16

OnScheduleChange = Callable[[DigestSchedule], object]
# note_of(asset, now_ms, locale): one line about the asset, None without its data (sync or async):
# the leverage risk note (brief digest), the nearest liquidation bands (full digest).
AssetNoteOf = Callable[[str, int, str], Awaitable[str | None] | str | None]
NOTED_ASSETS = ("BTC",)  # always noted (when there is data); the dominant asset joins them
# chart_of(end_ms, tz, locale): the 24 h /chart top picture ending at `end_ms`, drawn in `tz`.
ChartOf = Callable[[int, str, str], Awaitable[Image | None]]
# write_up_of(end_ms, tz): the all-assets write-up of the 24 h before `end_ms`, times in `tz`.
WriteUpOf = Callable[[int, str | None], Awaitable[WriteUp]]



def digest_key(chat_key: str, local_date: str) -> str:
    """A digest's idempotency key: one per chat and local date."""
    return f"digest:{chat_key}:{local_date}"


class DigestService:
    """Digest schedules (the /digest command's DigestsPort) and sending."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        grace_ms: int = DIGEST_GRACE_MS,
        history_days: int = HISTORY_DAYS,
        risk_note: AssetNoteOf | None = None,
        chart_of: ChartOf | None = None,
        write_up_of: WriteUpOf | None = None,
        levels_note: AssetNoteOf | None = None,
    ) -> None:
        self._store = store
        self._schedules = DigestsStore(store)
        self._outbox = outbox
        self._now_ms = now_ms
        self.grace_ms = grace_ms
        self._history_days = history_days
        self._risk_note = risk_note
        self._chart_of = chart_of
        self._write_up_of = write_up_of
        self._levels_note = levels_note
        self._charts: OrderedDict[tuple[int, str], Image | None] = OrderedDict()
        self._listeners: list[OnScheduleChange] = []
        self._cache: OrderedDict[tuple, Reply] = OrderedDict()
        self._summaries: OrderedDict[int, Summary] = OrderedDict()
        self.compositions = 0  # how many digests were composed (not sent)
        self.charts_drawn = 0  # how many digest pictures were asked for (not sent)

    def on_change(self, listener: OnScheduleChange) -> None:
        """Call `listener(schedule)` after a chat's schedule changed (the scheduler re-registers)."""
        self._listeners.append(listener)

    def _changed(self, schedule: DigestSchedule) -> None:
        for listener in self._listeners:
            try:
                listener(schedule)
            except Exception:
                log.exception("digests: a schedule listener failed")

    # -- DigestsPort ------------------------------------------------------------

    async def set_digest(self, chat_key: str, local_time: str, tz: str, locale: str, now_ms: int) -> None:
        # Slots before now are not due (no "missed" digest for a time already passed today).
        schedule = DigestSchedule(chat_key, local_time, tz, True, None, locale, since_ms=now_ms)
        await self._schedules.set_digest(schedule, now_ms)
        # The digest's zone becomes the chat's clock for every reply (/tz changes it later).
        await self._store.chats.set_timezone(chat_key, None if tz == "UTC" else tz, now_ms)
        self._changed(await self._schedules.digest(chat_key))

    async def disable_digest(self, chat_key: str, now_ms: int) -> bool:
        existing = await self._schedules.digest(chat_key)
        if existing is None or not existing.enabled:
            return False
        await self._schedules.disable_digest(chat_key, now_ms)
        self._changed(await self._schedules.digest(chat_key))
        return True

    async def set_digest_style(self, chat_key: str, style: str, now_ms: int) -> bool:
        """The chat's digest as the full write-up or brief; False without a digest."""
        existing = await self._schedules.digest(chat_key)
        if existing is None or not existing.enabled:
            return False
        return await self._schedules.set_digest_style(chat_key, style, now_ms)

    async def set_digest_chart(self, chat_key: str, chart: bool, now_ms: int) -> bool:
        """Attach the day's chart to the chat's digest (or not); False without a digest."""
        existing = await self._schedules.digest(chat_key)
        if existing is None or not existing.enabled:
            return False
        return await self._schedules.set_digest_chart(chat_key, chart, now_ms)

    async def digest(self, chat_key: str) -> DigestSchedule | None:
        return await self._schedules.digest(chat_key)

    async def schedules(self) -> list[DigestSchedule]:
        return await self._schedules.digests()

    async def preview(self, locale: str, now_ms: int, chat_key: str | None = None) -> Reply:
        """The digest as it would be sent now: the chat's style (full without one) and zone."""
        end = now_ms - now_ms % MINUTE_MS
        local_date = time.strftime("%Y-%m-%d", time.gmtime(end / 1000))
        schedule = await self._schedules.digest(chat_key) if chat_key else None
        style = schedule.style if schedule is not None else "full"
        zone = await self._store.chats.timezone(chat_key) if chat_key else None
        return await self.compose(locale, end, local_date, style, zone)

    # -- composing and sending ---------------------------------------------------------

    async def summary(self, end_ms: int) -> Summary:
        """All assets over the 24 h before `end_ms`, ranked against the newest run
        of fully recorded previous days (up to 30; they end at the whole hour
        before the window starts, so the hour rollups answer them in one query)."""
        window = Window(end_ms - DAY_MS, end_ms)
        history_end = window.start_ms - window.start_ms % HOUR_MS
        spans = await self._store.spans(Window(history_end - self._history_days * DAY_MS, end_ms))
        recorded = sum(
            1
            for _ in takewhile(
                lambda k: coverage_of(Window(history_end - k * DAY_MS, history_end - (k - 1) * DAY_MS), spans).complete,
                range(1, self._history_days + 1),
            )
        )
        preceding = await self._store.window_totals(None, history_end, DAY_MS, recorded) if recorded else []
        breakdown = await self._store.breakdown(None, window, ASSETS_RANKED)
        largest = await self._store.largest(None, window, 1)
        return summarize(None, window, breakdown, largest[0] if largest else None, spans, preceding)

    async def compose(
        self, locale: str, end_ms: int, local_date: str, style: str = "brief", tz: str | None = None
    ) -> Reply:
        """The digest for the 24 h before `end_ms`, brief or the full write-up, its
        times in `tz` (cached per (locale, end, date, style, zone): composed once
        per distinct content, not per chat)."""
        key = (locale, end_ms, local_date, style, tz)
        reply = self._cache.get(key)
        if reply is None and style == "full" and self._write_up_of is not None:
            write_up = await self._write_up_of(end_ms, tz)
            notes = await self._asset_notes(self._levels_note, "liquidation levels", write_up.summary, locale, end_ms)
            reply = with_notes(full_digest_reply(write_up, local_date, locale), notes)
            self._remember(key, reply)
        if reply is None:
            summaries = self._summaries
            summary = summaries.get(end_ms)
            if summary is None:
                summary = summaries[end_ms] = await self.summary(end_ms)
                while len(summaries) > CACHED_DIGESTS:
                    summaries.popitem(last=False)
            reply = digest_reply(summary, local_date, locale, tz)
            notes = await self._asset_notes(self._risk_note, "risk note", summary, locale, end_ms)
            reply = with_notes(reply, notes)
            self._remember(key, reply)
        return reply

    def _remember(self, key: tuple, reply: Reply) -> None:
        self._cache[key] = reply
        self.compositions += 1
        while len(self._cache) > CACHED_DIGESTS:
            self._cache.popitem(last=False)

    async def _asset_notes(
        self, note_of: AssetNoteOf | None, what: str, summary: Summary, locale: str, at_ms: int
    ) -> list[str]:
        """One line each for BTC and the dominant asset (those with data): the leverage
        risk note of the brief digest, the nearest liquidation bands of the full one."""
        if note_of is None:
            return []
        assets = list(NOTED_ASSETS)
        dominant = summary.dominant_asset
        if dominant is not None and dominant.name not in assets:
            assets.append(dominant.name)
        notes = []
        for asset in assets:
            try:
                note = note_of(asset, at_ms, locale)
                if inspect.isawaitable(note):
                    note = await note
            except Exception:
                log.exception("digests: %s of %s failed", what, asset)
                continue
            if note:
                notes.append(asset_note(asset, note, locale))
        return notes

    async def chart(self, end_ms: int, tz: str, locale: str = "en") -> Image | None:
        """The day's picture for digests ending at `end_ms` in `tz` (cached; None without one)."""
        if self._chart_of is None:
            return None
        key = (end_ms, tz, locale)
        if key in self._charts:
            return self._charts[key]
        try:
            image = await self._chart_of(end_ms, tz, locale)
        except Exception:
            log.exception("digests: the chart for %s failed; sending without it", tz)
            return None  # not cached: the next group may try again
        self.charts_drawn += 1
        self._charts[key] = image
        while len(self._charts) > CACHED_DIGESTS:
            self._charts.popitem(last=False)
        return image

    async def send_due(self, now_ms: int | None = None, only: Iterable[tuple[str, str]] | None = None) -> int:
        """Send every digest due at `now_ms`; `only`: just these (local_time, tz) groups.
        Returns how many chats were sent a digest."""
        now_ms = self._now_ms() if now_ms is None else now_ms
        wanted = set(only) if only is not None else None
        # chat -> (locale, end ms, local date, style, zone, chart zone)
        due: dict[str, tuple[str, int, str, str, str | None, str | None]] = {}
        dated = [
            (schedule, local_date)
            for schedule in await self._schedules.digests()
            if (wanted is None or (schedule.local_time, schedule.tz) in wanted)
            and (local_date := due_digest(schedule, now_ms, self.grace_ms)) is not None
        ]
        # The chats' settings (can liqbot still post there; their zones for the times
        # shown), read at once for a 10k-chat fan-out.
        settings = await self._store.chats.settings(schedule.chat_key for schedule, _ in dated) if dated else {}
        for schedule, local_date in dated:
            if not settings[schedule.chat_key].active:
                continue
            _, slot_ms = latest_slot(schedule, now_ms)
            chart_tz = schedule.tz if schedule.chart and self._chart_of is not None else None
            due[schedule.chat_key] = (
                schedule.locale, slot_ms - slot_ms % MINUTE_MS, local_date, schedule.style,
                settings[schedule.chat_key].tz, chart_tz,
            )
        groups: dict[tuple[str, int, str, str, str | None, str | None], list[str]] = {}
        for chat_key in sorted(due):
            groups.setdefault(due[chat_key], []).append(chat_key)
        replies = {group: await self._digest_of(*group) for group in groups}
        # The dates (check-and-set) and the sends commit together: whatever happens
        # next, a chat never gets the same local date twice, nor misses it.
        keys = []
        async with self._store.db.transaction() as tx:
            fresh = await self._schedules.mark_digests_sent(tx, {chat: key[2] for chat, key in due.items()}, now_ms)
            for group, chat_keys in groups.items():
                sends = [(digest_key(chat_key, group[2]), chat_key) for chat_key in chat_keys if chat_key in fresh]
                await self._outbox.add(tx, replies[group], sends, "digest", urgent=False)
                keys += [key for key, _ in sends]
        sent = await self._outbox.delivered(keys)
        if keys:
            log.info("digests: %d sent, %d composition(s)", sent, len(groups))
        return sent

    async def _digest_of(
        self, locale: str, end_ms: int, local_date: str, style: str, zone: str | None, chart_tz: str | None
    ) -> Reply:
        """The digest a group of chats gets: composed, with the chart when they asked for it."""
        reply = await self.compose(locale, end_ms, local_date, style, zone)
        if chart_tz is not None:
            image = await self.chart(end_ms, chart_tz, locale)
            if image is not None:
                reply = replace(reply, image=image)
        return reply
