"""Config files: defaults, clear errors for typos and wrong types, secrets only from env."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin, get_type_hints

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Config, ConfigError, Secrets, load_config, parse_config
from bot.plumbing.bounds import Between

ROOT = Path(__file__).resolve().parent.parent


def leaf_keys(cls=Config, where=""):
    """(section, key, type hint with its bounds) of every key of the config, nested tables walked."""
    for name, hint in get_type_hints(cls, include_extras=True).items():
        base = plain(hint)
        if dataclasses.is_dataclass(base):
            yield from leaf_keys(base, f"{where}.{name}" if where else name)
        else:
            yield where, name, hint


def plain(hint):
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


def bounds(hint):
    """The declared bounds of a key, its list items' included."""
    own = list(hint.__metadata__) if get_origin(hint) is Annotated else []
    base = plain(hint)
    return own + (bounds(get_args(base)[0]) if get_origin(base) is tuple else [])


def choices(hint):
    base = plain(hint)
    if get_origin(base) is tuple:
        return choices(get_args(base)[0])
    return get_args(base) if get_origin(base) is Literal else ()


def numeric(hint):
    base = plain(hint)
    return numeric(get_args(base)[0]) if get_origin(base) is tuple else base in (int, float)


def test_the_example_config_parses_and_equals_the_defaults():
    assert load_config(ROOT / "config.example.toml") == Config()


def test_the_example_lists_every_key():
    example = tomllib.loads((ROOT / "config.example.toml").read_text())

    def missing(cls, table, where):
        for name, kind in get_type_hints(cls).items():
            if name not in table:
                yield f"{where}{name}"
            elif dataclasses.is_dataclass(kind):
                yield from missing(kind, table[name], f"{where}{name}.")

    assert list(missing(Config, example, "")) == []


def example_lines():
    """(section, key) -> (the comment lines above the key, its trailing comment) in config.example.toml."""
    found, section, above = {}, "", []
    for line in (ROOT / "config.example.toml").read_text().splitlines():
        if header := re.fullmatch(r"\[(.+)\]", line):
            section, above = header.group(1), []
        elif line.startswith("#"):
            above.append(line)
        elif key := re.match(r"(\w+) = .*?(?:  # (.*))?$", line):
            found[(section, key.group(1))] = (above, key.group(2) or "")
        else:
            above = []
    return found


def test_every_numeric_key_has_a_range():
    assert [f"{s}.{k}" for s, k, hint in leaf_keys() if numeric(hint) and not any(isinstance(b, Between) for b in bounds(hint))] == []


def test_the_example_documents_every_key_with_its_range_and_choices():
    documented = example_lines()
    undocumented = []
    for section, key, hint in leaf_keys():
        above, trailing = documented[(section, key)]
        rules = [str(b) for b in bounds(hint)] + list(choices(hint))
        if not (above or trailing) or any(rule not in trailing for rule in rules):
            undocumented.append(f"{section}.{key}: {rules}")
    assert undocumented == []


