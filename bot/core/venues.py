"""Each venue's display name and sampling caveat, as replies show them.

Core cannot see the feeds, so the venue registry (`bot.feeds.venues`, the one
source of these facts) registers them here when it is imported; the
composition root always imports it. Replies read them through `title_of` and
`sampled`, so a new venue module shows under its own name with no reply change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VenueInfo:
    venue: str  # the recording's venue id, lower case
    title: str  # display name, e.g. "OKX"
    caveat: str  # how its feeds are sampled; "" when they carry every liquidation


_KNOWN: dict[str, VenueInfo] = {}


def register(infos: Iterable[VenueInfo]) -> None:
    for info in infos:
        _KNOWN[info.venue] = info


def title_of(venue: str) -> str:
    """The display name; the id itself for a venue no module describes (old recordings)."""
    info = _KNOWN.get(venue)
    return venue if info is None else info.title


def sampled(venues: Iterable[str]) -> list[VenueInfo]:
    """The venues among `venues` whose feeds are sampled, in the order given, once each."""
    found: dict[str, VenueInfo] = {}
    for venue in venues:
        info = _KNOWN.get(venue)
        if info is not None and info.caveat:
            found.setdefault(venue, info)
    return list(found.values())
