"""OKX v5: the `liquidation-orders` stream (`public`, instType SWAP/FUTURES),
contract sizes, and market context.

Stream `wss://ws.okx.com:8443/ws/v5/public`, subscribed with
`{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}, ...FUTURES]}`;
a text `ping` after 25 s without a frame (OKX cuts at 30 s). OKX says the
feed "doesn't represent the total number of liquidations".

`data` lists instruments, each with a `details` list of liquidations. The
long was liquidated when `posSide == "long"` (hedge mode), or when
`posSide == "net"` and the liquidation order `side == "sell"` (net mode).
`sz` is in contracts; a contract is worth ctVal (x ctMult) from
`GET /api/v5/public/instruments`, held in a ContractBook:

- linear (BTC-USDT-SWAP, ctVal in BTC): notional `sz * ctVal * bkPx`.
- inverse (BTC-USD-SWAP, ctVal in USD): notional `sz * ctVal`.

Instruments missing from the book do not spoil the frame: the priced events
come back inside Unpriced, which names the missing ids.

Market context (`MARKET`, 20 requests / 2 s per IP, per endpoint; we count
them together): `mark-price` + `open-interest` (all SWAP), N x `funding-rate`.

Backfill (`HISTORY`): `GET /api/v5/public/liquidation-orders`
(https://www.okx.com/docs-v5/en/#public-data-rest-api-get-liquidation-orders),
"liquidation orders in the last day", public, 40 requests / 2 s per IP.
We ask `instType` SWAP or FUTURES, `instFamily` (the docs want `uly` or
`instFamily` for those types: one request per family, the families of the
contract book), `state=filled` (the default is `unfilled`: orders still
queued) and `limit=100` (the maximum, also the default); `after=<ts>` pages
to orders older than `ts` (`before` would page to newer ones). The body is
`{"code":"0","msg":"","data":[{instId, instFamily, instType, uly,
details:[{side, posSide, bkPx, sz, ts, bkLoss, ccy}]}]}`: the stream's `data`
under a REST envelope, so `parse_public` prices both and a backfilled order
is the same row as the live one. A non-"0" `code` is a VenueError (50011 /
50061: rate limited).
Sources: the page above could not be read in the stored copies available
here; its text is quoted, word for word, by the OKX.Net client's docstrings
("liquidation orders in the last 1 days"; `after` "records earlier than the
requested ts", `before` "newer"; `limit` "The maximum is 100; the default is
100") and a Python client's ("Rate Limit: 40 requests per 2 seconds", "Rate
limit rule: IP"); the body is the stream's documented example under the REST
envelope (from a converted copy of the docs' Public-data section). OKX's own
python-okx has no call for it. Where they differ from issue 10: the endpoint
needs a family per request (no market-wide query for SWAP/FUTURES), and
`after` is a timestamp cursor, not an id. Whether the REST list is complete where the
stream is sampled ("not the total number") the docs do not say; one public
client measured exactly 24 h through `after` paging, another reported `after`
ignored: a page that does not reach further back ends the paging.

Open-interest history (`MARKET.open_interest_history`, the backfill). The issue names
`GET /api/v5/rubik/stat/contracts/open-interest-volume`; OKX's docs
(https://www.okx.com/docs-v5/en/#trading-statistics-rest-api-get-contracts-open-interest-and-volume)
make it per currency (`ccy` required), the open interest of all its expiry
futures and perpetuals together in USD, 5m bars "within two days at most", 5
requests / 2 s per IP: not the BTC-USDT-SWAP series the poller stores. The
per-instrument one is
https://www.okx.com/docs-v5/en/#trading-statistics-rest-api-get-contract-open-interest-history:
`GET /api/v5/rubik/stat/contracts/open-interest-history?instId&period&begin&end&limit`,
period 5m..1D (we ask 5m), `begin` / `end` return records newer / earlier than
the given ts, limit max 100, "can retrieve the latest 1,440 data entries" (5
days at 5m), 10 requests / 2 s per IP + instrument ID, rows
`[ts, oi (contracts), oiCcy (coin), oiUsd]`. We use that one, each request
spanning at most 100 periods; a point's price is oiUsd / oiCcy. The docs state
no row order (their example lists the newest first); we rely on none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import msgspec

from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side
from bot.feeds import marketdata as md
from bot.feeds.contract import (
    HistoryPage,
    HistorySpec,
    Heartbeat,
    MarketApi,
    MarketSpec,
    MetadataRequest,
    OpenInterestHistory,
    OpenInterestResponse,
    PathLimit,
    StreamSpec,
    TypedFrames,
    TypedOrder,
    dispatch,
)
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    UnknownInstrument,
    Unpriced,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import ContractBook, ContractSpec, positive_or_none
from bot.core.symbols import asset_of

VENUE = "okx"
TITLE = "OKX"
CHANNEL = "liquidation-orders"
SUBSCRIBED_INST_TYPES = ("SWAP", "FUTURES")
INST_TYPES = frozenset(SUBSCRIBED_INST_TYPES)
INSTRUMENTS_PATH = "/api/v5/public/instruments"
FUNDING_RATE_PATH = "/api/v5/public/funding-rate"
OPEN_INTEREST_PATH = "/api/v5/public/open-interest"
MARK_PRICE_PATH = "/api/v5/public/mark-price"
LIQUIDATION_ORDERS_PATH = "/api/v5/public/liquidation-orders"
HISTORY_PAGE_ROWS = 100  # `limit`: the documented maximum
OPEN_INTEREST_HISTORY_PATH = "/api/v5/rubik/stat/contracts/open-interest-history"
HIST_PERIOD, HIST_PERIOD_MS = "5m", 5 * MINUTE_MS
HIST_PAGE_POINTS = 100
HIST_ENTRIES = 1440  # "the latest 1,440 data entries"
RATE_LIMIT_CODES = frozenset({"50011", "50061"})  # codes that mean "slow down"
_LIQUIDATED_BY_POS_SIDE = {"long": Side.LONG, "short": Side.SHORT}
# Net mode has no position side: a sell order closes a long.
_LIQUIDATED_BY_NET_ORDER_SIDE = {"sell": Side.LONG, "buy": Side.SHORT}


def _instruments_of(frame: object) -> list | None:
    """The frame's per-instrument entries, or None for a control frame."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    entries = frame.get("data")
    if entries is None:
        # {"event": "subscribe" | "error" | "notice" | ...}
        if "event" in frame:
            return None
        raise FrameError("no 'data' in frame")
    arg = frame.get("arg")
    if type(arg) is dict and arg.get("channel") != CHANNEL:
        raise FrameError(f"unexpected channel {shown(arg.get('channel'))}")
    if type(entries) is not list:
        raise FrameError("'data' is not a list")
    return entries


