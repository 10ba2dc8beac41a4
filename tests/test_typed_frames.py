"""Replay's typed fast path (`bot.feeds.typed_frames`) gives exactly what the
parsers give, or declines: the rows stored, the counts and error samples of the
replay report, and the spans recorded are those of the parsers' path, for
well-formed frames and for any mutation of them."""

from __future__ import annotations

import copy
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.models import event_row
from bot.feeds.recording import RecordingDecoder, frame_line
from bot.feeds.typed_frames import typed_line
from bot.feeds.venues import TYPED
from bot.sample import recording_lines
from tests.fakes.all_venues import liquidation_frame, metadata_lines

AT_MS = 1_742_515_200_000


def _decoder() -> RecordingDecoder:
    """A decoder that has read every venue's contract sizes."""
    decoder = RecordingDecoder()
    for line in metadata_lines(AT_MS):
        decoder.feed(line)
    return decoder


def _rows_both_ways(lines: list[bytes]) -> tuple[RecordingDecoder, list, RecordingDecoder, list]:
    typed, parsed = _decoder(), _decoder()
    typed_rows = typed.feed_rows(lines)
    parsed_rows = [event_row(event) for line in lines for event in parsed.feed(line)]
    return typed, typed_rows, parsed, parsed_rows


def _assert_same(lines: list[bytes]) -> tuple[RecordingDecoder, list]:
    """Both paths agree on `lines`: the typed path's decoder and rows."""
    typed, typed_rows, parsed, parsed_rows = _rows_both_ways(lines)
    assert typed_rows == parsed_rows
    assert typed.stats == parsed.stats  # counts, error samples and their line numbers
    assert typed.spans() == parsed.spans()
    return typed, typed_rows


def _line(venue: str, stream: str, frame: object) -> bytes:
    return frame_line(venue, stream, AT_MS, frame).encode()


@pytest.mark.parametrize("venue, stream", sorted(TYPED))
def test_each_typed_streams_frames_take_the_typed_path_and_give_the_parsers_rows(venue, stream):
    lines = [_line(venue, stream, liquidation_frame(venue, stream, n, AT_MS + n)) for n in range(1, 30)]
    books = _decoder().books
    assert all(typed_line(line, books) is not None for line in lines)
    assert len(_assert_same(lines)[1]) >= len(lines)


def test_the_bundled_samples_frames_all_take_the_typed_path():
    lines = [line.encode() for line in recording_lines(AT_MS, 2, seed=7, events_per_hour=3_000)]
    decoder = RecordingDecoder()
    declined_with_orders = 0
    for line in lines:
        taken = typed_line(line, decoder.books)
        events = decoder.feed(line)
        declined_with_orders += taken is None and bool(events)
    assert declined_with_orders == 0
    assert len(_assert_same(lines)[1]) > 5_000


@pytest.mark.parametrize(
    "envelope_at",
    [2**64, 2**64 + 1, -(2**64), 1.0e12, "1742515200000"],
    ids=["2^64", "2^64+1", "-2^64", "float", "string"],
)
def test_an_at_the_decoder_refuses_is_refused_on_the_typed_path_too(envelope_at):
    text = json.dumps({"venue": "binance", "stream": "usdm", "at": envelope_at, "frame": liquidation_frame("binance", "usdm", 1, AT_MS)})
    typed, _ = _assert_same([text.encode()])
    assert typed.stats.bad_lines == 1


@pytest.mark.parametrize("where", ["envelope", "frame", "order"])
def test_a_line_that_is_not_utf8_is_refused_on_the_typed_path_too(where):
    frame = liquidation_frame("binance", "usdm", 1, AT_MS)
    {"envelope": lambda: None, "frame": lambda: frame.update(E="MARK"), "order": lambda: frame["o"].update(X="MARK")}[where]()
    line = {"venue": "binance", "stream": "usdm", "at": AT_MS, "frame": frame}
    if where == "envelope":
        line["note"] = "MARK"
    # A byte that is not UTF-8, in a field neither path reads.
    text = json.dumps(line).encode().replace(b"MARK", b"\xff\xfe")
    typed, _ = _assert_same([text])
    assert typed.stats.bad_lines == 1


def test_a_quantity_over_its_cap_is_refused_even_when_its_notional_is_not():
    frame = liquidation_frame("binance", "usdm", 1, AT_MS)
    frame["o"].update(z="2000000000000", ap="0.001")  # 2e12 coins at $0.001: $2B, under the notional cap
    typed, rows = _assert_same([_line("binance", "usdm", frame)])
    assert rows == [] and typed.stats.bad_lines == 1


@pytest.mark.parametrize("where", ["frame", "unread field"])
def test_a_line_nested_deeper_than_msgspec_reads_gives_the_parsers_result(where):
    deep = "[" * 1_000 + "]" * 1_000  # under orjson's limit of 1,024 levels, over msgspec's
    frame_text = deep if where == "frame" else json.dumps(liquidation_frame("binance", "usdm", 1, AT_MS))[:-1] + f',"x":{deep}}}'
    line = f'{{"venue":"binance","stream":"usdm","at":{AT_MS},"frame":{frame_text}}}'.encode()
    _, rows = _assert_same([line])
    assert len(rows) == (0 if where == "frame" else 1)