def test_no_file_means_defaults():
    assert load_config(None) == Config()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[storage]\npth = 'x.db'", "unknown key 'pth' in [storage]; did you mean 'path'?"),
        ("[feeds.okx]\nenabled = 'yes'", "'feeds.okx.enabled' must be true or false, not 'yes'"),
        ("[bot]\ndefault_locale = 'fr'", "'bot.default_locale' must be en or zh"),
        ("[bot\n", "is not valid TOML"),
        ("storage = 3", "'storage' must be a table"),
        ("[telegram]\ntoken = 'x'", "unknown key 'token' in [telegram]"),
        # Values that used to load and crash a task later (issue 15 #5, issue 12 #5):
        ("[telegram]\nmode = 'hook'", "'telegram.mode' must be polling or webhook, not 'hook'"),
        ("[telegram]\nmode = 'webhook'", "'telegram.mode' is webhook but 'telegram.webhook_url' is empty"),
        ("[telegram]\nmode = 'webhook'\nwebhook_url = 'http://x.example'", "'telegram.webhook_url' must be empty or a URL starting with https://"),
        ("[bot]\nuser_per_minute = -5", "'bot.user_per_minute' must be from 0.1 to 10000, not -5"),
        ("[bot]\nuser_per_minute = 0", "'bot.user_per_minute' must be from 0.1 to 10000, not 0"),
        ("[bot]\nuser_per_minute = nan", "'bot.user_per_minute' must be from 0.1 to 10000, not nan"),
        ("[bot]\nchat_per_minute = inf", "'bot.chat_per_minute' must be from 0.1 to 100000, not inf"),
        ("[bot]\nuser_burst = " + "9" * 400, "'bot.user_burst' must be from 1 to 1000, not 9999"),
        ("[bot]\nuser_per_minute = " + "9" * 400, "'bot.user_per_minute' must be from 0.1 to 10000, not 9999"),
        ("[market]\ninterval_s = " + "9" * 5000, "is not valid TOML"),
        ("[storage]\npath = ''", "'storage.path' must be non-empty, not ''"),
        ("[feeds.runner]\nbackoff_base_s = 0", "'feeds.runner.backoff_base_s' must be from 0.1 to 3600, not 0"),
        ("[feeds.runner]\nbackoff_max_s = -1.0", "'feeds.runner.backoff_max_s' must be from 1 to 86400, not -1.0"),
        ("[feeds.runner]\nwatchdog_s = 0", "'feeds.runner.watchdog_s' must be from 5 to 3600, not 0"),
        ("[feeds.runner]\nbackoff_base_s = 100\nbackoff_max_s = 10", "'feeds.runner.backoff_base_s' must be at most 'feeds.runner.backoff_max_s'"),
        ("[feeds.okx]\nws_url = 'https://ws.okx.com'", "'feeds.okx.ws_url' must be a URL starting with wss:// or ws://"),
        ("[market]\nassets = []", "'market.assets' must be non-empty, not []"),
        ("[market]\nassets = ['BTC', 'ET H']", "'market.assets' must be letters and digits, not 'ET H'"),
        ("[market]\nvenues = 'binance kraken'", "'market.venues' must be binance, bybit or okx, not 'kraken'"),
        ("[logging]\nlevel = 'LOUD'", "'logging.level' must be DEBUG, INFO, WARNING or ERROR, not 'LOUD'"),
        ("[charts]\ntheme = 'blue'", "'charts.theme' must be dark or light, not 'blue'"),
        ("[discord]\nguild_ids = [0]", "'discord.guild_ids' must be from 1 to 9223372036854775807, not 0"),
        ("[discord]\nshard_ids = [0]", "'discord.shard_ids' needs 'discord.shard_count'"),
        ("[discord]\nshard_count = 2\nshard_ids = [0, 2]", "'discord.shard_ids' must be below 'discord.shard_count' \\(2\\), not 2"),
        ("[discord]\nshard_count = 4\nshard_ids = [1, 1]", "'discord.shard_ids' lists a shard twice: [1, 1]"),
        ("[risk]\nelevated_at = 5", "'risk.high_at' must be between elevated_at and extreme_at"),
    ],
)
def test_a_broken_config_names_the_key_and_the_fix(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("?", r"\?")):
        parse_config(text)


def test_integers_are_accepted_where_numbers_are_expected():
    assert parse_config("[bot]\nuser_per_minute = 12").bot.user_per_minute == 12.0


def test_market_assets_are_a_list_or_one_string():
    as_list = parse_config("[market]\nassets = ['BTC', 'eth', 'PEPE']").market
    as_string = parse_config("[market]\nassets = 'BTC, eth PEPE'").market
    assert as_list == as_string
    assert as_list.asset_list == ["BTC", "ETH", "PEPE"]


