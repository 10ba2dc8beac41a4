"""Replay with several parse workers, and with this process parsing a share
of each batch, stores exactly what one worker alone stores.

Each decoder decodes its chunk of every batch and passes over the others'
chunks; contract sizes that change mid-recording, a refused metadata refresh,
market polls cut by chunk boundaries, backfilled history pages and the first
error samples must all come out as a one-decoder replay's.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.feeds.recording import frame_line, rest_line
from bot.feeds.venues import okx
from bot.sample import recording_lines
from bot.services.ingest import BYTES_PER_PARSE_WORKER, parse_workers, replay
from bot.storage.store import Store

T0 = 1_742_515_200_000
OKX_SWAPS = f"{okx.INSTRUMENTS_PATH}?instType=SWAP"


def resized(line: str, instrument: str, ct_val: str) -> str:
    """A recorded OKX instruments line with one contract's size changed."""
    record = json.loads(line)
    for entry in record["rest"]["body"]["data"]:
        if entry["instId"] == instrument:
            entry["ctVal"] = ct_val
    return json.dumps(record, separators=(",", ":"))


def key_escaped(line: str) -> str:
    """A recorded REST line with its "rest" key spelled in JSON escapes (it means the same)."""
    return line.replace('"rest"', '"\\u0072\\u0065st"', 1)


def history_page(at_ms: int) -> str:
    """A recorded page of OKX's liquidation history (a backfill's): events priced by the book of its time."""
    order = {"bkLoss": "0", "bkPx": "97000", "ccy": "", "posSide": "long", "side": "sell", "sz": "3", "ts": str(at_ms)}
    body = {"code": "0", "msg": "", "data": [{"details": [order], "instId": "BTC-USDT-SWAP", "instType": "SWAP"}]}
    return rest_line("okx", at_ms, f"{okx.LIQUIDATION_ORDERS_PATH}?instType=SWAP&instFamily=BTC-USDT&state=filled", body)


def mixed_recording() -> list[str]:
    lines = list(recording_lines(T0, hours=2, seed=7, events_per_hour=600))
    metadata = [line for line in lines[:4] if '"rest"' in line and "instruments" in line or "exchangeInfo" in line]
    body = [line for line in lines if line not in metadata]
    third = len(body) // 3
    okx_swaps = next(line for line in metadata if OKX_SWAPS in line)
    return [
        *body[:third],  # OKX and COIN-M frames unpriced until the sizes come
        history_page(T0 + 1_000),
        *metadata,
        history_page(T0 + 2_000),
        *body[third : 2 * third],
        rest_line("okx", T0 + 3_600_000, OKX_SWAPS, {"code": "0"}),  # refused: the last good book stays
        resized(okx_swaps, "BTC-USDT-SWAP", "0.02"),  # from here BTC-USDT-SWAP orders are worth twice as much
        *body[2 * third : 2 * third + 150],
        # From here ETH-USDT-SWAP orders are worth twice as much too.
        key_escaped(resized(resized(okx_swaps, "BTC-USDT-SWAP", "0.02"), "ETH-USDT-SWAP", "0.2")),
        *(line for chunk in zip(body[2 * third :: 97], ["not json"] * 9) for line in chunk),
        *body[2 * third :],
        history_page(T0 + 3_000),
        frame_line("okx", "public", T0 + 7_200_000, {"arg": {"channel": "liquidation-orders"}, "data": "x"}),
    ]


def dump(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


async def replayed(
    tmp_path: Path, recording: Path, workers: int, local_share: float | None
) -> tuple[dict, object, object]:
    path = tmp_path / f"workers{workers}-local{local_share}.sqlite"
    store = await Store.open(path)
    how = dict(batch_lines=60, market_assets=["BTC", "ETH"], workers=workers, local_share=local_share)
    try:
        report = await replay(store, [recording], **how)
        again = await replay(store, [recording], **how)
    finally:
        await store.close()
    return dump(path), report, again


async def test_several_decoders_store_and_count_exactly_what_one_worker_does(tmp_path):
    recording = tmp_path / "mixed.jsonl"
    recording.write_text("".join(line + "\n" for line in mixed_recording()), encoding="utf-8")
    one_db, one, one_again = await replayed(tmp_path, recording, workers=1, local_share=0.0)
    assert one.decode.unpriced_events > 0 and one.decode.bad_lines >= 10 and one.market_samples > 0
    assert len(one.decode.error_samples) == 5
    history = {row[0]: row[-1] for row in one_db["events"] if row[0] in (T0 + 1_000, T0 + 2_000, T0 + 3_000)}
    assert history == {T0 + 2_000: 291_000, T0 + 3_000: 582_000}  # 3 x ctVal (0.01, then 0.02) x 97000; the first unpriced
    # (workers, this process's share of each batch: fixed, or None for balanced as it goes)
    for workers, local_share in ((0, None), (1, 0.5), (3, None)):
        db, report, again = await replayed(tmp_path, recording, workers, local_share)
        assert report.one_line() == one.one_line()
        assert report.decode == one.decode  # counts, unknown instruments, the first error samples
        assert db == one_db  # events, rollups, spans, market samples
        assert again.one_line() == one_again.one_line()
        assert again.stored == 0


def test_workers_only_for_a_recording_that_pays_their_start_and_a_free_core():
    large = 100 * BYTES_PER_PARSE_WORKER
    assert parse_workers(large, cores=2) == 1  # the writer keeps one core
    assert parse_workers(large, cores=4) == 2
    assert parse_workers(large, cores=1) == 0
    assert parse_workers(BYTES_PER_PARSE_WORKER // 2, cores=4) == 0  # parsed by the writer
    assert parse_workers(BYTES_PER_PARSE_WORKER, cores=4) == 1


async def test_a_share_outside_zero_to_one_is_refused_before_anything_is_read(tmp_path):
    recording = tmp_path / "mixed.jsonl"
    recording.write_text("".join(line + "\n" for line in mixed_recording()), encoding="utf-8")
    store = await Store.open(tmp_path / "refused.sqlite")
    try:
        for share in (-0.1, 1.5):
            with pytest.raises(ValueError, match="local_share"):
                await replay(store, [recording], local_share=share)
        assert (await store.stats()).events == 0
    finally:
        await store.close()
