"""What `/status` reports: storage totals and each venue stream's recording state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamStatus:
    venue: str
    stream: str
    state: str  # "live", "reconnecting", "disabled", or "recorded" (replayed data only)
    last_frame_ms: int | None
    events_last_hour: int
    gaps_last_day: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class StatusReport:
    events_stored: int
    first_at_ms: int | None
    last_at_ms: int | None
    events_by_venue: dict[str, int]
    streams: tuple[StreamStatus, ...]
