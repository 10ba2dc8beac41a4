"""Gate futures: what the levels model takes from it (margin tiers); the venue's
own module is `bot.feeds.venues.gate`.

`GET /api/v4/futures/usdt/risk_limit_tiers?contract=BTC_USDT` ("List risk
limit tiers", added in API v4.63.0, https://www.gate.com/docs/developers/apiv4/en/;
the official SDK's model, https://github.com/gateio/gateapi-python/blob/master/docs/FuturesLimitRiskTiers.md):
public, a list of `{tier, risk_limit, initial_rate, maintenance_rate,
leverage_max, contract, deduction}`, rates as decimal strings; "when the
'contract' parameter is not passed, the default is to query the risk limits
for the top 100 markets", so we pass it. The lowest tier is the smallest `tier`
(for BTC_USDT, 0.3 % up to $500k at 200x, as a client recorded it). Errors
come as `{"label": ..., "message": ...}`. Public endpoints allow 200 requests /
10 s per endpoint. Gate has no klines here: its market context is not polled.
"""

from __future__ import annotations

from bot.feeds import marketdata as md
from bot.feeds.contract import MarginTiers
from bot.feeds.venues.gate import VENUE

RISK_LIMIT_TIERS_PATH = "/api/v4/futures/usdt/risk_limit_tiers"


def contract_of(asset: str) -> str:
    return f"{asset}_USDT"


def lowest_tier_rate(body: object, asset: str) -> float | None:
    """`GET /api/v4/futures/usdt/risk_limit_tiers`: the maintenance rate of the lowest tier."""
    if type(body) is dict and "label" in body:
        label = body.get("label")
        raise md.VenueError(VENUE, label, body.get("message"), rate_limited=label == "TOO_MANY_REQUESTS")
    contract = contract_of(asset)
    tiers = [md.json_object(row, "risk_limit_tiers row") for row in md.json_list(body, "risk_limit_tiers")]
    tiers = [tier for tier in tiers if tier.get("contract", contract) == contract]
    if not tiers:
        return None
    lowest = min(tiers, key=lambda tier: md.finite_number(tier.get("tier"), f"{contract} tier"))
    return md.not_negative(lowest.get("maintenance_rate"), f"{contract} maintenance_rate")


KLINES = None
MARGIN = MarginTiers(
    path=RISK_LIMIT_TIERS_PATH,
    request=lambda asset: {"contract": contract_of(asset)},
    lowest_rate=lowest_tier_rate,
    limit=200,
    window_ms=10_000,
)