def test_an_okx_entry_without_an_instrument_is_refused_even_without_orders():
    frame = liquidation_frame("okx", "public", 1, AT_MS)
    frame["data"].insert(0, {"instId": "", "details": []})
    typed, rows = _assert_same([_line("okx", "public", frame)])
    assert rows == [] and typed.stats.bad_lines == 1


def test_a_number_beyond_a_float_in_a_field_no_parser_reads_is_the_one_known_difference():
    """Documented in `bot.feeds.typed_frames`: orjson refuses the whole line, the typed
    path skips the field and stores the order. Pinned so that a change to either is seen."""
    line = json.dumps({"venue": "binance", "stream": "usdm", "at": AT_MS, "frame": liquidation_frame("binance", "usdm", 1, AT_MS)})
    line = (line[:-1] + ',"x":1e400}').encode()
    typed, typed_rows, parsed, parsed_rows = _rows_both_ways([line])
    assert len(typed_rows) == 1 and typed.stats.bad_lines == 0
    assert parsed_rows == [] and parsed.stats.bad_lines == 1


def test_an_order_without_a_contract_size_is_counted_as_the_parser_counts_it():
    frame = liquidation_frame("okx", "public", 3, AT_MS)
    unknown = copy.deepcopy(frame["data"][0])
    unknown["instId"] = "NEW-USD-SWAP"
    frame["data"].append(unknown)
    typed, rows, parsed, _ = _rows_both_ways([_line("okx", "public", frame)])
    assert len(rows) == 1  # the priced order is stored
    assert typed.stats.unpriced_events == parsed.stats.unpriced_events == 1
    assert typed.stats.unknown_instruments == {"NEW-USD-SWAP"}


# -- any mutation of a well-formed frame or line --------------------------------------

HOSTILE_STRINGS = [
    "", " 10", "1_0", "١٢", "0x10", "1.", ".5", "1e3", "1e400", "-1", "0", "nan", "inf", "Infinity", "+5",
    "1742515201185", "1742515201185.0", "99999999999999999999", "BUY", "SELL", "Buy", "Sell", "long",
    "short", "net", "buy", "sell", "forceOrder", "liquidation-orders", "allLiquidation.BTCUSDT", "topic",
    "SWAP", "FUTURES", "MARGIN", "BTCUSDT", "BTC-USD-SWAP", "NEW-USD-SWAP", "é", "\u2028",
]
# Numbers at the edges of the checks: the caps (price 1e9, quantity 1e12, notional
# 1e10 USD, a cent), 2010 and 2100 in ms, and integers past 64 bits (orjson reads those as floats).
EDGE_NUMBERS = [
    0, -0.0, 1e-9, 0.004, 1e9, 1e9 + 1, 2e9, 1e12, 1e12 + 1e4, 1e13, 1_262_303_999_999, 4_102_444_800_001,
    2**63, 2**64, 2**64 + 1, 2**70, 1742515201185, 1.5,
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(EDGE_NUMBERS)
    | st.sampled_from(EDGE_NUMBERS).map(repr)
    | st.floats(allow_nan=False)
    | st.sampled_from(HOSTILE_STRINGS)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(HOSTILE_STRINGS), children, max_size=3),
    max_leaves=6,
)


def _paths(value: object, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: dict keys and list indexes, depth first."""
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _mutated(value: object, path: tuple, action: str, replacement: object) -> object:
    value = copy.deepcopy(value)
    if not path:
        return replacement
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = replacement
    else:
        parent[last] = replacement
    return value


@pytest.mark.parametrize("venue, stream", sorted(TYPED))
def test_every_field_of_a_typed_frame_at_every_edge_value_gives_the_parsers_rows(venue, stream):
    frame = liquidation_frame(venue, stream, 2, AT_MS)
    edges = [*EDGE_NUMBERS, *map(repr, EDGE_NUMBERS), *HOSTILE_STRINGS, None, True, [], {}]
    lines = [
        _line(venue, stream, _mutated(frame, path, action, value))
        for path in _paths(frame)
        for action, values in (("replace", edges), ("delete", [None]))
        for value in values
        if path or action == "replace"
    ]
    _assert_same(lines)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.sampled_from(sorted(TYPED)),
    orders=st.integers(1, 3),
    seed=st.integers(0, 2**32),
    mutations=st.lists(st.tuples(st.sampled_from(["replace", "delete", "add"]), JSON_VALUES), min_size=1, max_size=3),
    ascii_only=st.booleans(),
)
def test_a_mutated_line_gives_the_parsers_rows_counts_and_spans(stream, orders, seed, mutations, ascii_only):
    venue, stream_name = stream
    line = {"venue": venue, "stream": stream_name, "at": AT_MS, "frame": liquidation_frame(venue, stream_name, orders, AT_MS)}
    chooser = random.Random(seed)
    for action, replacement in mutations:
        # The envelope's keys are mutated too: `at`, `venue`, `stream`, the frame itself.
        line = _mutated(line, chooser.choice(_paths(line)), action, replacement)
    text = json.dumps(line, ensure_ascii=ascii_only)
    _assert_same([text.encode()])