def test_a_file_that_is_not_text_is_a_config_error(tmp_path):
    binary = tmp_path / "config.toml"
    binary.write_bytes(b"[bot]\nuser_burst = 5 # \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(binary)


# -- any file at all: only ConfigError escapes ------------------------------------

SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "9" * 400, "-" + "9" * 400, "9" * 4400]),
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def plausible(hint):
    """Values of roughly the right kind, in and around the declared range, so a run goes past the type checks."""
    base = plain(hint)
    between = next((b for b in bounds(hint) if isinstance(b, Between)), None)
    if get_origin(base) is tuple:
        item = plausible(get_args(base)[0])
        return st.lists(item, max_size=4) | st.lists(item, max_size=4).map(lambda items: " ".join(map(str, items)))
    if get_origin(base) is Literal:
        return st.sampled_from(get_args(base))
    if base is bool:
        return st.booleans()
    if base is int:
        return st.integers(int(between.low) - 2, int(between.high) + 2) if between else st.integers()
    if base is float:
        near = st.floats(between.low, between.high) if between else st.floats()
        return near | st.sampled_from([0, -1, 0.0, -0.0, float("nan"), float("inf"), float("-inf"), 10**400])
    return st.sampled_from(["", " ", "x", "https://h.example/p", "wss://h.example", "http://[::1", "BTC"]) | st.text(max_size=12)


def toml_literal(value, raw=False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (raw or re.fullmatch(r"-?9{400,}|\d{4}-.*|\d\d:\d\d:\d\d", value)):
        return value  # a literal TOML spells without quotes (dates, 400-digit numbers)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_literal(v)}" for k, v in value.items()) + "}"


def toml_string(text: str) -> str:
    escaped = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or c == "\x7f" else c for c in text
    )
    return f'"{escaped}"'


SECTIONS: dict[str, list[tuple[str, object]]] = {}
for _section, _key, _hint in leaf_keys():
    SECTIONS.setdefault(_section, []).append((_key, _hint))


@st.composite
def config_files(draw) -> str:
    lines = []
    for section, keys in SECTIONS.items():
        if not draw(st.booleans()):
            continue
        lines.append(f"[{section}]")
        for key, hint in keys:
            if draw(st.integers(0, 3)) == 0:
                value = draw(ANY_VALUE | plausible(hint))
                lines.append(f"{key} = {toml_literal(value)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_files())
def test_any_config_file_loads_or_fails_with_a_config_error(text):
    try:
        config = parse_config(text)
    except ConfigError as error:
        assert "\n" not in str(error)  # one line
        return
    for section, key, hint in leaf_keys():
        value = config
        for part in [*section.split("."), key]:
            value = getattr(value, part)
        for bound in bounds(hint):
            for item in value if isinstance(value, tuple) else (value,):
                assert bound.admits(item), (section, key, value)


def test_tokens_come_from_the_environment_and_never_show_in_a_repr():
    secrets = Secrets.from_env({"LIQBOT_TELEGRAM_TOKEN": "123:secret-token", "LIQBOT_DISCORD_TOKEN": ""})
    assert secrets.telegram_token == "123:secret-token"
    assert secrets.discord_token is None
    assert "secret-token" not in repr(secrets)


def test_the_database_password_comes_from_the_environment_never_from_the_file():
    secrets = Secrets.from_env({"LIQBOT_DB_PASSWORD": "hunter2"})
    assert secrets.db_password == "hunter2" and "hunter2" in secrets.values()  # redacted in logs
    assert "hunter2" not in repr(secrets)
    assert parse_config('[storage]\nurl = "postgresql://liqbot@db:5432/liqbot"\n').storage.url.endswith("/liqbot")
    with pytest.raises(ConfigError, match=r"no password in it .*, not 'postgresql://liqbot:\*\*\*@db:5432/liqbot'"):
        parse_config('[storage]\nurl = "postgresql://liqbot:hunter2@db:5432/liqbot"\n')


@pytest.mark.parametrize(
    "text, message",
    [
        ("[storage]\npth = 1\n", "unknown key 'pth' in [storage]; did you mean 'path'?"),
        ("[telegram]\nmode = 'hook'\n", "'telegram.mode' must be polling or webhook, not 'hook'"),
        ("[bot]\nuser_per_minute = 0\n", "'bot.user_per_minute' must be from 0.1 to 10000, not 0"),
    ],
)
def test_the_cli_reports_a_broken_config_in_one_line(tmp_path, text, message):
    broken = tmp_path / "bad.toml"
    broken.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--config", str(broken)],
        capture_output=True, text=True, input="", timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"liqbot: {message}"]
