"""What `/status` reports: storage totals, each venue stream's recording state
and, under `liqbot run`, the chat platforms and market polling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamStatus:
    venue: str
    stream: str
    state: str  # "live", "silent" (connected, no liquidations: bot.core.silence), "reconnecting", "disabled", "recorded", or "leader" (recorded by the leader replica; this one follows)
    last_frame_ms: int | None
    events_last_hour: int
    gaps_last_day: tuple[tuple[int, int], ...]  # unrecorded stretches between spans, backfilled ones not counted
    last_error: str | None = None  # why its last connection ended or attempt failed
    # stretches of the last day filled from the venue's REST history (bot.feeds.backfill)
    backfilled_last_day: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A chat platform's connection, or one venue's market polling."""

    name: str
    state: str  # "running" | "retrying" | "stopped"
    last_error: str | None = None
    last_ok_ms: int | None = None  # market polling: the last successful poll
    backfilled: int = 0  # market polling: open-interest history points backfilled


@dataclass(frozen=True, slots=True)
class RuntimeStatus:
    """What a running `liqbot run` adds to the report."""

    platforms: tuple[ServiceStatus, ...]
    market: tuple[ServiceStatus, ...]  # empty: market polling is off
    stream_errors: dict[tuple[str, str], str]  # (venue, stream) -> last error


@dataclass(frozen=True, slots=True)
class StatusReport:
    events_stored: int
    first_at_ms: int | None
    last_at_ms: int | None
    events_by_venue: dict[str, int]
    streams: tuple[StreamStatus, ...]
    runtime: RuntimeStatus | None = None  # None: no live process (console, demo)
