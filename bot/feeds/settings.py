"""The settings of the feeds layer, defined once: `bot.config` loads
`[feeds.runner]` into `RunnerTuning`, `[feeds.backfill]` into `BackfillConfig`
and `[market]` into `MarketDataConfig`,
checking the bounds declared here (`bot.plumbing.bounds`) when a file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from bot.feeds.venues import MARKET_VENUES
from bot.plumbing.bounds import SECONDS_A_DAY, Between, Matches, NonEmpty, ordered

ASSET = Matches(r"[A-Za-z0-9]{1,20}", "letters and digits")


@dataclass(frozen=True)
class RunnerTuning:
    """Tuning of the reconnecting feed runner and of live ingest (`[feeds.runner]`)."""

    # first reconnect delay after a failure; doubles per failure, with jitter
    backoff_base_s: Annotated[float, Between(0.1, 3600)] = 1.0
    # cap of the reconnect delay after ordinary failures
    backoff_max_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 120.0
    # a connection open this long resets the backoff; shorter ones count as failures
    healthy_after_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 60.0
    # at least this long after a handshake refused with HTTP 5xx
    unavailable_backoff_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 30.0
    # at least this long after HTTP 403/418/429 at handshake (longer if Retry-After says so)
    refused_backoff_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 300.0
    # no frame and no pong for this long: the connection is dead, reconnect
    watchdog_s: Annotated[float, Between(5, 3600)] = 60.0
    # websocket ping (and Bybit's {"op":"ping"}) every this many seconds
    ping_interval_s: Annotated[float, Between(1, 3600)] = 20.0
    # send OKX a text "ping" after this long without a frame (OKX cuts at 30 s)
    okx_idle_ping_s: Annotated[float, Between(1, 29)] = 25.0
    # planned reconnect before Binance's 24 h cut-off (23 h 50 m)
    binance_reconnect_after_s: Annotated[float, Between(60, SECONDS_A_DAY)] = 85800.0
    # re-read Bybit's symbol list this often; new symbols join the live connection
    symbols_refresh_s: Annotated[float, Between(60, 7 * SECONDS_A_DAY)] = 86400.0
    # re-read OKX / Binance COIN-M contract sizes this often
    contracts_refresh_s: Annotated[float, Between(60, 7 * SECONDS_A_DAY)] = 21600.0
    # an unknown instrument triggers a contract refresh at most this often
    unknown_refresh_min_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 60.0
    # timeout of each metadata REST request
    rest_timeout_s: Annotated[float, Between(0.1, 300)] = 10.0
    # store live events in batches of this many...
    batch_events: Annotated[int, Between(1, 100_000)] = 500
    # ...or after this many milliseconds, whichever comes first; spans are extended as often
    batch_ms: Annotated[int, Between(1, 3_600_000)] = 1000
    # a connected stream is judged silent (bot.core.silence) after no liquidation for
    # max(silence_gap_factor x its longest recent gap, silence_floor_s)...
    silence_gap_factor: Annotated[float, Between(2, 100)] = 6.0
    silence_floor_s: Annotated[float, Between(60, SECONDS_A_DAY)] = 600.0
    # ...while at least this many other streams delivered liquidations meanwhile
    silence_others_min: Annotated[int, Between(1, 20)] = 2
    # such a stream is reconnected once, and flagged if still silent this long after
    # (or its longest recent gap, if longer) while others delivered
    silence_recheck_s: Annotated[float, Between(10, SECONDS_A_DAY)] = 120.0

    def __post_init__(self) -> None:
        ordered("feeds.runner", self, "backoff_base_s", "backoff_max_s")

    @classmethod
    def of(cls, settings: RunnerTuning | None) -> RunnerTuning:
        """`settings`, or the defaults when None."""
        return cls() if settings is None else settings


@dataclass(frozen=True)
class BackfillConfig:
    """[feeds.backfill]: filling a stream's gaps from its venue's REST history of
    liquidations (`bot.feeds.backfill`; the venues with one are in the README's venue table)."""

    enabled: bool = True  # backfill on start and after every reconnect
    # after a connect, wait this long (the new span is stored) before reading the gaps
    delay_s: Annotated[float, Between(0, 600)] = 5.0
    # missing stretches shorter than this are left alone
    min_gap_s: Annotated[float, Between(0, 3600)] = 5.0
    # at most this many pages of one series (OKX: one instrument family) per backfill
    max_pages: Annotated[int, Between(1, 1000)] = 30
    # share of the venue's published request limit a backfill may use
    budget_fraction: Annotated[float, Between(0.01, 1)] = 0.5
    request_timeout_s: Annotated[float, Between(0.1, 300)] = 10.0  # per request
    retries: Annotated[int, Between(0, 10)] = 3  # retries of a request after a 429, 5xx, timeout or rate-limit code
    backoff_base_s: Annotated[float, Between(0.1, 3600)] = 2.0  # first retry after ~this, doubling (with jitter)
    backoff_max_s: Annotated[float, Between(0.1, SECONDS_A_DAY)] = 60.0  # cap of one retry delay
    # a backfill that could not finish is tried again after this long
    retry_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 300.0

    def __post_init__(self) -> None:
        ordered("feeds.backfill", self, "backoff_base_s", "backoff_max_s")


@dataclass(frozen=True)
class MarketDataConfig:
    """[market]: funding, open interest and long/short ratios polled over REST."""

    enabled: bool = True  # poll market context for leverage-risk reports
    # which venues to poll: a list, or one string separated by spaces or commas
    venues: Annotated[tuple[Literal[MARKET_VENUES], ...], NonEmpty()] = MARKET_VENUES
    # USDT perpetuals to track: a list, or one string separated by spaces or commas
    assets: Annotated[tuple[Annotated[str, ASSET], ...], NonEmpty()] = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")
    interval_s: Annotated[float, Between(1, SECONDS_A_DAY)] = 60.0  # seconds between two polls of a venue
    # samples older than this are pruned (30-day percentiles need 30)
    retention_days: Annotated[int, Between(1, 3650)] = 35
    request_timeout_s: Annotated[float, Between(0.1, 300)] = 10.0  # per request (connect, read, write, pool)
    retries: Annotated[int, Between(0, 10)] = 3  # retries of a request after a 5xx, timeout or connection error
    backoff_base_s: Annotated[float, Between(0.1, 3600)] = 1.0  # first retry after ~this, doubling (with jitter)
    backoff_max_s: Annotated[float, Between(0.1, SECONDS_A_DAY)] = 30.0  # cap of one retry delay
    # pause of a venue after a 429 without Retry-After
    rate_limit_backoff_s: Annotated[float, Between(0, SECONDS_A_DAY)] = 60.0
    # pause of a venue after a 418/403 without Retry-After
    ban_backoff_s: Annotated[float, Between(0, SECONDS_A_DAY)] = 600.0
    # share of each venue's published request limit liqbot may use
    budget_fraction: Annotated[float, Between(0.01, 1)] = 0.5
    # on start and after a gap, fetch the venues' open-interest history this far back
    # (a 7d change needs a point a little over 7 days old; Binance keeps 30 days, OKX 5)
    backfill_days: Annotated[float, Between(1, 30)] = 8.0
    # a poll gap, or a hole in the stored open interest, longer than this is backfilled
    backfill_gap_s: Annotated[float, Between(600, SECONDS_A_DAY)] = 900.0

    def __post_init__(self) -> None:
        ordered("market", self, "backoff_base_s", "backoff_max_s")

    @property
    def asset_list(self) -> list[str]:
        return [a.upper() for a in self.assets]

    @property
    def venue_list(self) -> list[str]:
        return list(self.venues)
