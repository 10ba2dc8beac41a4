"""Config files: defaults, clear errors for typos and wrong types, secrets only from env."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_type_hints

import pytest

from bot.config import Config, ConfigError, Secrets, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


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
    ],
)
def test_a_broken_config_names_the_key_and_the_fix(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("?", r"\?")):
        parse_config(text)


def test_integers_are_accepted_where_numbers_are_expected():
    assert parse_config("[bot]\nuser_per_minute = 12").bot.user_per_minute == 12.0


def test_tokens_come_from_the_environment_and_never_show_in_a_repr():
    secrets = Secrets.from_env({"LIQBOT_TELEGRAM_TOKEN": "123:secret-token", "LIQBOT_DISCORD_TOKEN": ""})
    assert secrets.telegram_token == "123:secret-token"
    assert secrets.discord_token is None
    assert "secret-token" not in repr(secrets)


def test_the_cli_reports_a_broken_config_in_one_line(tmp_path):
    broken = tmp_path / "bad.toml"
    broken.write_text("[storage]\npth = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--config", str(broken)],
        capture_output=True, text=True, input="", timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "liqbot: unknown key 'pth' in [storage]; did you mean 'path'?"
    ]