def _liquidated(detail: dict) -> Side:
    pos_side = detail["posSide"]
    if pos_side == "net":
        side = detail["side"]
        liquidated = _LIQUIDATED_BY_NET_ORDER_SIDE.get(side) if type(side) is str else None
        if liquidated is None:
            raise FrameError(f"details[].side is not buy/sell: {shown(side)}")
        return liquidated
    liquidated = _LIQUIDATED_BY_POS_SIDE.get(pos_side) if type(pos_side) is str else None
    if liquidated is None:
        raise FrameError(f"details[].posSide is not long/short/net: {shown(pos_side)}")
    return liquidated


def parse_public(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    entries = _instruments_of(frame)
    if entries is None:
        return []
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for entry in entries:
        if type(entry) is not dict:
            raise FrameError(f"data item is not an object: {shown(entry)}")
        try:
            instrument = instrument_id(entry["instId"], "data[].instId")
            details = entry["details"]
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        inst_type = entry.get("instType")
        # MARGIN/OPTION liquidations are in other units; we never subscribe to them.
        if inst_type is not None and (type(inst_type) is not str or inst_type not in INST_TYPES):
            raise FrameError(f"unsupported instType {shown(inst_type)}")
        if type(details) is not list:
            raise FrameError("data[].details is not a list")
        spec = contracts.get(instrument) if contracts is not None else None
        asset = asset_of(instrument)
        for detail in details:
            if type(detail) is not dict:
                raise FrameError(f"details item is not an object: {shown(detail)}")
            try:
                liquidated = _liquidated(detail)
                price = positive_number(detail["bkPx"], "details[].bkPx", MAX_PRICE)
                quantity = positive_number(detail["sz"], "details[].sz", MAX_QUANTITY)
                at_ms = timestamp_ms(detail["ts"], "details[].ts")
            except KeyError as missing:
                raise FrameError(f"missing field details[].{missing.args[0]}") from None
            if spec is None:
                unpriced.add(instrument)
                continue
            events.append(
                LiquidationEvent(
                    VENUE, "public", instrument, asset, liquidated,
                    price, quantity, spec.notional_usd(quantity, price, "details[].sz"), at_ms,
                )
            )
    return unpriced.checked(events)


# -- replay's fast path (`bot.feeds.typed_frames`): a liquidation-orders frame, typed


class _TypedDetail(msgspec.Struct):
    posSide: str
    bkPx: str | float
    sz: str | float
    ts: int | str
    side: str = ""  # read in net mode only


class _TypedEntry(msgspec.Struct):
    instId: str
    details: list[_TypedDetail]
    instType: str | None = None


class _TypedArg(msgspec.Struct):
    channel: str


class _TypedFrame(msgspec.Struct):
    data: list[_TypedEntry]
    arg: _TypedArg | None = None


def _typed_orders(frame: _TypedFrame) -> list[TypedOrder]:
    if frame.arg is not None and frame.arg.channel != CHANNEL:
        raise ValueError(frame.arg.channel)
    orders = []
    for entry in frame.data:
        if not entry.instId or (entry.instType is not None and entry.instType not in INST_TYPES):
            raise ValueError(entry.instId, entry.instType)  # checked for every entry, with orders or none
        for detail in entry.details:
            liquidated = (
                _LIQUIDATED_BY_NET_ORDER_SIDE[detail.side] if detail.posSide == "net"
                else _LIQUIDATED_BY_POS_SIDE[detail.posSide]
            )
            orders.append((entry.instId, liquidated, detail.bkPx, detail.sz, detail.ts))
    return orders


def error_message(frame: object) -> str | None:
    """A short description of an OKX error frame (`event: error`), else None."""
    if type(frame) is not dict or frame.get("event") != "error":
        return None
    return f"error {shown(frame.get('code'))}: {shown(frame.get('msg'))}"


# -- liquidation history (backfill) ----------------------------------------


def history_page(body: object, contracts: ContractBook | None = None) -> HistoryPage:
    """One `liquidation-orders` REST body: the stream's parser over its `data`."""
    if type(body) is not dict:
        raise FrameError("liquidation-orders: body is not an object")
    code = body.get("code")
    if code != "0":
        raise md.VenueError(VENUE, code, body.get("msg"), rate_limited=code in RATE_LIMIT_CODES)
    if "arg" in body:
        raise FrameError("liquidation-orders: a stream frame, not a REST body")
    try:
        events, unpriced = parse_public(body, contracts), 0
    except UnknownInstrument as unknown:
        events, unpriced = unknown.events, unknown.unpriced_count
    # parse_public checked every detail: their times are valid.
    stamps = [timestamp_ms(d["ts"], "ts") for entry in body["data"] for d in entry["details"]]
    return HistoryPage(events, unpriced, min(stamps, default=None), len(stamps) >= HISTORY_PAGE_ROWS)


def history_queries(contracts: ContractBook | None) -> list[dict[str, str]]:
    """The first page of every instrument family the book prices, SWAP and FUTURES."""
    families = sorted({(_inst_type_of(inst_id), _family_of(inst_id)) for inst_id in contracts or ()})
    return [
        {"instType": inst_type, "instFamily": family, "state": "filled", "limit": str(HISTORY_PAGE_ROWS)}
        for inst_type, family in families
    ]


def older_history(query: dict[str, str], page: HistoryPage) -> dict[str, str] | None:
    """The next (older) page: orders before the page's oldest, while pages come full."""
    if not page.full or page.oldest_ms is None:
        return None
    return {**query, "after": str(page.oldest_ms)}


def _family_of(inst_id: str) -> str:
    """BTC-USDT-SWAP, BTC-USD-250328 -> BTC-USDT, BTC-USD."""
    return "-".join(inst_id.split("-")[:2])


def _inst_type_of(inst_id: str) -> str:
    return "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"


HISTORY = HistorySpec(
    stream="public",
    path=LIQUIDATION_ORDERS_PATH,
    queries=history_queries,
    older=older_history,
    page=history_page,
    horizon_ms=DAY_MS,
    limit=40,  # requests per 2 s per IP
    window_ms=2_000,
)


# -- contract sizes --------------------------------------------------------


def instruments_book(body: object) -> ContractBook:
    """From `GET /api/v5/public/instruments?instType=SWAP|FUTURES`.

    Size is ctVal x ctMult. Entries that cannot price a liquidation in USD
    (no ctVal, an inverse contract not valued in USD, unknown ctType) are
    left out; a frame that names them raises UnknownInstrument.
    """
    entries = _instrument_entries(body)
    specs: dict[str, ContractSpec] = {}
    for entry in entries:
        if type(entry) is not dict:
            raise FrameError(f"okx instruments: entry is not an object: {shown(entry)}")
        instrument = entry.get("instId")
        contract_value = positive_or_none(entry.get("ctVal"))
        multiplier = positive_or_none(entry.get("ctMult", "1"))
        if type(instrument) is not str or contract_value is None or multiplier is None:
            continue
        contract_type = entry.get("ctType")
        if contract_type == "linear":
            specs[instrument] = ContractSpec(contract_value * multiplier, inverse=False)
        elif contract_type == "inverse" and entry.get("ctValCcy") == "USD":
            specs[instrument] = ContractSpec(contract_value * multiplier, inverse=True)
    return ContractBook(specs)


def _instrument_entries(body: object) -> list[object]:
    if type(body) is not dict:
        raise FrameError("okx instruments: body is not an object")
    if body.get("code") != "0":
        raise FrameError(
            f"okx instruments: error code {shown(body.get('code'))}: {shown(body.get('msg'))}"
        )
    entries = body.get("data")
    if type(entries) is not list:
        raise FrameError("okx instruments: no 'data' list")
    return entries


METADATA = {INSTRUMENTS_PATH: instruments_book}


# -- market context --------------------------------------------------------


def _market_data(body: object, what: str) -> list:
    body = md.json_object(body, what)
    code = body.get("code")
    if code != "0":
        raise md.VenueError(VENUE, code, body.get("msg"), rate_limited=code in RATE_LIMIT_CODES)
    return md.json_list(body.get("data"), f"{what} data")


def parse_mark_price(body: object, assets: Iterable[str]) -> dict[str, float]:
    """`GET /api/v5/public/mark-price?instType=SWAP`: asset -> mark price."""
    wanted = {market_inst_id(asset): asset for asset in assets}
    prices: dict[str, float] = {}
    for asset, inst_id, entry in md.tracked(_market_data(body, "mark-price"), wanted, "instId", "mark-price entry"):
        prices[asset] = md.positive(entry.get("markPx"), f"{inst_id} markPx")
    return prices


def parse_open_interest(
    body: object, assets: Iterable[str], mark_prices: Mapping[str, float] | None = None
) -> dict[str, float]:
    """`GET /api/v5/public/open-interest?instType=SWAP`: asset -> open interest in USD.

    `oiUsd` where the venue gives it, else `oiCcy` (= oi x ctVal, in base coin
    for linear swaps) x the mark price; assets with neither are left out.
    """
    wanted = {market_inst_id(asset): asset for asset in assets}
    prices = mark_prices or {}
    values: dict[str, float] = {}
    entries = _market_data(body, "open-interest")
    for asset, inst_id, entry in md.tracked(entries, wanted, "instId", "open-interest entry"):
        usd = md.optional_number(entry.get("oiUsd"), f"{inst_id} oiUsd")
        if usd is None:
            in_base = md.optional_number(entry.get("oiCcy"), f"{inst_id} oiCcy")
            if in_base is None or asset not in prices:
                continue
            usd = in_base * prices[asset]
        if usd < 0:
            raise md.MarketDataError(f"{inst_id} open interest must not be negative: {shown(usd)}")
        values[asset] = usd
    return values


def parse_funding_rate(body: object, inst_id: str) -> tuple[float, float | None]:
    """`GET /api/v5/public/funding-rate?instId=`: (rate, interval in hours or None).

    `fundingTime` is the coming settlement and `nextFundingTime` the one after:
    their distance is the interval.
    """
    entries = _market_data(body, "funding-rate")
    for entry in entries:
        entry = md.json_object(entry, "funding-rate entry")
        if entry.get("instId") != inst_id:
            continue
        rate = md.funding(entry.get("fundingRate"), f"{inst_id} fundingRate")
        coming = md.optional_number(entry.get("fundingTime"), f"{inst_id} fundingTime")
        after = md.optional_number(entry.get("nextFundingTime"), f"{inst_id} nextFundingTime")
        interval = None
        if coming is not None and after is not None and after > coming:
            interval = (after - coming) / HOUR_MS
        return rate, interval
    raise md.MarketDataError(f"funding-rate has no entry for {inst_id}")


def parse_open_interest_history(body: object, inst_id: str) -> list[tuple[int, float, float | None]]:
    """`GET /api/v5/rubik/stat/contracts/open-interest-history?instId=`: (at_ms,
    open interest in USD, price = oiUsd / oiCcy or None) per row."""
    points = []
    for row in _market_data(body, "open-interest-history"):
        row = md.json_list(row, "open-interest-history row")
        if len(row) < 4:
            raise md.MarketDataError(f"{inst_id} open-interest-history row is short: {shown(row)}")
        at_ms = md.instant_ms(row[0], f"{inst_id} ts")
        in_coin = md.not_negative(row[2], f"{inst_id} oiCcy")
        usd = md.not_negative(row[3], f"{inst_id} oiUsd")
        points.append((at_ms, usd, usd / in_coin if in_coin > 0 else None))
    return points


async def fetch_open_interest_history(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    inst_id = market_inst_id(asset)

    def params_of(first: int, last: int) -> dict[str, str]:
        # begin / end are exclusive: "newer than" / "earlier than" the ts given.
        return {"instId": inst_id, "period": HIST_PERIOD, "begin": str(first - 1), "end": str(last + 1),
                "limit": str(HIST_PAGE_POINTS)}

    await md.fetch_windows(api, OPEN_INTEREST_HISTORY_PATH, params_of,
                           lambda body: parse_open_interest_history(body, inst_id),
                           after_ms, before_ms, HIST_PAGE_POINTS * HIST_PERIOD_MS, into)


def open_interest_history_samples(responses: Sequence[OpenInterestResponse]) -> list[MarketSample]:
    samples = []
    for path, params, body in responses:
        inst_id = params.get("instId", "")
        if path != OPEN_INTEREST_HISTORY_PATH or not inst_id.endswith("-USDT-SWAP"):
            continue
        for at_ms, usd, price in parse_open_interest_history(body, inst_id):
            samples.append(MarketSample(VENUE, inst_id.removesuffix("-USDT-SWAP"), at_ms, mark_price=price,
                                        open_interest_usd=usd))
    return samples


def market_inst_id(asset: str) -> str:
    return f"{asset}-USDT-SWAP"


async def collect_market(
    api: MarketApi, assets: Sequence[str], at_ms: int, samples: dict[str, MarketSample]
) -> None:
    prices = await api.optional(
        MARK_PRICE_PATH, {"instType": "SWAP"}, lambda body: parse_mark_price(body, assets)
    ) or {}
    for asset, price in prices.items():
        samples[asset] = MarketSample(venue=VENUE, asset=asset, at_ms=at_ms, mark_price=price)
    open_interest = await api.optional(
        OPEN_INTEREST_PATH, {"instType": "SWAP"}, lambda body: parse_open_interest(body, assets, prices)
    ) or {}
    for asset, usd in open_interest.items():
        base = samples.get(asset) or MarketSample(venue=VENUE, asset=asset, at_ms=at_ms)
        samples[asset] = replace(base, open_interest_usd=usd)
    for asset in assets:
        inst_id = market_inst_id(asset)
        funding = await api.optional(
            FUNDING_RATE_PATH, {"instId": inst_id}, lambda body, i=inst_id: parse_funding_rate(body, i)
        )
        if funding is not None:
            rate, interval = funding
            base = samples.get(asset) or MarketSample(venue=VENUE, asset=asset, at_ms=at_ms)
            samples[asset] = replace(base, funding_rate=rate, funding_interval_hours=interval or 8.0)


def subscribe_message() -> str:
    return json.dumps(
        {"op": "subscribe", "args": [{"channel": CHANNEL, "instType": t} for t in SUBSCRIBED_INST_TYPES]},
        separators=(",", ":"),
    )


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return [subscribe_message()]


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat("ping", tuning.okx_idle_ping_s, idle_only=True)


REST_URLS = {"rest_url": "https://www.okx.com"}
STREAMS = (
    StreamSpec(
        "public", "ws_url", "wss://ws.okx.com:8443/ws/v5/public", parse_public,
        subscribe=_subscribe, heartbeat=_heartbeat,
        metadata=tuple(MetadataRequest(INSTRUMENTS_PATH, (("instType", t),)) for t in SUBSCRIBED_INST_TYPES),
        caveat='"not the total number of liquidations"',
        typed=TypedFrames(_TypedFrame, _typed_orders, None),
    ),
)
MARKET = MarketSpec(
    rest_url_key="rest_url",
    limit=20,  # requests per 2 s per IP (per endpoint; we count them together)
    window_ms=2_000,
    collector=lambda: collect_market,
    open_interest_history=OpenInterestHistory(
        paths=(OPEN_INTEREST_HISTORY_PATH,),
        period_ms=HIST_PERIOD_MS,
        reach_ms=HIST_ENTRIES * HIST_PERIOD_MS,
        fetch=fetch_open_interest_history,
        samples=open_interest_history_samples,
        limits={OPEN_INTEREST_HISTORY_PATH: PathLimit(10, 2_000, per_param="instId")},
    ),
)
parse = dispatch(VENUE, STREAMS)
