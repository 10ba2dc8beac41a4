"""Prometheus metrics of one liqbot process, served on `/metrics` (bot.services.ops_http).

Most figures are read when Prometheus scrapes, from counters the parts keep anyway
(each stream's RunnerStatus, the live ingest's stats, the dispatcher's count of dropped
commands, the leadership), so the feeds' hot path pays nothing for them. Commands and
sends are counted as they happen. One registry per process (no module-level singleton:
tests run several apps in one interpreter).

| name | type | labels | what |
| --- | --- | --- | --- |
| `liqbot_stream_frames_total` | counter | venue, stream | messages received |
| `liqbot_stream_events_total` | counter | venue, stream | liquidations parsed (`rate()` is events/s) |
| `liqbot_stream_gaps_total` | counter | venue, stream | connections that ended: each leaves a gap in the recorded spans |
| `liqbot_stream_connected` | gauge | venue, stream | 1 while connected |
| `liqbot_stream_last_frame_age_seconds` | gauge | venue, stream | since the last message (streams that had one) |
| `liqbot_events_stored_total` | counter | | liquidations written to the database (duplicates not counted) |
| `liqbot_ingest_write_errors_total` | counter | | failed writes (retried at the next flush) |
| `liqbot_ingest_queue_events` | gauge | | liquidations received and not yet written |
| `liqbot_command_seconds` | histogram | command | commands answered and the time their handler took |
| `liqbot_command_failures_total` | counter | command | commands whose handler raised (answered with the internal-error reply) |
| `liqbot_commands_dropped_total` | counter | | commands refused by the rate limits without a reply |
| `liqbot_sends_total` | counter | kind (alert, digest, feed), outcome (sent, failed) | alerts, digests and live feed updates, each once (several alerts of one chat may share a message) |
| `liqbot_outbox_backlog` | gauge | | alert and digest sends in the outbox not done yet (queued or in flight), all replicas' |
| `liqbot_leader` | gauge | | 1 while this process is the leader |
| `liqbot_leadership_changes_total` | counter | | times the role changed |

The outbox backlog is one COUNT over the outbox's pending index, read when the
page is asked for (`refresh`), so every replica shows it, leader or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from bot.replies.model import Reply
from bot.services.leadership import Leadership
from bot.services.live import LiveFeeds

# Command latency buckets: the target is p95 <= 100 ms under load; charts take longer.
COMMAND_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SEND_KINDS = ("alert", "digest", "feed")
STREAM_LABELS = ("venue", "stream")


class Submitter(Protocol):
    """What CountedSends needs of bot.services.notifier.Notifier."""

    def submit(self, chat_keys: Iterable[str], reply: Reply, *, urgent: bool = False) -> list[asyncio.Future]: ...


class Metrics:
    def __init__(self, clock_ms: Callable[[], int], leadership: Leadership) -> None:
        self.registry = CollectorRegistry()
        self._clock_ms = clock_ms
        self._leadership = leadership
        self._feeds: LiveFeeds | None = None
        self._dropped_commands: Callable[[], int] = lambda: 0
        self._outbox_backlog: Callable[[], Awaitable[int]] | None = None
        self._backlog_rows = 0
        self._command_seconds = Histogram(
            "liqbot_command_seconds", "Commands answered, and the time their handler took",
            ["command"], buckets=COMMAND_BUCKETS_S, registry=self.registry,
        )
        self._command_failures = Counter(
            "liqbot_command_failures", "Commands whose handler raised", ["command"], registry=self.registry
        )
        self._sends = Counter(
            "liqbot_sends", "Alert, digest and live feed messages, by outcome", ["kind", "outcome"], registry=self.registry
        )
        for kind in SEND_KINDS:  # shown at 0 before the first send, so rate() and alerts see them
            for outcome in ("sent", "failed"):
                self._sends.labels(kind, outcome)
        self.registry.register(self)  # its `collect` adds the figures read at scrape time

    # -- what the composition root connects --

    def watch_feeds(self, feeds: LiveFeeds) -> None:
        self._feeds = feeds

    def watch_dropped_commands(self, dropped: Callable[[], int]) -> None:
        self._dropped_commands = dropped

    def watch_outbox(self, backlog: Callable[[], Awaitable[int]]) -> None:
        """`backlog()`: the outbox's sends not done yet (bot.services.outbox.Outbox.backlog)."""
        self._outbox_backlog = backlog

    async def refresh(self) -> None:
        """Read what needs the database, before `exposition`."""
        if self._outbox_backlog is not None:
            self._backlog_rows = await self._outbox_backlog()

    def send_done(self, kind: str, ok: bool) -> None:
        """A send finished (the outbox's `on_done`)."""
        self._sends.labels(kind, "sent" if ok else "failed").inc()

    def command_answered(self, command: str, seconds: float, failed: bool) -> None:
        """The Dispatcher's `on_answered`."""
        self._command_seconds.labels(command).observe(seconds)
        if failed:
            self._command_failures.labels(command).inc()

    def counted(self, notifier: Submitter, kind: str) -> CountedSends:
        """The notifier as the live feed uses it, each send counted by outcome."""
        return CountedSends(notifier, self._sends.labels(kind, "sent").inc, self._sends.labels(kind, "failed").inc)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) in the format the scraper asked for (Prometheus text or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    # -- read at scrape time --

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector interface."""
        stream = {
            "frames": CounterMetricFamily("liqbot_stream_frames", "Messages received", labels=STREAM_LABELS),
            "events": CounterMetricFamily("liqbot_stream_events", "Liquidations parsed", labels=STREAM_LABELS),
            "gaps": CounterMetricFamily(
                "liqbot_stream_gaps", "Connections that ended (each a gap in the recorded spans)", labels=STREAM_LABELS
            ),
            "connected": GaugeMetricFamily("liqbot_stream_connected", "1 while connected", labels=STREAM_LABELS),
            "age": GaugeMetricFamily(
                "liqbot_stream_last_frame_age_seconds", "Seconds since the last message", labels=STREAM_LABELS
            ),
        }
        feeds = self._feeds
        if feeds is not None:
            now_ms = self._clock_ms()
            for status in feeds.statuses():
                labels = [status.venue, status.stream]
                stream["frames"].add_metric(labels, status.frames)
                stream["events"].add_metric(labels, status.events)
                stream["gaps"].add_metric(labels, status.drops)
                stream["connected"].add_metric(labels, 1 if status.state == "live" else 0)
                if status.last_frame_ms is not None:
                    stream["age"].add_metric(labels, max(0, now_ms - status.last_frame_ms) / 1000)
        yield from stream.values()
        stats = feeds.ingest.stats if feeds is not None else None
        yield CounterMetricFamily(
            "liqbot_events_stored", "Liquidations written to the database", value=stats.events_stored if stats else 0
        )
        yield CounterMetricFamily(
            "liqbot_ingest_write_errors", "Failed ingest writes (retried)", value=stats.write_errors if stats else 0
        )
        yield GaugeMetricFamily(
            "liqbot_ingest_queue_events", "Liquidations received, not yet written",
            value=feeds.ingest.pending_events if feeds is not None else 0,
        )
        yield CounterMetricFamily(
            "liqbot_commands_dropped", "Commands refused by the rate limits without a reply",
            value=self._dropped_commands(),
        )
        yield GaugeMetricFamily(
            "liqbot_outbox_backlog", "Alert and digest sends in the outbox not done yet", value=self._backlog_rows
        )
        yield GaugeMetricFamily("liqbot_leader", "1 while this process is the leader", value=int(self._leadership.is_leader))
        yield CounterMetricFamily(
            "liqbot_leadership_changes", "Times this process's role changed", value=self._leadership.changes
        )


class CountedSends:
    """Stands in for the notifier: sends go through it unchanged and are counted when done."""

    def __init__(self, notifier: Submitter, sent: Callable[[], None], failed: Callable[[], None]) -> None:
        self._notifier = notifier
        self._sent = sent
        self._failed = failed

    def submit(self, chat_keys: Iterable[str], reply: Reply, *, urgent: bool = False) -> list[asyncio.Future]:
        futures = self._notifier.submit(chat_keys, reply, urgent=urgent)
        for future in futures:
            future.add_done_callback(self._count)
        return futures

    def _count(self, future: asyncio.Future) -> None:
        (self._sent if not future.cancelled() and future.result() else self._failed)()
